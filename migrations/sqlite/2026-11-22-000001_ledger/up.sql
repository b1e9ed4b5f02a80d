-- The ledger. Money columns are BIGINT atoms; a currency row carries its scale.
-- CHECK constraints restate the ledger's invariants so that even a bug in the application
-- cannot commit a negative member balance or spend held funds twice.

CREATE TABLE principals (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    handle TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('user', 'business', 'registry')),
    display_name TEXT,
    created_at_us BIGINT NOT NULL
);

CREATE TABLE currencies (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    code TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    issuer_id BIGINT NOT NULL REFERENCES principals (id),
    scale INTEGER NOT NULL CHECK (scale BETWEEN 0 AND 8),
    credit_limit_atoms BIGINT NOT NULL CHECK (credit_limit_atoms >= 0),
    max_balance_atoms BIGINT CHECK (max_balance_atoms >= 0),
    unit TEXT NOT NULL,
    par TEXT NOT NULL,
    created_at_us BIGINT NOT NULL
);

CREATE TABLE accounts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    principal_id BIGINT NOT NULL REFERENCES principals (id),
    currency_id BIGINT NOT NULL REFERENCES currencies (id),
    balance_atoms BIGINT NOT NULL DEFAULT 0,
    held_atoms BIGINT NOT NULL DEFAULT 0 CHECK (held_atoms >= 0),
    floor_atoms BIGINT NOT NULL CHECK (floor_atoms <= 0),
    ceiling_atoms BIGINT,
    created_at_us BIGINT NOT NULL,
    UNIQUE (principal_id, currency_id),
    CHECK (balance_atoms - held_atoms >= floor_atoms),
    CHECK (ceiling_atoms IS NULL OR balance_atoms <= ceiling_atoms)
);
CREATE INDEX accounts_currency ON accounts (currency_id);

CREATE TABLE holds (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    amount_atoms BIGINT NOT NULL CHECK (amount_atoms > 0),
    remaining_atoms BIGINT NOT NULL CHECK (remaining_atoms >= 0 AND remaining_atoms <= amount_atoms),
    reason TEXT NOT NULL,
    created_at_us BIGINT NOT NULL
);
CREATE INDEX holds_account ON holds (account_id);

-- The journal: every change of a balance is one row here, appended and never edited.
CREATE TABLE transfers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    currency_id BIGINT NOT NULL REFERENCES currencies (id),
    from_account_id BIGINT NOT NULL REFERENCES accounts (id),
    to_account_id BIGINT NOT NULL REFERENCES accounts (id),
    amount_atoms BIGINT NOT NULL CHECK (amount_atoms > 0),
    kind TEXT NOT NULL,
    memo TEXT,
    hold_id BIGINT REFERENCES holds (id),
    created_at_us BIGINT NOT NULL,
    CHECK (from_account_id <> to_account_id)
);
CREATE INDEX transfers_from_account ON transfers (from_account_id, id);
CREATE INDEX transfers_to_account ON transfers (to_account_id, id);

CREATE TABLE idempotency_keys (
    principal_id BIGINT NOT NULL REFERENCES principals (id),
    idempotency_key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    response_status INTEGER NOT NULL,
    response_body TEXT NOT NULL,
    created_at_us BIGINT NOT NULL,
    PRIMARY KEY (principal_id, idempotency_key)
);

-- The registry's own principal collects exchange fees (API.md, Exchange).
INSERT INTO principals (handle, kind, display_name, created_at_us)
VALUES ('registry', 'registry', 'The registry', 0);
