-- The clearing house: businesses that opted out, obligations outside the ledger, and runs.

CREATE TABLE clearing_opt_outs (
    business_id BIGINT PRIMARY KEY REFERENCES principals (id),
    created_at_us BIGINT NOT NULL
);

-- Debts recorded outside the ledger (invoices, loans), in a unit of account with 8 decimals.
-- The creditor records one; only once the debtor accepts it does clearing count it.
CREATE TABLE obligations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    debtor_id BIGINT NOT NULL REFERENCES principals (id),
    creditor_id BIGINT NOT NULL REFERENCES principals (id),
    unit TEXT NOT NULL,
    amount_atoms BIGINT NOT NULL CHECK (amount_atoms > 0),
    remaining_atoms BIGINT NOT NULL CHECK (remaining_atoms >= 0 AND remaining_atoms <= amount_atoms),
    memo TEXT,
    status TEXT NOT NULL CHECK (status IN ('proposed', 'accepted')),
    created_at_us BIGINT NOT NULL,
    accepted_at_us BIGINT,
    CHECK (debtor_id <> creditor_id)
);
CREATE INDEX obligations_debtor ON obligations (debtor_id);
CREATE INDEX obligations_creditor ON obligations (creditor_id);

-- A run and what it set off. Amounts of value are exact decimal strings in the run's unit.
CREATE TABLE clearing_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    unit TEXT NOT NULL,
    dry_run INTEGER NOT NULL CHECK (dry_run IN (0, 1)),
    started_at_us BIGINT NOT NULL,
    finished_at_us BIGINT NOT NULL,
    participants BIGINT NOT NULL,
    edges BIGINT NOT NULL,
    cycles BIGINT NOT NULL,
    gross_before TEXT NOT NULL,
    cleared TEXT NOT NULL,
    gross_after TEXT NOT NULL,
    requested_by BIGINT REFERENCES principals (id)
);

CREATE TABLE clearing_settlements (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id BIGINT NOT NULL REFERENCES clearing_runs (id),
    debtor_id BIGINT NOT NULL REFERENCES principals (id),
    creditor_id BIGINT NOT NULL REFERENCES principals (id),
    amount TEXT NOT NULL,
    source TEXT NOT NULL CHECK (source IN ('holding', 'obligation')),
    currency_id BIGINT REFERENCES currencies (id),
    transfer_id BIGINT REFERENCES transfers (id),
    obligation_id BIGINT REFERENCES obligations (id)
);
CREATE INDEX clearing_settlements_run ON clearing_settlements (run_id);
