-- What operators change at run time: schedules switched off, aborts asked for.
-- Schedules switched off at run time (API, console), over what the job file says.
CREATE TABLE IF NOT EXISTS schedule_switches (
    job         TEXT PRIMARY KEY,
    disabled    INTEGER NOT NULL,
    changed_by  TEXT NOT NULL,
    changed_at  BIGINT NOT NULL
);

-- Aborts asked for (CLI, API, console); the controller running the execution, whichever
-- it is, sees the request and stops it.
CREATE TABLE IF NOT EXISTS abort_requests (
    execution_id  TEXT PRIMARY KEY,
    requested_by  TEXT NOT NULL,
    requested_at  BIGINT NOT NULL
);
