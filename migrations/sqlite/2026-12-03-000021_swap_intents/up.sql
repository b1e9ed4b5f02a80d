-- Ring trades at clearing time (issue 21): a holder's standing intent "I give up to N of one
-- currency for another at par"; a clearing run finds cycles of intents and settles them at
-- par with the businesses' debts, in the same optimal circulation.
CREATE TABLE clearing_intents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    holder_id BIGINT NOT NULL REFERENCES principals (id),
    give_currency_id BIGINT NOT NULL REFERENCES currencies (id),
    want_currency_id BIGINT NOT NULL REFERENCES currencies (id),
    max_atoms BIGINT NOT NULL CHECK (max_atoms > 0),
    remaining_atoms BIGINT NOT NULL CHECK (remaining_atoms >= 0 AND remaining_atoms <= max_atoms),
    status TEXT NOT NULL CHECK (status IN ('open', 'filled', 'cancelled')),
    created_at_us BIGINT NOT NULL,
    CHECK (give_currency_id <> want_currency_id)
);
CREATE INDEX clearing_intents_holder ON clearing_intents (holder_id, id);
CREATE INDEX clearing_intents_open ON clearing_intents (status, id);

-- What a run gave and got for each intent it settled, at par.
CREATE TABLE clearing_intent_fills (
    run_id BIGINT NOT NULL REFERENCES clearing_runs (id),
    intent_id BIGINT NOT NULL REFERENCES clearing_intents (id),
    granules BIGINT NOT NULL CHECK (granules > 0),
    gave_atoms BIGINT NOT NULL CHECK (gave_atoms > 0),
    received_atoms BIGINT NOT NULL CHECK (received_atoms > 0),
    PRIMARY KEY (run_id, intent_id)
);
