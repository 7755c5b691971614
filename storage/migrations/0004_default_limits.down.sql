DELETE FROM exit_rules WHERE updated_by = 'migration';
DELETE FROM risk_limits WHERE updated_by = 'migration';
