-- Payments converted through the books (issue 18): what each source currency cost the payer,
-- and the trades that converted it. The payment itself is its final transfer (kind payment,
-- payer to recipient), whose id is the payment's id.
CREATE TABLE payment_spends (
    transfer_id BIGINT NOT NULL REFERENCES transfers (id),
    currency_id BIGINT NOT NULL REFERENCES currencies (id),
    -- What the payer's balance in this currency fell by (route costs, the payment, its fee).
    spent_atoms BIGINT NOT NULL CHECK (spent_atoms >= 0),
    -- What the route bought beyond what the payment needed, left with the payer (an
    -- intermediate or the recipient's currency, rounded up to a lot).
    change_atoms BIGINT NOT NULL CHECK (change_atoms >= 0),
    PRIMARY KEY (transfer_id, currency_id)
);
CREATE TABLE payment_trades (
    transfer_id BIGINT NOT NULL REFERENCES transfers (id),
    trade_id BIGINT NOT NULL REFERENCES trades (id),
    PRIMARY KEY (transfer_id, trade_id)
);
