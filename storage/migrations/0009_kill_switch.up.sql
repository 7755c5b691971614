-- The kill switch (engine/kill_switch.py): one row, off. While on, no engine opens a new
-- position; exits always go through. Admins turn it on and off with PUT /kill-switch
-- (audited in audit_log like every admin setting).
CREATE TABLE kill_switch (
    name        VARCHAR PRIMARY KEY,
    enabled     BOOLEAN NOT NULL,
    description VARCHAR,
    updated_by  VARCHAR NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);
INSERT INTO kill_switch (name, enabled, description, updated_by, updated_at) VALUES
    ('kill_switch', FALSE, 'on: no engine opens a new position (exits always go through)', 'migration', TIMESTAMPTZ '2026-01-01 00:00:00+00');
