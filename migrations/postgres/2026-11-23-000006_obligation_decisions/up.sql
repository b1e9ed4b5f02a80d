-- A proposed obligation can be declined by the debtor (`rejected`) or taken back by the
-- creditor (`withdrawn`). Either closes it for good: it can no longer be accepted, and only
-- accepted obligations are ever cleared. The row is kept, so both sides see what happened.
ALTER TABLE obligations ADD COLUMN closed TEXT CHECK (closed IN ('rejected', 'withdrawn'));
ALTER TABLE obligations ADD COLUMN closed_at_us BIGINT;
