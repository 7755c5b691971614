ALTER TABLE trades DROP COLUMN fill_id;
