-- The process group each server's current step runs in (shell transports), written as
-- soon as the server tells it and deleted when the server is done: what a controller that
-- dies leaves running, for the next `run` or `serve` to stop. `start_time` tells the
-- process from another given the same pid later; `host` is the controller's host for the
-- local transport (its pids mean nothing elsewhere).
CREATE TABLE IF NOT EXISTS running_groups (
    execution_id  TEXT NOT NULL,
    node          TEXT NOT NULL,
    pid           BIGINT NOT NULL,
    start_time    TEXT NOT NULL DEFAULT '',
    kill_as       TEXT NOT NULL DEFAULT '',
    host          TEXT NOT NULL DEFAULT '',
    tries         BIGINT NOT NULL DEFAULT 0,
    next_try_at   BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (execution_id, node)
);

-- How a session was opened (`password and mailed code`, `sso`): a session a tenant's
-- front-end opened (SSO) makes no API token.
ALTER TABLE sessions ADD COLUMN how TEXT NOT NULL DEFAULT '';
