-- The event outbox: written in the same transaction as the state change it records.
-- `seq` is assigned by the Store: gap-free, one total order. Landed as Parquet by the exporter.
CREATE TABLE events (
    seq          BIGINT PRIMARY KEY,
    event_time   TIMESTAMPTZ NOT NULL,
    recorded_at  TIMESTAMPTZ NOT NULL,
    kind         VARCHAR NOT NULL,
    stream       VARCHAR NOT NULL,
    entity_id    VARCHAR,
    payload      VARCHAR NOT NULL
);
