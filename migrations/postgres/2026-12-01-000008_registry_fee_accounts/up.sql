-- The registry's accounts collect fees and take no maximum balance (issue: a holder that
-- filled the registry's account up to the currency's maximum refused every fee, and so every
-- trade with a fee, in that currency's markets).
UPDATE accounts SET ceiling_atoms = NULL
WHERE principal_id IN (SELECT id FROM principals WHERE kind = 'registry');
