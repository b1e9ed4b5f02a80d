-- Why an order ended unfilled (issue 17's order history): requested, self_trade, max_balance,
-- unfilled, not_fillable or would_cross. Null for orders still open or filled, and for orders
-- that ended before this column existed.
ALTER TABLE orders ADD COLUMN end_reason TEXT;
