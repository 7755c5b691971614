-- A broker reports each execution with its own id; a fill reported twice (a stream message
-- and a reconciliation) is recorded once. Paper fills before this migration get their own.
ALTER TABLE trades ADD COLUMN fill_id VARCHAR;
UPDATE trades SET fill_id = 'trade-' || trade_id;
