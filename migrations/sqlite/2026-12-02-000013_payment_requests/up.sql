-- Payment requests as tracked objects (issue 17): a till asks for an amount, shows the
-- request's QR, and sees it paid. A request is paid at most once: paying claims the row
-- (paid_by set where it was unset and the request had not expired) in the same transaction
-- as the transfer, so a second payer finds it claimed. The id is random: it is the
-- capability a QR carries, and what anyone holding it may read.
CREATE TABLE payment_requests (
    id TEXT PRIMARY KEY,
    to_id BIGINT NOT NULL REFERENCES principals (id),
    currency_id BIGINT NOT NULL REFERENCES currencies (id),
    amount_atoms BIGINT NOT NULL CHECK (amount_atoms > 0),
    memo TEXT,
    created_by BIGINT NOT NULL REFERENCES principals (id),
    created_at_us BIGINT NOT NULL,
    expires_at_us BIGINT NOT NULL,
    paid_by BIGINT REFERENCES principals (id),
    transfer_id BIGINT REFERENCES transfers (id),
    paid_at_us BIGINT
);
CREATE INDEX payment_requests_to ON payment_requests (to_id, created_at_us);
-- The open requests of a recipient, counted at every new one: only unpaid rows, by expiry.
CREATE INDEX payment_requests_open ON payment_requests (to_id, expires_at_us) WHERE paid_by IS NULL;
