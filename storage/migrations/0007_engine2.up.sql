-- Engine 2's state: experiment assignments, shadow positions and trades, agent votes.
-- Decisions and assignments are also events (the outbox, landed as Parquet); these tables
-- hold what changes (a shadow position's mark and exit) and what the API lists.
CREATE TABLE experiments (
    experiment_id  VARCHAR NOT NULL,
    signal_id      BIGINT NOT NULL REFERENCES signals (signal_id),
    variant        VARCHAR NOT NULL CHECK (variant IN ('A', 'B')),
    bucket         INTEGER NOT NULL CHECK (bucket BETWEEN 0 AND 99),
    unit           VARCHAR NOT NULL CHECK (unit IN ('session', 'signal')),
    unit_key       VARCHAR NOT NULL,
    split_pct      DOUBLE NOT NULL,
    symbol         VARCHAR NOT NULL,
    timeframe      VARCHAR NOT NULL,
    assigned_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (experiment_id, signal_id)
);
CREATE INDEX experiments_variant_idx ON experiments (experiment_id, variant);

CREATE TABLE shadow_positions (
    position_id      BIGINT PRIMARY KEY,
    experiment_id    VARCHAR NOT NULL,
    signal_id        BIGINT NOT NULL REFERENCES signals (signal_id),
    idempotency_key  VARCHAR NOT NULL UNIQUE,
    symbol           VARCHAR NOT NULL,
    instrument       VARCHAR NOT NULL,
    asset_class      VARCHAR NOT NULL CHECK (asset_class IN ('option', 'equity')),
    option_right     VARCHAR,
    strike           DOUBLE,
    expiry           DATE,
    strategy         VARCHAR,
    side             VARCHAR NOT NULL CHECK (side IN ('long', 'short')),
    quantity         DOUBLE NOT NULL,
    avg_price        DOUBLE NOT NULL,
    multiplier       DOUBLE NOT NULL,
    status           VARCHAR NOT NULL CHECK (status IN ('open', 'closed')),
    opened_at        TIMESTAMPTZ NOT NULL,
    closed_at        TIMESTAMPTZ,
    mark             DOUBLE,
    marked_at        TIMESTAMPTZ,
    unrealised_pnl   DOUBLE,
    realised_pnl     DOUBLE,
    exit_reason      VARCHAR,
    meta_confidence  DOUBLE NOT NULL,
    agents           VARCHAR NOT NULL
);
CREATE INDEX shadow_positions_experiment_idx ON shadow_positions (experiment_id);

CREATE TABLE shadow_trades (
    trade_id         BIGINT PRIMARY KEY,
    position_id      BIGINT NOT NULL REFERENCES shadow_positions (position_id),
    experiment_id    VARCHAR NOT NULL,
    signal_id        BIGINT NOT NULL REFERENCES signals (signal_id),
    client_order_id  VARCHAR NOT NULL UNIQUE,
    intent           VARCHAR NOT NULL CHECK (intent IN ('entry', 'exit')),
    side             VARCHAR NOT NULL CHECK (side IN ('buy', 'sell')),
    quantity         DOUBLE NOT NULL CHECK (quantity > 0),
    price            DOUBLE NOT NULL CHECK (price >= 0),
    fees             DOUBLE NOT NULL DEFAULT 0,
    reference_price  DOUBLE,
    model            VARCHAR NOT NULL,
    filled_at        TIMESTAMPTZ NOT NULL,
    reason           VARCHAR
);
CREATE INDEX shadow_trades_experiment_idx ON shadow_trades (experiment_id);

CREATE TABLE agent_performance (
    experiment_id  VARCHAR NOT NULL,
    signal_id      BIGINT NOT NULL REFERENCES signals (signal_id),
    agent          VARCHAR NOT NULL,
    agent_group    VARCHAR NOT NULL,
    bias           VARCHAR NOT NULL,
    confidence     DOUBLE NOT NULL,
    veto           BOOLEAN NOT NULL,
    version        VARCHAR NOT NULL,
    decided_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (experiment_id, signal_id, agent)
);
CREATE INDEX agent_performance_agent_idx ON agent_performance (agent, experiment_id);
