-- Identity and access: passwords, who acts for which business, registry roles.

CREATE TABLE credentials (
    principal_id BIGINT PRIMARY KEY REFERENCES principals (id),
    password_hash TEXT NOT NULL,
    created_at_us BIGINT NOT NULL
);

CREATE TABLE memberships (
    business_id BIGINT NOT NULL REFERENCES principals (id),
    member_id BIGINT NOT NULL REFERENCES principals (id),
    role TEXT NOT NULL CHECK (role IN ('owner', 'worker')),
    created_at_us BIGINT NOT NULL,
    PRIMARY KEY (business_id, member_id)
);
CREATE INDEX memberships_member ON memberships (member_id);

CREATE TABLE principal_roles (
    principal_id BIGINT NOT NULL REFERENCES principals (id),
    role TEXT NOT NULL CHECK (role IN ('operator')),
    created_at_us BIGINT NOT NULL,
    PRIMARY KEY (principal_id, role)
);
