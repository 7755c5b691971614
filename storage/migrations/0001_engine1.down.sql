-- Children before parents: DuckDB refuses to drop a table another table references.
DROP TABLE audit_log;
DROP TABLE feature_flags;
DROP TABLE exit_rules;
DROP TABLE risk_limits;
DROP TABLE positions;
DROP TABLE trades;
DROP TABLE orders;
DROP TABLE refactored_signals;
DROP TABLE signals;
