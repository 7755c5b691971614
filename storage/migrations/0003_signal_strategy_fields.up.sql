-- TradingView strategy alerts carry the market position before and after the order:
-- a move to 'flat' is an exit whatever the order's side.
ALTER TABLE signals ADD COLUMN market_position VARCHAR;
ALTER TABLE signals ADD COLUMN prev_market_position VARCHAR;
