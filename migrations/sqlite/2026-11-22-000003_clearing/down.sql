DROP TABLE clearing_settlements;
DROP TABLE clearing_runs;
DROP TABLE obligations;
DROP TABLE clearing_opt_outs;
