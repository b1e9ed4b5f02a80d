-- Backed currencies and joining fees (issue 19, API.md "Currency policies"); the PostgreSQL
-- migration says what each column means. SQLite cannot change a column's CHECK (kind gains
-- 'backed'), so the table is rebuilt the way SQLite's documentation prescribes: with foreign
-- keys off, outside diesel's transaction (metadata.toml), in a transaction of its own. Rows
-- are copied with their ids, so every reference to a currency still resolves.
PRAGMA foreign_keys = OFF;
BEGIN;
CREATE TABLE currencies_rebuilt (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    code TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    issuer_id BIGINT NOT NULL REFERENCES principals (id),
    scale INTEGER NOT NULL CHECK (scale BETWEEN 0 AND 8),
    credit_limit_atoms BIGINT NOT NULL CHECK (credit_limit_atoms >= 0),
    max_balance_atoms BIGINT CHECK (max_balance_atoms >= 0),
    unit TEXT NOT NULL,
    par TEXT NOT NULL,
    created_at_us BIGINT NOT NULL,
    member_credit_limit_atoms BIGINT NOT NULL DEFAULT 0 CHECK (member_credit_limit_atoms >= 0),
    max_payment_atoms BIGINT CHECK (max_payment_atoms > 0),
    transfer_fee_bps INTEGER CHECK (transfer_fee_bps BETWEEN 1 AND 10000),
    transfer_fee_min_atoms BIGINT NOT NULL DEFAULT 0 CHECK (transfer_fee_min_atoms >= 0),
    transfer_fee_to_id BIGINT REFERENCES principals (id),
    demurrage_rate_bps INTEGER CHECK (demurrage_rate_bps BETWEEN 1 AND 10000),
    demurrage_period TEXT CHECK (demurrage_period IN ('day', 'week', 'month')),
    demurrage_to_id BIGINT REFERENCES principals (id),
    demurrage_through BIGINT,
    requires_admission INTEGER NOT NULL DEFAULT 0 CHECK (requires_admission IN (0, 1)),
    freezable INTEGER NOT NULL DEFAULT 0 CHECK (freezable IN (0, 1)),
    sealed TEXT NOT NULL DEFAULT '',
    kind TEXT NOT NULL DEFAULT 'issuer_credit' CHECK (kind IN ('issuer_credit', 'mutual_credit', 'backed')),
    backing_currency_id BIGINT REFERENCES currencies (id),
    backing_ratio_bps INTEGER CHECK (backing_ratio_bps BETWEEN 1 AND 100000),
    backing_lock_days INTEGER CHECK (backing_lock_days BETWEEN 0 AND 3650),
    joining_fee_atoms BIGINT CHECK (joining_fee_atoms > 0),
    joining_fee_currency_id BIGINT REFERENCES currencies (id),
    joining_fee_refundable_after_days INTEGER
        CHECK (joining_fee_refundable_after_days BETWEEN 0 AND 3650),
    CONSTRAINT currencies_backing_iff_backed CHECK (
        (kind = 'backed') = (backing_currency_id IS NOT NULL
            AND backing_ratio_bps IS NOT NULL AND backing_lock_days IS NOT NULL)),
    CONSTRAINT currencies_joining_fee_whole CHECK (
        (joining_fee_atoms IS NULL) = (joining_fee_currency_id IS NULL)
        AND (joining_fee_refundable_after_days IS NULL OR joining_fee_atoms IS NOT NULL))
);
INSERT INTO currencies_rebuilt (id, code, name, issuer_id, scale, credit_limit_atoms, max_balance_atoms, unit, par, created_at_us, kind, member_credit_limit_atoms, max_payment_atoms, transfer_fee_bps, transfer_fee_min_atoms, transfer_fee_to_id, demurrage_rate_bps, demurrage_period, demurrage_to_id, demurrage_through, requires_admission, freezable, sealed)
    SELECT id, code, name, issuer_id, scale, credit_limit_atoms, max_balance_atoms, unit, par, created_at_us, kind, member_credit_limit_atoms, max_payment_atoms, transfer_fee_bps, transfer_fee_min_atoms, transfer_fee_to_id, demurrage_rate_bps, demurrage_period, demurrage_to_id, demurrage_through, requires_admission, freezable, sealed FROM currencies;
DROP TABLE currencies;
ALTER TABLE currencies_rebuilt RENAME TO currencies;
ALTER TABLE currency_members ADD COLUMN joining_fee_atoms BIGINT NOT NULL DEFAULT 0
    CHECK (joining_fee_atoms >= 0);
ALTER TABLE currency_members ADD COLUMN joining_fee_currency_id BIGINT REFERENCES currencies (id);
ALTER TABLE currency_members ADD COLUMN refundable_from_us BIGINT;
COMMIT;
PRAGMA foreign_keys = ON;
