-- Run and settlement amounts as integers instead of decimal strings: a run counts in granules
-- (the least common multiple of the value of one atom of every currency it clears, see
-- services/clearing/src/graph.rs), so every amount of a run is a whole number of granules and
-- its value is `granules x granule_value_e16` in 10^-16 of the unit of account.
--
-- Runs recorded before this migration are converted exactly at a granule of 10^-8 of the unit;
-- a figure with more decimals stops the migration instead of losing digits (see below).
ALTER TABLE clearing_runs ADD COLUMN granule_value_e16 BIGINT NOT NULL DEFAULT 100000000
    CHECK (granule_value_e16 > 0);
ALTER TABLE clearing_runs ADD COLUMN gross_before_granules BIGINT NOT NULL DEFAULT 0
    CHECK (gross_before_granules >= 0);
ALTER TABLE clearing_runs ADD COLUMN cleared_granules BIGINT NOT NULL DEFAULT 0
    CHECK (cleared_granules >= 0);
ALTER TABLE clearing_runs ADD COLUMN gross_after_granules BIGINT NOT NULL DEFAULT 0
    CHECK (gross_after_granules >= 0);
-- A recorded figure with more than 8 decimals cannot convert at 10^-8: rather than lose its
-- digits, the migration stops here (the CHECK on granule_value_e16 refuses the 0).
UPDATE clearing_runs SET granule_value_e16 = 0
WHERE length(split_part(gross_before, '.', 2)) > 8 OR length(split_part(cleared, '.', 2)) > 8
    OR length(split_part(gross_after, '.', 2)) > 8;
UPDATE clearing_runs SET
    gross_before_granules = trunc(gross_before::numeric * 100000000)::bigint,
    cleared_granules = trunc(cleared::numeric * 100000000)::bigint,
    gross_after_granules = trunc(gross_after::numeric * 100000000)::bigint;
ALTER TABLE clearing_runs DROP COLUMN gross_before;
ALTER TABLE clearing_runs DROP COLUMN cleared;
ALTER TABLE clearing_runs DROP COLUMN gross_after;

ALTER TABLE clearing_settlements ADD COLUMN granules BIGINT NOT NULL DEFAULT 0
    CHECK (granules >= 0);
UPDATE clearing_settlements SET granules = -1 WHERE length(split_part(amount, '.', 2)) > 8;
UPDATE clearing_settlements SET granules = trunc(amount::numeric * 100000000)::bigint;
ALTER TABLE clearing_settlements DROP COLUMN amount;
