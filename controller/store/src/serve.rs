//! What `controller serve` keeps: live controllers, the leader lease, schedule fires and
//! file triggers (each decided once).

use sqlx::{AssertSqlSafe, Row};

use super::{Store, StoreResult};

/// A schedule fire or a file-watch trigger, and what was decided for it.
#[derive(Debug, Clone, Default)]
pub struct FireRow {
    pub job: String,
    /// `cron:<due ms>` or `file:<path>:<size>:<mtime ms>`.
    pub fire_key: String,
    /// `schedule` or `watch`.
    pub kind: String,
    pub due_at: i64,
    /// ran, queued, skipped, missed, failed.
    pub decision: String,
    pub execution_id: Option<String>,
    pub decided_by: String,
    pub decided_at: i64,
    /// The option values for the run, as JSON.
    pub options: String,
    pub note: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NotificationRow {
    pub execution_id: String,
    pub event: String,
    pub channel: String,
    pub target: String,
    pub ok: bool,
    pub detail: Option<String>,
    pub at: i64,
}

const FIRE_SELECT: &str = "SELECT job, fire_key, kind, due_at, decision, execution_id, decided_by, decided_at, options, note FROM fires";

fn fire_row(r: &sqlx::any::AnyRow) -> FireRow {
    FireRow {
        job: r.get(0),
        fire_key: r.get(1),
        kind: r.get(2),
        due_at: r.get(3),
        decision: r.get(4),
        execution_id: r.get(5),
        decided_by: r.get(6),
        decided_at: r.get(7),
        options: r.get(8),
        note: r.get(9),
    }
}

impl Store {
    /// Announces (or refreshes) a controller process.
    pub async fn heartbeat(
        &self,
        instance: &str,
        host: &str,
        pid: i64,
        role: &str,
        now: i64,
    ) -> StoreResult<()> {
        let updated = sqlx::query("UPDATE controllers SET heartbeat_at = $2 WHERE instance = $1")
            .bind(instance)
            .bind(now)
            .execute(&self.pool)
            .await?
            .rows_affected();
        if updated == 0 {
            sqlx::query("INSERT INTO controllers (instance, host, pid, role, started_at, heartbeat_at) VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (instance) DO UPDATE SET heartbeat_at = $5")
                .bind(instance)
                .bind(host)
                .bind(pid)
                .bind(role)
                .bind(now)
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    pub async fn forget_controller(&self, instance: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM controllers WHERE instance = $1")
            .bind(instance)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Every known controller: instance, host, pid, role, heartbeat.
    pub async fn controllers(&self) -> StoreResult<Vec<(String, String, i64, String, i64)>> {
        let rows = sqlx::query(
            "SELECT instance, host, pid, role, heartbeat_at FROM controllers ORDER BY instance",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
            .collect())
    }

    /// The time by the database's clock on PostgreSQL (shared by every controller, so
    /// leases do not depend on the controllers' clocks agreeing), the local clock on SQLite
    /// (one machine).
    pub async fn db_now(&self) -> StoreResult<i64> {
        if !self.postgres {
            return Ok(crate::clock::now_ms());
        }
        let r = sqlx::query("SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)")
            .fetch_one(&self.pool)
            .await?;
        Ok(r.get::<i64, _>(0))
    }

    /// Fires decided `ran` whose execution never started: the controller that decided
    /// died between the decision and the start (it is not alive since `alive_since`, and
    /// decided before then). They go back to `queued`; returns them.
    pub async fn requeue_lost_fires(&self, alive_since: i64) -> StoreResult<Vec<FireRow>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "{FIRE_SELECT} WHERE decision = 'ran' AND execution_id IS NOT NULL AND decided_at < $1 AND NOT EXISTS (SELECT 1 FROM executions e WHERE e.id = fires.execution_id) AND NOT EXISTS (SELECT 1 FROM controllers c WHERE c.instance = fires.decided_by AND c.heartbeat_at >= $1)"
        )))
        .bind(alive_since)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for f in rows.iter().map(fire_row) {
            let n = sqlx::query("UPDATE fires SET decision = 'queued', note = $4 WHERE job = $1 AND fire_key = $2 AND decision = 'ran' AND execution_id = $3")
                .bind(&f.job)
                .bind(&f.fire_key)
                .bind(f.execution_id.clone())
                .bind(format!("requeued: {} decided to run it but stopped before it started", f.decided_by))
                .execute(&self.pool)
                .await?
                .rows_affected();
            if n == 1 {
                out.push(f);
            }
        }
        Ok(out)
    }

