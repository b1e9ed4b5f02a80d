-- Currency policies (issue 19, API.md "Currency policies"): what kind of LETS a currency is and
-- the knobs its stewards set. Every rule is decided in the ledger's rules module; the CHECKs
-- restate the bounds so a bug cannot store a policy the rules would never accept.
ALTER TABLE currencies ADD COLUMN kind TEXT NOT NULL DEFAULT 'issuer_credit'
    CHECK (kind IN ('issuer_credit', 'mutual_credit'));
ALTER TABLE currencies ADD COLUMN member_credit_limit_atoms BIGINT NOT NULL DEFAULT 0
    CHECK (member_credit_limit_atoms >= 0);
ALTER TABLE currencies ADD COLUMN max_payment_atoms BIGINT CHECK (max_payment_atoms > 0);
ALTER TABLE currencies ADD COLUMN transfer_fee_bps INTEGER
    CHECK (transfer_fee_bps BETWEEN 1 AND 10000);
ALTER TABLE currencies ADD COLUMN transfer_fee_min_atoms BIGINT NOT NULL DEFAULT 0
    CHECK (transfer_fee_min_atoms >= 0);
ALTER TABLE currencies ADD COLUMN transfer_fee_to_id BIGINT REFERENCES principals (id);
ALTER TABLE currencies ADD COLUMN demurrage_rate_bps INTEGER
    CHECK (demurrage_rate_bps BETWEEN 1 AND 10000);
ALTER TABLE currencies ADD COLUMN demurrage_period TEXT
    CHECK (demurrage_period IN ('day', 'week', 'month'));
ALTER TABLE currencies ADD COLUMN demurrage_to_id BIGINT REFERENCES principals (id);
-- The last period whose demurrage every account has paid (period numbers: demurrage.rs).
ALTER TABLE currencies ADD COLUMN demurrage_through BIGINT;
ALTER TABLE currencies ADD COLUMN requires_admission INTEGER NOT NULL DEFAULT 0 CHECK (requires_admission IN (0, 1));
ALTER TABLE currencies ADD COLUMN freezable INTEGER NOT NULL DEFAULT 0 CHECK (freezable IN (0, 1));
-- Comma-separated policy fields that can never change again.
ALTER TABLE currencies ADD COLUMN sealed TEXT NOT NULL DEFAULT '';

-- A frozen account can neither pay nor trade (only where the currency is freezable).
ALTER TABLE accounts ADD COLUMN frozen INTEGER NOT NULL DEFAULT 0 CHECK (frozen IN (0, 1));

-- The members of a currency that has any (mutual credit, or admission required): each with
-- its own credit limit (mutual credit; the account's floor is minus it).
CREATE TABLE currency_members (
    currency_id BIGINT NOT NULL REFERENCES currencies (id),
    principal_id BIGINT NOT NULL REFERENCES principals (id),
    credit_limit_atoms BIGINT NOT NULL CHECK (credit_limit_atoms >= 0),
    admitted_at_us BIGINT NOT NULL,
    PRIMARY KEY (currency_id, principal_id)
);

-- One row per account and period charged: the primary key is what makes a period's
-- demurrage at most once per account, however often the job runs or crashes.
CREATE TABLE demurrage_charges (
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    period BIGINT NOT NULL,
    currency_id BIGINT NOT NULL REFERENCES currencies (id),
    -- This period's charge plus what earlier periods could not collect.
    due_atoms BIGINT NOT NULL CHECK (due_atoms > 0),
    charged_atoms BIGINT NOT NULL CHECK (charged_atoms >= 0 AND charged_atoms <= due_atoms),
    transfer_id BIGINT REFERENCES transfers (id),
    created_at_us BIGINT NOT NULL,
    PRIMARY KEY (account_id, period)
);
CREATE INDEX demurrage_charges_currency ON demurrage_charges (currency_id, period);
