-- Sessions that last (issue 17): a login opens a session; its refresh token buys a new access
-- token and a new refresh token, once (rotation). A refresh token used twice means it was
-- copied: the whole session is revoked. Only hashes of refresh tokens are stored.
CREATE TABLE sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    principal_id BIGINT NOT NULL REFERENCES principals (id),
    created_at_us BIGINT NOT NULL,
    expires_at_us BIGINT NOT NULL,
    revoked_at_us BIGINT
);
CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    session_id BIGINT NOT NULL REFERENCES sessions (id),
    issued_at_us BIGINT NOT NULL,
    used_at_us BIGINT
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);
