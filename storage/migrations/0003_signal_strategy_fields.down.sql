-- DuckDB cannot DROP COLUMN on a table that other tables reference (or that has indexes),
-- so `signals` and its dependents are rebuilt: copy, drop children first, recreate, copy back.
CREATE TEMP TABLE _m3_signals AS SELECT * EXCLUDE (market_position, prev_market_position) FROM signals;
CREATE TEMP TABLE _m3_refactored_signals AS SELECT * FROM refactored_signals;
CREATE TEMP TABLE _m3_orders AS SELECT * FROM orders;
CREATE TEMP TABLE _m3_trades AS SELECT * FROM trades;
CREATE TEMP TABLE _m3_positions AS SELECT * FROM positions;
DROP TABLE positions;
DROP TABLE trades;
DROP TABLE orders;
DROP TABLE refactored_signals;
DROP TABLE signals;
CREATE TABLE signals (
    signal_id      BIGINT PRIMARY KEY,
    received_at    TIMESTAMPTZ NOT NULL,
    symbol         VARCHAR NOT NULL,
    direction      VARCHAR NOT NULL CHECK (direction IN ('long', 'short')),
    timeframe      VARCHAR NOT NULL,
    bar_time       TIMESTAMPTZ NOT NULL,
    action         VARCHAR NOT NULL DEFAULT 'entry' CHECK (action IN ('entry', 'exit')),
    strategy       VARCHAR,
    price          DOUBLE,
    source         VARCHAR NOT NULL DEFAULT 'webhook',
    dedupe_key     VARCHAR NOT NULL,
    status         VARCHAR NOT NULL DEFAULT 'received',
    payload        VARCHAR
);
CREATE INDEX signals_dedupe_idx ON signals (dedupe_key, received_at);
CREATE INDEX signals_symbol_idx ON signals (symbol, received_at);
CREATE TABLE refactored_signals (
    signal_id      BIGINT PRIMARY KEY REFERENCES signals (signal_id),
    decided_at     TIMESTAMPTZ NOT NULL,
    decision       VARCHAR NOT NULL CHECK (decision IN ('approved', 'rejected')),
    reason         VARCHAR,
    enrichment     VARCHAR
);
CREATE TABLE orders (
    order_id         BIGINT PRIMARY KEY,
    signal_id        BIGINT REFERENCES signals (signal_id),
    idempotency_key  VARCHAR NOT NULL UNIQUE,
    client_order_id  VARCHAR NOT NULL UNIQUE,
    engine           VARCHAR NOT NULL DEFAULT 'live',
    symbol           VARCHAR NOT NULL,
    instrument       VARCHAR NOT NULL,
    asset_class      VARCHAR NOT NULL CHECK (asset_class IN ('option', 'equity')),
    option_right     VARCHAR,
    strike           DOUBLE,
    expiry           DATE,
    side             VARCHAR NOT NULL CHECK (side IN ('buy', 'sell')),
    quantity         DOUBLE NOT NULL CHECK (quantity > 0),
    intent           VARCHAR NOT NULL DEFAULT 'entry' CHECK (intent IN ('entry', 'exit')),
    position_side    VARCHAR NOT NULL DEFAULT 'long' CHECK (position_side IN ('long', 'short')),
    multiplier       DOUBLE NOT NULL DEFAULT 1,
    reference_price  DOUBLE,
    position_id      BIGINT,
    order_type       VARCHAR NOT NULL DEFAULT 'paper',
    limit_price      DOUBLE,
    status           VARCHAR NOT NULL,
    reason           VARCHAR,
    attempts         INTEGER NOT NULL DEFAULT 0,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL
);
CREATE TABLE trades (
    trade_id     BIGINT PRIMARY KEY,
    order_id     BIGINT NOT NULL REFERENCES orders (order_id),
    filled_at    TIMESTAMPTZ NOT NULL,
    side         VARCHAR NOT NULL CHECK (side IN ('buy', 'sell')),
    quantity     DOUBLE NOT NULL CHECK (quantity > 0),
    price        DOUBLE NOT NULL CHECK (price >= 0),
    fees         DOUBLE NOT NULL DEFAULT 0,
    liquidity    VARCHAR
);
CREATE TABLE positions (
    position_id     BIGINT PRIMARY KEY,
    engine          VARCHAR NOT NULL DEFAULT 'live',
    symbol          VARCHAR NOT NULL,
    instrument      VARCHAR NOT NULL,
    strategy        VARCHAR,
    side            VARCHAR NOT NULL CHECK (side IN ('long', 'short')),
    quantity        DOUBLE NOT NULL,
    avg_price       DOUBLE NOT NULL,
    multiplier      DOUBLE NOT NULL DEFAULT 1,
    status          VARCHAR NOT NULL CHECK (status IN ('open', 'closed')),
    opened_at       TIMESTAMPTZ NOT NULL,
    closed_at       TIMESTAMPTZ,
    entry_order_id  BIGINT REFERENCES orders (order_id),
    exit_order_id   BIGINT REFERENCES orders (order_id),
    mark            DOUBLE,
    marked_at       TIMESTAMPTZ,
    unrealised_pnl  DOUBLE,
    realised_pnl    DOUBLE,
    exit_reason     VARCHAR
);
CREATE INDEX positions_open_idx ON positions (status, symbol);
INSERT INTO signals SELECT * FROM _m3_signals;
INSERT INTO refactored_signals SELECT * FROM _m3_refactored_signals;
INSERT INTO orders SELECT * FROM _m3_orders;
INSERT INTO trades SELECT * FROM _m3_trades;
INSERT INTO positions SELECT * FROM _m3_positions;
DROP TABLE _m3_signals;
DROP TABLE _m3_refactored_signals;
DROP TABLE _m3_orders;
DROP TABLE _m3_trades;
DROP TABLE _m3_positions;
