ALTER TABLE obligations DROP COLUMN related;
