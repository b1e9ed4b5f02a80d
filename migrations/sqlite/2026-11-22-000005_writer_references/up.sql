-- PostgreSQL drops the per-row foreign keys of the exchange's write path here (see its
-- migration of the same name). SQLite keeps them: a check there is an in-process index probe.
-- The migration exists on both backends so the two trees name the same migrations.
SELECT 1;
