-- Candles aggregate a market's trades over a time window (issue 15, M3): by time, not by id.
CREATE INDEX trades_market_time ON trades (market_id, created_at_us);
