-- `controller serve`: why each execution started and who runs it, schedule and file-watch
-- fires (each decided exactly once), the leader lease, live controllers, notifications.
ALTER TABLE executions ADD COLUMN cause TEXT NOT NULL DEFAULT 'manual';
ALTER TABLE executions ADD COLUMN owner TEXT NOT NULL DEFAULT '';
ALTER TABLE executions ADD COLUMN fire_key TEXT;
ALTER TABLE executions ADD COLUMN retry_of TEXT;
ALTER TABLE executions ADD COLUMN parent_id TEXT;
CREATE INDEX IF NOT EXISTS executions_status ON executions (status);

-- One row per running controller process (serve or run), refreshed every few seconds.
CREATE TABLE IF NOT EXISTS controllers (
    instance      TEXT PRIMARY KEY,
    host          TEXT NOT NULL,
    pid           BIGINT NOT NULL,
    role          TEXT NOT NULL,
    started_at    BIGINT NOT NULL,
    heartbeat_at  BIGINT NOT NULL
);

-- Named leases: `scheduler` is held by the one controller that fires schedules.
CREATE TABLE IF NOT EXISTS leases (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    expires_at  BIGINT NOT NULL,
    term        BIGINT NOT NULL
);

-- Since when each job's schedule is known: fires before it are not owed.
CREATE TABLE IF NOT EXISTS schedule_state (
    job    TEXT PRIMARY KEY,
    since  BIGINT NOT NULL
);

-- Every schedule fire and file-watch trigger, decided once (the primary key makes a second
-- decision by another controller fail): ran, queued, skipped, missed, failed.
CREATE TABLE IF NOT EXISTS fires (
    job           TEXT NOT NULL,
    fire_key      TEXT NOT NULL,
    kind          TEXT NOT NULL,
    due_at        BIGINT NOT NULL,
    decision      TEXT NOT NULL,
    execution_id  TEXT,
    decided_by    TEXT NOT NULL,
    decided_at    BIGINT NOT NULL,
    options       TEXT NOT NULL DEFAULT '{}',
    note          TEXT,
    PRIMARY KEY (job, fire_key)
);
CREATE INDEX IF NOT EXISTS fires_due ON fires (job, due_at);

CREATE TABLE IF NOT EXISTS notifications (
    execution_id  TEXT NOT NULL,
    event         TEXT NOT NULL,
    channel       TEXT NOT NULL,
    target        TEXT NOT NULL,
    ok            INTEGER NOT NULL,
    detail        TEXT,
    at            BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS notifications_exec ON notifications (execution_id);
