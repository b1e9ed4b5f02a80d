-- Run and settlement amounts as integers instead of decimal strings (see the PostgreSQL
-- migration of the same name). The decimal strings are converted with integer arithmetic
-- on their digits (never through a float), at a granule of 10^-8 of the unit.
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
WHERE (instr(gross_before, '.') > 0 AND length(gross_before) - instr(gross_before, '.') > 8) OR (instr(cleared, '.') > 0 AND length(cleared) - instr(cleared, '.') > 8) OR (instr(gross_after, '.') > 0 AND length(gross_after) - instr(gross_after, '.') > 8);
UPDATE clearing_runs SET
    gross_before_granules = CASE WHEN instr(gross_before, '.') = 0
        THEN CAST(gross_before AS INTEGER) * 100000000
        ELSE CAST(substr(gross_before, 1, instr(gross_before, '.') - 1) AS INTEGER) * 100000000
            + CAST(substr(substr(gross_before, instr(gross_before, '.') + 1) || '00000000', 1, 8) AS INTEGER)
        END,
    cleared_granules = CASE WHEN instr(cleared, '.') = 0
        THEN CAST(cleared AS INTEGER) * 100000000
        ELSE CAST(substr(cleared, 1, instr(cleared, '.') - 1) AS INTEGER) * 100000000
            + CAST(substr(substr(cleared, instr(cleared, '.') + 1) || '00000000', 1, 8) AS INTEGER)
        END,
    gross_after_granules = CASE WHEN instr(gross_after, '.') = 0
        THEN CAST(gross_after AS INTEGER) * 100000000
        ELSE CAST(substr(gross_after, 1, instr(gross_after, '.') - 1) AS INTEGER) * 100000000
            + CAST(substr(substr(gross_after, instr(gross_after, '.') + 1) || '00000000', 1, 8) AS INTEGER)
        END;
ALTER TABLE clearing_runs DROP COLUMN gross_before;
ALTER TABLE clearing_runs DROP COLUMN cleared;
ALTER TABLE clearing_runs DROP COLUMN gross_after;

ALTER TABLE clearing_settlements ADD COLUMN granules BIGINT NOT NULL DEFAULT 0
    CHECK (granules >= 0);
UPDATE clearing_settlements SET granules = -1 WHERE (instr(amount, '.') > 0 AND length(amount) - instr(amount, '.') > 8);
UPDATE clearing_settlements SET granules = CASE WHEN instr(amount, '.') = 0
    THEN CAST(amount AS INTEGER) * 100000000
    ELSE CAST(substr(amount, 1, instr(amount, '.') - 1) AS INTEGER) * 100000000
        + CAST(substr(substr(amount, instr(amount, '.') + 1) || '00000000', 1, 8) AS INTEGER)
    END;
ALTER TABLE clearing_settlements DROP COLUMN amount;
