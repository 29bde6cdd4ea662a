-- Administrators in their lanes (2026-12): whether an account is a top administrator is a
-- fact of its own, granted only by a top administrator or the controller's command line
-- (before, an admin without a manager was one, so clearing `manager` made one).
ALTER TABLE users ADD COLUMN top_admin INTEGER NOT NULL DEFAULT 0;
UPDATE users SET top_admin = 1 WHERE role = 'admin' AND manager IS NULL;

-- The account behind each audit entry's actor ('' for older entries and unknown names),
-- so that an administrator reads the entries of the accounts it manages.
ALTER TABLE audit ADD COLUMN account TEXT NOT NULL DEFAULT '';
CREATE INDEX IF NOT EXISTS audit_account ON audit (account, at);

-- A login ticket's absolute end: a re-sent code never outlives it.
ALTER TABLE login_codes ADD COLUMN ends_at BIGINT NOT NULL DEFAULT 0;
