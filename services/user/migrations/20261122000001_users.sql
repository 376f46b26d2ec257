-- Accounts. The email is stored normalised (trimmed, lower case), so the unique index makes
-- addresses that differ only in case the same account.
CREATE TABLE users (
    id            uuid        PRIMARY KEY,
    email         text        NOT NULL,
    display_name  text        NOT NULL,
    password_hash text        NOT NULL,            -- argon2id PHC string
    roles         text[]      NOT NULL DEFAULT '{customer}',
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX users_email_key ON users (email);

-- Refresh tokens: opaque to clients, stored as SHA-256 hashes. Each login starts a family;
-- every refresh marks its token used and adds the next one to the family. Presenting a used
-- token again means it was stolen (or replayed): the whole family is revoked.
CREATE TABLE refresh_tokens (
    id         uuid        PRIMARY KEY,
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    family_id  uuid        NOT NULL,
    token_hash bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,                        -- exchanged for its successor
    revoked_at timestamptz                         -- logged out, or the family was compromised
);

CREATE UNIQUE INDEX refresh_tokens_token_hash_key ON refresh_tokens (token_hash);
CREATE INDEX refresh_tokens_family_id ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user_id ON refresh_tokens (user_id);
-- Purging tokens nobody can use any more.
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at);
