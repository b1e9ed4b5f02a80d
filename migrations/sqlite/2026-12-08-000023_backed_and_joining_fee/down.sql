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
    kind TEXT NOT NULL DEFAULT 'issuer_credit' CHECK (kind IN ('issuer_credit', 'mutual_credit'))
);
INSERT INTO currencies_rebuilt (id, code, name, issuer_id, scale, credit_limit_atoms, max_balance_atoms, unit, par, created_at_us, kind, member_credit_limit_atoms, max_payment_atoms, transfer_fee_bps, transfer_fee_min_atoms, transfer_fee_to_id, demurrage_rate_bps, demurrage_period, demurrage_to_id, demurrage_through, requires_admission, freezable, sealed)
    SELECT id, code, name, issuer_id, scale, credit_limit_atoms, max_balance_atoms, unit, par, created_at_us, kind, member_credit_limit_atoms, max_payment_atoms, transfer_fee_bps, transfer_fee_min_atoms, transfer_fee_to_id, demurrage_rate_bps, demurrage_period, demurrage_to_id, demurrage_through, requires_admission, freezable, sealed FROM currencies;
DROP TABLE currencies;
ALTER TABLE currencies_rebuilt RENAME TO currencies;
ALTER TABLE currency_members DROP COLUMN refundable_from_us;
ALTER TABLE currency_members DROP COLUMN joining_fee_currency_id;
ALTER TABLE currency_members DROP COLUMN joining_fee_atoms;
COMMIT;
PRAGMA foreign_keys = ON;
