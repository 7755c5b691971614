-- Default risk limits and exit rules (fractions per 1.00: 0.02 = 2 %). Admins change them
-- through the API; a fresh database trades with these.
INSERT INTO risk_limits (name, value, description, updated_by, updated_at) VALUES
    ('max_open_positions', 5, 'open positions at most, all symbols', 'migration', TIMESTAMPTZ '2026-01-01 00:00:00+00'),
    ('max_positions_per_symbol', 1, 'open positions at most per underlying', 'migration', TIMESTAMPTZ '2026-01-01 00:00:00+00'),
    ('capital_available', 10000, 'capital the live engine may commit, USD', 'migration', TIMESTAMPTZ '2026-01-01 00:00:00+00'),
    ('per_trade_risk_pct', 0.05, 'capital at risk per trade, fraction', 'migration', TIMESTAMPTZ '2026-01-01 00:00:00+00');
INSERT INTO exit_rules (name, value, enabled, description, updated_by, updated_at) VALUES
    ('profit_target_pct', 0.5, TRUE, 'close at +50 % of the entry premium', 'migration', TIMESTAMPTZ '2026-01-01 00:00:00+00'),
    ('stop_loss_pct', 0.3, TRUE, 'close at -30 % of the entry premium', 'migration', TIMESTAMPTZ '2026-01-01 00:00:00+00'),
    ('time_stop_minutes', 240, FALSE, 'close after this many minutes open', 'migration', TIMESTAMPTZ '2026-01-01 00:00:00+00'),
    ('dte_threshold_days', 1, TRUE, 'close when the option has this many days or fewer left', 'migration', TIMESTAMPTZ '2026-01-01 00:00:00+00'),
    ('session_end_minutes_before_close', 5, TRUE, 'close this many minutes before the session close', 'migration', TIMESTAMPTZ '2026-01-01 00:00:00+00');
