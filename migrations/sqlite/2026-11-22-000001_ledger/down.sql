DROP TABLE idempotency_keys;
DROP TABLE transfers;
DROP TABLE holds;
DROP TABLE accounts;
DROP TABLE currencies;
DROP TABLE principals;
