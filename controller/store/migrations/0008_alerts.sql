-- Alert configuration per account (the source documents' alert web service), the events
-- that may raise alerts, and the alerts waiting to be delivered.

-- Test runs (executions of jobs marked `test: true`) alert only accounts with send_test.
ALTER TABLE executions ADD COLUMN test INTEGER NOT NULL DEFAULT 0;

CREATE TABLE IF NOT EXISTS alert_settings (
    account           TEXT PRIMARY KEY,
    active            INTEGER NOT NULL,
    send_admin        INTEGER NOT NULL,
    secondary_alerts  INTEGER NOT NULL,
    send_test         INTEGER NOT NULL,
    mails             TEXT NOT NULL,
    webhook           TEXT NOT NULL DEFAULT '',
    changed_by        TEXT NOT NULL,
    changed_at        BIGINT NOT NULL
);

-- Message rules per account and project: which events alert, after how many days.
CREATE TABLE IF NOT EXISTS alert_rules (
    account     TEXT NOT NULL,
    project     TEXT NOT NULL,
    type        TEXT NOT NULL,
    positive    INTEGER NOT NULL,
    active      INTEGER NOT NULL,
    delay_days  INTEGER NOT NULL,
    PRIMARY KEY (account, project, type, positive)
);

-- What happened: job starts and ends, lateness, transfer lifecycle steps. `id` makes each
-- fact count once (`<execution>:job_failure`, `<transfer>:delivered`).
CREATE TABLE IF NOT EXISTS alert_events (
    id            TEXT PRIMARY KEY,
    kind          TEXT NOT NULL,
    project       TEXT NOT NULL,
    subject       TEXT NOT NULL,
    job           TEXT NOT NULL,
    execution_id  TEXT NOT NULL,
    account       TEXT NOT NULL,
    test          INTEGER NOT NULL,
    at            BIGINT NOT NULL,
    detail        TEXT NOT NULL,
    processed     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS alert_events_todo ON alert_events (processed, at);
CREATE INDEX IF NOT EXISTS alert_events_subject ON alert_events (subject, at);

-- One alert for one address (or webhook): sent once, retried while the relay is down,
-- cancelled when a re-run succeeded within the rule's delay.
CREATE TABLE IF NOT EXISTS alert_outbox (
    id           TEXT PRIMARY KEY,
    event_id     TEXT NOT NULL,
    account      TEXT NOT NULL,
    address      TEXT NOT NULL,
    due_at       BIGINT NOT NULL,
    state        TEXT NOT NULL,
    attempts     BIGINT NOT NULL DEFAULT 0,
    next_try_at  BIGINT NOT NULL,
    claimed_by   TEXT,
    claimed_at   BIGINT,
    sent_at      BIGINT,
    last_error   TEXT
);
CREATE INDEX IF NOT EXISTS alert_outbox_due ON alert_outbox (state, next_try_at);
