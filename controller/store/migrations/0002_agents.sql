-- What the controller last learnt from each agent (Health), from runs and `agents list`.
CREATE TABLE IF NOT EXISTS agents (
    name            TEXT PRIMARY KEY,
    address         TEXT NOT NULL,
    version         TEXT NOT NULL,
    run_user        TEXT NOT NULL,
    cert_not_after  BIGINT NOT NULL,
    last_contact    BIGINT NOT NULL
);