    /// Takes or renews lease `name` for `holder` until `until`; true when `holder` has it.
    /// A lease is taken over only once expired, so two holders never overlap as long as
    /// their clocks agree within the lease time.
    pub async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now: i64,
        until: i64,
    ) -> StoreResult<bool> {
        sqlx::query("INSERT INTO leases (name, holder, expires_at, term) VALUES ($1, '', 0, 0) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .execute(&self.pool)
            .await?;
        let n = sqlx::query(
            "UPDATE leases SET term = CASE WHEN holder = $2 THEN term ELSE term + 1 END, holder = $2, expires_at = $3 WHERE name = $1 AND (holder = $2 OR expires_at < $4)",
        )
        .bind(name)
        .bind(holder)
        .bind(until)
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    pub async fn release_lease(&self, name: &str, holder: &str) -> StoreResult<()> {
        sqlx::query("UPDATE leases SET expires_at = 0 WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The holder of a lease and until when, if anybody ever took it.
    pub async fn lease(&self, name: &str) -> StoreResult<Option<(String, i64, i64)>> {
        let row = sqlx::query("SELECT holder, expires_at, term FROM leases WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| (r.get(0), r.get(1), r.get(2))))
    }

    /// Since when the job's schedule is known; recorded at first sight.
    pub async fn schedule_since(&self, job: &str, now: i64) -> StoreResult<i64> {
        sqlx::query(
            "INSERT INTO schedule_state (job, since) VALUES ($1, $2) ON CONFLICT (job) DO NOTHING",
        )
        .bind(job)
        .bind(now)
        .execute(&self.pool)
        .await?;
        let r = sqlx::query("SELECT since FROM schedule_state WHERE job = $1")
            .bind(job)
            .fetch_one(&self.pool)
            .await?;
        Ok(r.get(0))
    }

    /// Asks for an execution to be aborted (once: a second request keeps the first).
    pub async fn request_abort(&self, execution_id: &str, by: &str, now: i64) -> StoreResult<()> {
        sqlx::query("INSERT INTO abort_requests (execution_id, requested_by, requested_at) VALUES ($1, $2, $3) ON CONFLICT (execution_id) DO NOTHING")
            .bind(execution_id)
            .bind(by)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The running executions of `owner` that someone asked to abort, and who.
    pub async fn aborts_for(&self, owner: &str) -> StoreResult<Vec<(String, String)>> {
        let rows = sqlx::query("SELECT a.execution_id, a.requested_by FROM abort_requests a JOIN executions e ON e.id = a.execution_id WHERE e.owner = $1 AND e.status = 'running'")
            .bind(owner)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// The jobs whose schedule was switched off at run time, with who did it and when.
    pub async fn disabled_schedules(&self) -> StoreResult<Vec<(String, String, i64)>> {
        let rows = sqlx::query(
            "SELECT job, changed_by, changed_at FROM schedule_switches WHERE disabled = 1 ORDER BY job",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect())
    }

    /// Switches a job's schedule off or on. On: its fires are owed from now (none of the
    /// ones it skipped while off is caught up).
    pub async fn switch_schedule(
        &self,
        job: &str,
        on: bool,
        by: &str,
        now: i64,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO schedule_switches (job, disabled, changed_by, changed_at) VALUES ($1, $2, $3, $4) ON CONFLICT (job) DO UPDATE SET disabled = $2, changed_by = $3, changed_at = $4")
            .bind(job)
            .bind(i32::from(!on))
            .bind(by)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        if on {
            sqlx::query("INSERT INTO schedule_state (job, since) VALUES ($1, $2) ON CONFLICT (job) DO UPDATE SET since = $2")
                .bind(job)
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The latest decided schedule fire of a job.
    pub async fn last_fire(&self, job: &str, kind: &str) -> StoreResult<Option<FireRow>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "{FIRE_SELECT} WHERE job = $1 AND kind = $2 ORDER BY due_at DESC LIMIT 1"
        )))
        .bind(job)
        .bind(kind)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(fire_row))
    }

    /// Records a decision for a fire; false when it was already decided (by this or
    /// another controller): the caller must then not act on it.
    pub async fn claim_fire(&self, f: &FireRow) -> StoreResult<bool> {
        let n = sqlx::query("INSERT INTO fires (job, fire_key, kind, due_at, decision, execution_id, decided_by, decided_at, options, note) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (job, fire_key) DO NOTHING")
            .bind(&f.job)
            .bind(&f.fire_key)
            .bind(&f.kind)
            .bind(f.due_at)
            .bind(&f.decision)
            .bind(f.execution_id.clone())
            .bind(&f.decided_by)
            .bind(f.decided_at)
            .bind(&f.options)
            .bind(f.note.clone())
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n == 1)
    }

    /// Moves a fire from one decision to another (queued -> ran); false if it was not in
    /// `from` any more.
    pub async fn update_fire(
        &self,
        job: &str,
        key: &str,
        from: &str,
        to: &str,
        execution_id: Option<&str>,
        note: Option<&str>,
    ) -> StoreResult<bool> {
        let n = sqlx::query("UPDATE fires SET decision = $4, execution_id = COALESCE($5, execution_id), note = COALESCE($6, note) WHERE job = $1 AND fire_key = $2 AND decision = $3")
            .bind(job)
            .bind(key)
            .bind(from)
            .bind(to)
            .bind(execution_id.map(str::to_string))
            .bind(note.map(str::to_string))
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n == 1)
    }

    pub async fn fires(&self, job: Option<&str>, limit: i64) -> StoreResult<Vec<FireRow>> {
        let rows = match job {
            Some(j) => {
                sqlx::query(AssertSqlSafe(format!(
                    "{FIRE_SELECT} WHERE job = $1 ORDER BY due_at DESC LIMIT $2"
                )))
                .bind(j)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(AssertSqlSafe(format!(
                    "{FIRE_SELECT} ORDER BY due_at DESC LIMIT $1"
                )))
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
        };
        Ok(rows.iter().map(fire_row).collect())
    }

    /// Queued fires, oldest first.
    pub async fn queued_fires(&self) -> StoreResult<Vec<FireRow>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "{FIRE_SELECT} WHERE decision = 'queued' ORDER BY due_at"
        )))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(fire_row).collect())
    }
}
