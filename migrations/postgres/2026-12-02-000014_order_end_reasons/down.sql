ALTER TABLE orders DROP COLUMN end_reason;
