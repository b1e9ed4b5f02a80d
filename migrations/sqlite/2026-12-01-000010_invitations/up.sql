-- Membership by invitation (issue 15, M5): a business names someone its owner or worker only
-- when that person accepts; until then the invitation is all there is, and no profile shows
-- a partnership that was never agreed.
CREATE TABLE invitations (
    business_id BIGINT NOT NULL REFERENCES principals (id),
    member_id BIGINT NOT NULL REFERENCES principals (id),
    role TEXT NOT NULL CHECK (role IN ('owner', 'worker')),
    invited_by BIGINT NOT NULL REFERENCES principals (id),
    created_at_us BIGINT NOT NULL,
    PRIMARY KEY (business_id, member_id)
);
CREATE INDEX invitations_member ON invitations (member_id);
