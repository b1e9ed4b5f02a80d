-- Backed currencies and joining fees (issue 19, API.md "Currency policies").
-- `backed`: the issuer's negative balance stays covered by a reserve it holds in another
-- currency (holds with reason 'reserve <currency id>' on its account there). The backing is
-- chosen at creation and never changes, so holders can trust it.
ALTER TABLE currencies DROP CONSTRAINT currencies_kind_check;
ALTER TABLE currencies ADD CONSTRAINT currencies_kind_check
    CHECK (kind IN ('issuer_credit', 'mutual_credit', 'backed'));
ALTER TABLE currencies ADD COLUMN backing_currency_id BIGINT REFERENCES currencies (id);
ALTER TABLE currencies ADD COLUMN backing_ratio_bps INTEGER
    CHECK (backing_ratio_bps BETWEEN 1 AND 100000);
ALTER TABLE currencies ADD COLUMN backing_lock_days INTEGER
    CHECK (backing_lock_days BETWEEN 0 AND 3650);
ALTER TABLE currencies ADD CONSTRAINT currencies_backing_iff_backed CHECK (
    (kind = 'backed') = (backing_currency_id IS NOT NULL
        AND backing_ratio_bps IS NOT NULL AND backing_lock_days IS NOT NULL));
-- `joining_fee`: paid once by a new member to the issuer, in any currency.
ALTER TABLE currencies ADD COLUMN joining_fee_atoms BIGINT CHECK (joining_fee_atoms > 0);
ALTER TABLE currencies ADD COLUMN joining_fee_currency_id BIGINT REFERENCES currencies (id);
ALTER TABLE currencies ADD COLUMN joining_fee_refundable_after_days INTEGER
    CHECK (joining_fee_refundable_after_days BETWEEN 0 AND 3650);
ALTER TABLE currencies ADD CONSTRAINT currencies_joining_fee_whole CHECK (
    (joining_fee_atoms IS NULL) = (joining_fee_currency_id IS NULL)
    AND (joining_fee_refundable_after_days IS NULL OR joining_fee_atoms IS NOT NULL));

-- What each member paid to join, so leaving refunds exactly that, whatever the fee is now.
ALTER TABLE currency_members ADD COLUMN joining_fee_atoms BIGINT NOT NULL DEFAULT 0
    CHECK (joining_fee_atoms >= 0);
ALTER TABLE currency_members ADD COLUMN joining_fee_currency_id BIGINT REFERENCES currencies (id);
-- From when leaving refunds the fee; NULL: never.
ALTER TABLE currency_members ADD COLUMN refundable_from_us BIGINT;
