DROP INDEX trades_market_time;
