UPDATE accounts SET ceiling_atoms = (
    SELECT max_balance_atoms FROM currencies WHERE currencies.id = accounts.currency_id
)
WHERE principal_id IN (SELECT id FROM principals WHERE kind = 'registry');
