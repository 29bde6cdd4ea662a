-- Accounts, their sessions and API tokens, login codes, brute-force waits, replay guards
-- and the audit log (`controller users`, `controller tokens`, `serve`'s API).
-- Secrets are never stored in clear: passwords as Argon2id PHC strings, tokens, session
-- ids, login tickets and codes as SHA-256 hex.
CREATE TABLE IF NOT EXISTS users (
    name          TEXT PRIMARY KEY,
    password      TEXT NOT NULL,
    role          TEXT NOT NULL,
    email         TEXT NOT NULL,
    projects      TEXT NOT NULL DEFAULT '[]',
    primary_user  TEXT,
    manager       TEXT,
    tenant        TEXT,
    disabled      INTEGER NOT NULL DEFAULT 0,
    created_at    BIGINT NOT NULL,
    changed_at    BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS tokens (
    id            TEXT PRIMARY KEY,
    user_name     TEXT NOT NULL,
    secret_hash   TEXT NOT NULL,
    label         TEXT NOT NULL DEFAULT '',
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT,
    revoked_at    BIGINT,
    last_used_at  BIGINT
);
CREATE INDEX IF NOT EXISTS tokens_user ON tokens (user_name);

-- Step two of a login: the ticket given after the password, the mailed code.
CREATE TABLE IF NOT EXISTS login_codes (
    ticket_hash   TEXT PRIMARY KEY,
    user_name     TEXT NOT NULL,
    code_hash     TEXT NOT NULL,
    expires_at    BIGINT NOT NULL,
    tries         BIGINT NOT NULL DEFAULT 0,
    sends         BIGINT NOT NULL DEFAULT 1,
    used          INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS sessions (
    id_hash       TEXT PRIMARY KEY,
    user_name     TEXT NOT NULL,
    csrf          TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    seen_at       BIGINT NOT NULL,
    ended_at      BIGINT
);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions (user_name);

-- Consecutive login failures per account (`user:NAME`) and per client (`addr:IP`).
CREATE TABLE IF NOT EXISTS login_waits (
    subject       TEXT PRIMARY KEY,
    failures      BIGINT NOT NULL,
    until_at      BIGINT NOT NULL
);

-- WSSE nonces and SSO tokens already used, kept until they could no longer be valid.
CREATE TABLE IF NOT EXISTS replay_guard (
    key           TEXT PRIMARY KEY,
    expires_at    BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS audit (
    id            TEXT PRIMARY KEY,
    at            BIGINT NOT NULL,
    actor         TEXT NOT NULL,
    address       TEXT NOT NULL DEFAULT '',
    action        TEXT NOT NULL,
    target        TEXT NOT NULL DEFAULT '',
    detail        TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS audit_at ON audit (at);

-- The account that started an execution ('' for schedules, triggers and the CLI).
ALTER TABLE executions ADD COLUMN account TEXT NOT NULL DEFAULT '';

