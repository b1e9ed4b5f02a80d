-- Governance (issue 20): which of a business's actions need how many distinct owners, the
-- proposals that wait for them, each owner's decision, and the log of every change.
CREATE TABLE approval_rules (
    business_id BIGINT PRIMARY KEY REFERENCES principals (id),
    required INTEGER NOT NULL CHECK (required >= 1),
    -- The guarded actions, comma-separated, sorted: issue, limits, markets, members, policy.
    actions TEXT NOT NULL,
    -- Issuing (paying out of the business's own currency) needs approvals only above this
    -- decimal amount, in the currency's units; NULL: every issue.
    issue_above TEXT,
    set_by BIGINT NOT NULL REFERENCES principals (id),
    set_at_us BIGINT NOT NULL
);
CREATE TABLE proposals (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    business_id BIGINT NOT NULL REFERENCES principals (id),
    action TEXT NOT NULL CHECK (action IN ('issue', 'limits', 'markets', 'members', 'policy', 'approvals')),
    -- What runs when approved: the request as it was made, checked again then.
    payload TEXT NOT NULL,
    summary TEXT NOT NULL,
    proposed_by BIGINT NOT NULL REFERENCES principals (id),
    required INTEGER NOT NULL CHECK (required >= 2),
    status TEXT NOT NULL CHECK (status IN ('open', 'executed', 'rejected')),
    -- What the action answered when it ran (JSON), once executed.
    outcome TEXT,
    created_at_us BIGINT NOT NULL,
    expires_at_us BIGINT NOT NULL,
    decided_at_us BIGINT
);
CREATE INDEX proposals_business ON proposals (business_id, id);
CREATE TABLE proposal_votes (
    proposal_id BIGINT NOT NULL REFERENCES proposals (id),
    owner_id BIGINT NOT NULL REFERENCES principals (id),
    approve INTEGER NOT NULL CHECK (approve IN (0, 1)),
    at_us BIGINT NOT NULL,
    PRIMARY KEY (proposal_id, owner_id)
);
CREATE TABLE business_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    business_id BIGINT NOT NULL REFERENCES principals (id),
    actor_id BIGINT NOT NULL REFERENCES principals (id),
    action TEXT NOT NULL,
    detail TEXT NOT NULL,
    at_us BIGINT NOT NULL
);
CREATE INDEX business_log_business ON business_log (business_id, id);
