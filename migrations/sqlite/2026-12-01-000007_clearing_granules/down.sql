ALTER TABLE clearing_settlements ADD COLUMN amount TEXT NOT NULL DEFAULT '0';
ALTER TABLE clearing_settlements DROP COLUMN granules;
ALTER TABLE clearing_runs ADD COLUMN gross_before TEXT NOT NULL DEFAULT '0';
ALTER TABLE clearing_runs ADD COLUMN cleared TEXT NOT NULL DEFAULT '0';
ALTER TABLE clearing_runs ADD COLUMN gross_after TEXT NOT NULL DEFAULT '0';
ALTER TABLE clearing_runs DROP COLUMN granule_value_e16;
ALTER TABLE clearing_runs DROP COLUMN gross_before_granules;
ALTER TABLE clearing_runs DROP COLUMN cleared_granules;
ALTER TABLE clearing_runs DROP COLUMN gross_after_granules;
