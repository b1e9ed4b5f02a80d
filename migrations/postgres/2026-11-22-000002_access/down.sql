DROP TABLE principal_roles;
DROP TABLE memberships;
DROP TABLE credentials;
