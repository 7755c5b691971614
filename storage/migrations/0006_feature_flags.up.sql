-- Engine 2's feature flags, all off until an admin turns one on (PATCH /feature-flags/{name}).
-- A NULL (or empty) whitelist means every symbol. The core agents (Technical, Context, Risk)
-- have no flag: nothing can switch them off while variant B runs.
INSERT INTO feature_flags (name, enabled, description, whitelist, updated_by, updated_at) VALUES
    ('enable_variant_b', FALSE, 'master switch of variant B: off sends every signal to A (Engine 1 alone)', NULL, 'migration', TIMESTAMPTZ '2026-01-01 00:00:00+00'),
    ('enable_orb', FALSE, 'ORB specialist (opening-range breakout on SPY, QQQ, SPX) votes in B', NULL, 'migration', TIMESTAMPTZ '2026-01-01 00:00:00+00'),
    ('enable_strat', FALSE, 'Strat specialist (candle types 1/2/3 and their combos) votes in B', NULL, 'migration', TIMESTAMPTZ '2026-01-01 00:00:00+00'),
    ('enable_ttm', FALSE, 'TTM specialist (squeeze release with aligned momentum) votes in B', NULL, 'migration', TIMESTAMPTZ '2026-01-01 00:00:00+00'),
    ('enable_satyland', FALSE, 'Satyland sub-agent (pivot ribbon, ATR levels, phase oscillator) votes in B', NULL, 'migration', TIMESTAMPTZ '2026-01-01 00:00:00+00'),
    ('enable_futures', FALSE, 'futures symbols may go to B', NULL, 'migration', TIMESTAMPTZ '2026-01-01 00:00:00+00');

-- Experiment settings an admin changes at run time (PUT /experiment-settings). The unit of
-- assignment (session or signal) is a start-up setting, not a row here.
CREATE TABLE experiment_settings (
    name        VARCHAR PRIMARY KEY,
    value       DOUBLE NOT NULL,
    description VARCHAR,
    updated_by  VARCHAR NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);
INSERT INTO experiment_settings (name, value, description, updated_by, updated_at) VALUES
    ('split_pct', 0, 'share of signals sent to variant B, whole percent 0-100 (with enable_variant_b on)', 'migration', TIMESTAMPTZ '2026-01-01 00:00:00+00');
