-- Each event carries the hash of the one before it and its own (engine/hashchain.py), so a
-- change to any landed event breaks the chain after it. Events before this migration have
-- none; the chain starts at the first event written after it.
ALTER TABLE events ADD COLUMN prev_hash VARCHAR;
ALTER TABLE events ADD COLUMN hash VARCHAR;
