-- Clearing statements and previews (issue 21).
--
-- A run remembers the digest of the graph it solved, so a dry run's plan can be applied later
-- exactly as previewed, or refused when the debts moved meanwhile; and the run that applied a
-- preview names it.
ALTER TABLE clearing_runs ADD COLUMN graph_digest TEXT;
ALTER TABLE clearing_runs ADD COLUMN preview_of BIGINT REFERENCES clearing_runs (id);

-- Each business of a run's graph: what it owed and was owed before and after the run, in the
-- run's granules. Its net position (owed - owes) is the same before and after: checked when
-- the run is applied, and kept here so an owner can show it to an accountant.
CREATE TABLE clearing_positions (
    run_id BIGINT NOT NULL REFERENCES clearing_runs (id),
    business_id BIGINT NOT NULL REFERENCES principals (id),
    owes_before_granules BIGINT NOT NULL CHECK (owes_before_granules >= 0),
    owed_before_granules BIGINT NOT NULL CHECK (owed_before_granules >= 0),
    owes_after_granules BIGINT NOT NULL CHECK (owes_after_granules >= 0),
    owed_after_granules BIGINT NOT NULL CHECK (owed_after_granules >= 0),
    CHECK (owed_before_granules - owes_before_granules = owed_after_granules - owes_after_granules),
    PRIMARY KEY (run_id, business_id)
);
CREATE INDEX clearing_positions_business ON clearing_positions (business_id, run_id);

-- Each account a run's set-offs moved: its balance before and after (read back from the
-- ledger for an applied run; as planned for a dry run).
CREATE TABLE clearing_balances (
    run_id BIGINT NOT NULL REFERENCES clearing_runs (id),
    business_id BIGINT NOT NULL REFERENCES principals (id),
    currency_id BIGINT NOT NULL REFERENCES currencies (id),
    before_atoms BIGINT NOT NULL,
    after_atoms BIGINT NOT NULL,
    PRIMARY KEY (run_id, business_id, currency_id)
);
