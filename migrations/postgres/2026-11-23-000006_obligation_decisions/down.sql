ALTER TABLE obligations DROP COLUMN closed_at_us;
ALTER TABLE obligations DROP COLUMN closed;
