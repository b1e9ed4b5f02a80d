-- Obligations between businesses that share an owner (issue 15, L9): one person could record
-- any sum between their own businesses and inflate the clearing figures, so such obligations
-- are marked when proposed and shown apart. 1: the two shared an owner when it was proposed.
ALTER TABLE obligations ADD COLUMN related INTEGER NOT NULL DEFAULT 0;
UPDATE obligations SET related = 1 WHERE EXISTS (
    SELECT 1 FROM memberships d JOIN memberships c ON c.member_id = d.member_id
    WHERE d.business_id = obligations.debtor_id AND c.business_id = obligations.creditor_id
      AND d.role = 'owner' AND c.role = 'owner'
);
