-- Proof of liabilities (issue 21): each holder's secret salt for its leaf of the currency's
-- Merkle-sum tree (so the tree reveals no one's handle), and every root published, so a
-- holder can check a proof it kept against the root of that day.
CREATE TABLE liability_salts (
    account_id BIGINT PRIMARY KEY REFERENCES accounts (id),
    currency_id BIGINT NOT NULL REFERENCES currencies (id),
    salt TEXT NOT NULL CHECK (length(salt) = 64)
);
CREATE INDEX liability_salts_currency ON liability_salts (currency_id);

CREATE TABLE liability_roots (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    currency_id BIGINT NOT NULL REFERENCES currencies (id),
    root TEXT NOT NULL CHECK (length(root) = 64),
    total_atoms BIGINT NOT NULL CHECK (total_atoms >= 0),
    holders BIGINT NOT NULL CHECK (holders >= 0),
    as_of_us BIGINT NOT NULL
);
CREATE INDEX liability_roots_currency ON liability_roots (currency_id, id);
