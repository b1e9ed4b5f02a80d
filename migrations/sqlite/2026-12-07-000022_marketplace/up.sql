-- The marketplace (issue 22): offers and wants of people and businesses, deals between a
-- buyer and a seller paid through the ledger, and the feedback each side leaves once paid.
CREATE TABLE listings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    holder_id BIGINT NOT NULL REFERENCES principals (id),
    author_id BIGINT NOT NULL REFERENCES principals (id),
    kind TEXT NOT NULL CHECK (kind IN ('offer', 'want')),
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    price_atoms BIGINT CHECK (price_atoms > 0),
    price_currency_id BIGINT REFERENCES currencies (id),
    category TEXT,
    place TEXT,
    status TEXT NOT NULL CHECK (status IN ('open', 'withdrawn')),
    created_at_us BIGINT NOT NULL,
    updated_at_us BIGINT NOT NULL,
    CHECK ((price_atoms IS NULL) = (price_currency_id IS NULL))
);
CREATE INDEX listings_holder ON listings (holder_id, id);
CREATE INDEX listings_open ON listings (status, kind, id);
CREATE INDEX listings_category ON listings (category, id);

-- The currencies a listing takes besides its price's (empty: only the price's).
CREATE TABLE listing_currencies (
    listing_id BIGINT NOT NULL REFERENCES listings (id),
    currency_id BIGINT NOT NULL REFERENCES currencies (id),
    PRIMARY KEY (listing_id, currency_id)
);

CREATE TABLE deals (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    listing_id BIGINT NOT NULL REFERENCES listings (id),
    buyer_id BIGINT NOT NULL REFERENCES principals (id),
    seller_id BIGINT NOT NULL REFERENCES principals (id),
    -- Who asked for the deal (the buyer of an offer, the seller answering a want).
    opened_by_id BIGINT NOT NULL REFERENCES principals (id),
    terms TEXT NOT NULL CHECK (terms IN ('fixed', 'after')),
    status TEXT NOT NULL CHECK (status IN ('open', 'paid')),
    currency_id BIGINT NOT NULL REFERENCES currencies (id),
    -- Fixed terms: the price agreed. After: null until the buyer pays what it judges fair.
    amount_atoms BIGINT CHECK (amount_atoms > 0),
    -- Set with status 'paid' in the payment's own transaction.
    transfer_id BIGINT REFERENCES transfers (id),
    -- What the registry's onboarding fund paid of it (new coinage).
    onboarding_atoms BIGINT NOT NULL DEFAULT 0 CHECK (onboarding_atoms >= 0),
    created_at_us BIGINT NOT NULL,
    paid_at_us BIGINT,
    -- The Idempotency-Key (and request hash) the deal was opened with, and paid with: a
    -- retry gets the deal again instead of a second one.
    request_key TEXT,
    request_hash TEXT,
    paid_key TEXT,
    paid_hash TEXT,
    CHECK (buyer_id <> seller_id),
    CHECK (terms = 'after' OR amount_atoms IS NOT NULL)
);
CREATE INDEX deals_buyer ON deals (buyer_id, id);
CREATE INDEX deals_seller ON deals (seller_id, id);
CREATE INDEX deals_listing ON deals (listing_id, id);
CREATE UNIQUE INDEX deals_request_key ON deals (opened_by_id, request_key);
CREATE INDEX deals_opened_open ON deals (opened_by_id, status);

-- One rating per party of a paid deal, of the other party.
CREATE TABLE deal_feedback (
    deal_id BIGINT NOT NULL REFERENCES deals (id),
    from_id BIGINT NOT NULL REFERENCES principals (id),
    to_id BIGINT NOT NULL REFERENCES principals (id),
    rating INTEGER NOT NULL CHECK (rating BETWEEN 1 AND 5),
    comment TEXT,
    created_at_us BIGINT NOT NULL,
    updated_at_us BIGINT NOT NULL,
    PRIMARY KEY (deal_id, from_id)
);
CREATE INDEX deal_feedback_to ON deal_feedback (to_id, created_at_us);

-- Full-text search: an FTS5 index over title and description kept by triggers (porter
-- stemming over unicode61 tokens; queries match each word, the last one as a prefix).
CREATE VIRTUAL TABLE listings_fts USING fts5 (
    title, description, content = 'listings', content_rowid = 'id',
    tokenize = 'porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER listings_fts_insert AFTER INSERT ON listings BEGIN
    INSERT INTO listings_fts (rowid, title, description) VALUES (new.id, new.title, new.description);
END;
CREATE TRIGGER listings_fts_delete AFTER DELETE ON listings BEGIN
    INSERT INTO listings_fts (listings_fts, rowid, title, description)
        VALUES ('delete', old.id, old.title, old.description);
END;
CREATE TRIGGER listings_fts_update AFTER UPDATE OF title, description ON listings BEGIN
    INSERT INTO listings_fts (listings_fts, rowid, title, description)
        VALUES ('delete', old.id, old.title, old.description);
    INSERT INTO listings_fts (rowid, title, description) VALUES (new.id, new.title, new.description);
END;

-- New coinage: each person's onboarding allowance in the registry's mutual-credit currency,
-- written at its first use; what the fund paid for it is `used_atoms` (journal kind
-- `onboarding`), never more than `granted_atoms`.
CREATE TABLE onboarding_allowances (
    principal_id BIGINT PRIMARY KEY REFERENCES principals (id),
    currency_id BIGINT NOT NULL REFERENCES currencies (id),
    granted_atoms BIGINT NOT NULL CHECK (granted_atoms > 0),
    used_atoms BIGINT NOT NULL CHECK (used_atoms >= 0 AND used_atoms <= granted_atoms),
    created_at_us BIGINT NOT NULL
);

-- The new-coinage fund: a business no one owns, under a handle no one can sign up with. It
-- pays newcomers' shares in the registry's mutual-credit currency, as a member going below
-- zero down to the limit the currency's stewards give it.
INSERT INTO principals (handle, kind, display_name, created_at_us)
VALUES ('registry-onboarding', 'business', 'New coinage fund', 0);
