DELETE FROM exit_rules WHERE name IN ('profit_target_pct', 'stop_loss_pct', 'time_stop_minutes',
    'dte_threshold_days', 'session_end_minutes_before_close');
DELETE FROM risk_limits WHERE name IN ('max_open_positions', 'max_positions_per_symbol',
    'capital_available', 'per_trade_risk_pct');
