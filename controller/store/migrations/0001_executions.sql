-- Executions and what each server did. Portable SQL: runs on SQLite and PostgreSQL.
-- Times are Unix milliseconds (BIGINT); booleans are INTEGER 0/1.
CREATE TABLE IF NOT EXISTS executions (
    id            TEXT PRIMARY KEY,
    job           TEXT NOT NULL,
    status        TEXT NOT NULL,
    options       TEXT NOT NULL,
    targets       TEXT NOT NULL,
    started_at    BIGINT NOT NULL,
    finished_at   BIGINT,
    nodes_total   INTEGER NOT NULL DEFAULT 0,
    nodes_ok      INTEGER NOT NULL DEFAULT 0,
    nodes_failed  INTEGER NOT NULL DEFAULT 0,
    archive       TEXT,
    mail          TEXT,
    started_by    TEXT NOT NULL,
    error         TEXT
);
CREATE INDEX IF NOT EXISTS executions_job ON executions (job, started_at);

CREATE TABLE IF NOT EXISTS node_results (
    execution_id  TEXT NOT NULL,
    node          TEXT NOT NULL,
    host          TEXT NOT NULL,
    transport     TEXT NOT NULL,
    status        TEXT NOT NULL,
    exit_code     INTEGER,
    step_reached  INTEGER NOT NULL DEFAULT 0,
    started_at    BIGINT,
    finished_at   BIGINT,
    files         INTEGER NOT NULL DEFAULT 0,
    bytes         BIGINT NOT NULL DEFAULT 0,
    error         TEXT,
    PRIMARY KEY (execution_id, node)
);

CREATE TABLE IF NOT EXISTS log_lines (
    execution_id  TEXT NOT NULL,
    seq           BIGINT NOT NULL,
    node          TEXT NOT NULL,
    step          INTEGER NOT NULL,
    stream        TEXT NOT NULL,
    ts            BIGINT NOT NULL,
    line          TEXT NOT NULL,
    PRIMARY KEY (execution_id, seq)
);

CREATE TABLE IF NOT EXISTS collected_files (
    execution_id  TEXT NOT NULL,
    node          TEXT NOT NULL,
    remote_path   TEXT NOT NULL,
    local_path    TEXT NOT NULL,
    size          BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS collected_files_exec ON collected_files (execution_id, node);
