ALTER TABLE currency_members DROP COLUMN refundable_from_us;
ALTER TABLE currency_members DROP COLUMN joining_fee_currency_id;
ALTER TABLE currency_members DROP COLUMN joining_fee_atoms;
ALTER TABLE currencies DROP CONSTRAINT currencies_joining_fee_whole;
ALTER TABLE currencies DROP COLUMN joining_fee_refundable_after_days;
ALTER TABLE currencies DROP COLUMN joining_fee_currency_id;
ALTER TABLE currencies DROP COLUMN joining_fee_atoms;
ALTER TABLE currencies DROP CONSTRAINT currencies_backing_iff_backed;
ALTER TABLE currencies DROP COLUMN backing_lock_days;
ALTER TABLE currencies DROP COLUMN backing_ratio_bps;
ALTER TABLE currencies DROP COLUMN backing_currency_id;
ALTER TABLE currencies DROP CONSTRAINT currencies_kind_check;
ALTER TABLE currencies ADD CONSTRAINT currencies_kind_check
    CHECK (kind IN ('issuer_credit', 'mutual_credit'));
