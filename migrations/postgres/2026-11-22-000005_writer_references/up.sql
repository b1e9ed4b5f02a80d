-- The exchange's write path inserts, per order, an order row, a hold, and per trade a trade
-- row and up to four journal lines. On PostgreSQL every foreign key on those rows is checked
-- by a trigger that runs one query per row and key; measured on the order path those checks
-- cost more than the inserts themselves (README, "Orders over HTTP").
--
-- The references below are made by the market's single writer from rows it has just locked
-- or created in the same transaction, and the rows they point at are never deleted (accounts
-- only when opened and unused in that same transaction). They stay declared on SQLite, where
-- a check is an in-process index probe, and `scrip audit` (and the periodic audit) reports any
-- row whose reference does not resolve (`Violation::DanglingReference`).
--
-- Money rows keep their keys on PostgreSQL too: a journal line's two accounts and a hold's
-- account.
ALTER TABLE transfers DROP CONSTRAINT transfers_currency_id_fkey;
ALTER TABLE transfers DROP CONSTRAINT transfers_hold_id_fkey;
ALTER TABLE orders DROP CONSTRAINT orders_market_id_fkey;
ALTER TABLE orders DROP CONSTRAINT orders_owner_id_fkey;
ALTER TABLE orders DROP CONSTRAINT orders_hold_id_fkey;
ALTER TABLE trades DROP CONSTRAINT trades_market_id_fkey;
ALTER TABLE trades DROP CONSTRAINT trades_taker_order_id_fkey;
ALTER TABLE trades DROP CONSTRAINT trades_maker_order_id_fkey;
