DROP TABLE clearing_balances;
DROP TABLE clearing_positions;
ALTER TABLE clearing_runs DROP COLUMN preview_of;
ALTER TABLE clearing_runs DROP COLUMN graph_digest;
