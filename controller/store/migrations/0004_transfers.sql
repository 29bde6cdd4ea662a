-- Transfer scenarios: every file sent or received, with its lifecycle
-- (prepared -> deposited -> delivered -> acknowledged | failed | unacknowledged | skipped;
-- received for retrievals), and the record numbers of received files, per profile.
CREATE TABLE IF NOT EXISTS transfers (
    id               TEXT PRIMARY KEY,
    scenario         TEXT NOT NULL,
    profile          TEXT NOT NULL,
    direction        TEXT NOT NULL,
    execution_id     TEXT NOT NULL,
    file_name        TEXT NOT NULL,
    source_path      TEXT NOT NULL,
    stored_path      TEXT NOT NULL,
    remote           TEXT,
    size             BIGINT NOT NULL,
    sha256           TEXT NOT NULL,
    segments         INTEGER NOT NULL DEFAULT 1,
    status           TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    error            TEXT,
    created_at       BIGINT NOT NULL,
    deposited_at     BIGINT,
    delivered_at     BIGINT,
    acknowledged_at  BIGINT,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS transfers_scenario ON transfers (scenario, created_at);
CREATE INDEX IF NOT EXISTS transfers_status ON transfers (status);

CREATE TABLE IF NOT EXISTS transfer_counters (
    profile  TEXT PRIMARY KEY,
    value    BIGINT NOT NULL
);
