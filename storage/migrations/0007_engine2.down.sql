-- Children before parents: DuckDB refuses to drop a table another table references.
DROP TABLE agent_performance;
DROP TABLE shadow_trades;
DROP TABLE shadow_positions;
DROP TABLE experiments;
