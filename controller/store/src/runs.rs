//! Executions as `controller serve` watches them: how many run, how long they usually
//! take, each server's progress, the runs of dead controllers, notifications and purges.

use sqlx::{AssertSqlSafe, Row};

use super::nodes::node_progress_tx;
use super::{ExecutionRow, ExecutionStatus, NodeRow, NotificationRow, Store, StoreResult};

impl Store {
    /// How many executions of the job are running on a live controller (one whose
    /// heartbeat is not older than `alive_since`): a dead controller's runs do not hold
    /// up the schedule while they wait to be marked interrupted.
    pub async fn running_count(&self, job: &str, alive_since: i64) -> StoreResult<i64> {
        let r = sqlx::query(
            "SELECT COUNT(*) FROM executions e WHERE e.job = $1 AND e.status = $3 AND EXISTS (SELECT 1 FROM controllers c WHERE c.instance = e.owner AND c.heartbeat_at >= $2)",
        )
        .bind(job)
        .bind(alive_since)
        .bind(ExecutionStatus::Running.as_str())
        .fetch_one(&self.pool)
        .await?;
        Ok(r.get::<i64, _>(0))
    }

    /// The durations (ms) of the job's last successful runs, newest first.
    pub async fn recent_durations(&self, job: &str, n: i64) -> StoreResult<Vec<i64>> {
        let rows = sqlx::query("SELECT finished_at - started_at FROM executions WHERE job = $1 AND status = $3 AND finished_at IS NOT NULL ORDER BY started_at DESC LIMIT $2")
            .bind(job)
            .bind(n)
            .bind(ExecutionStatus::Succeeded.as_str())
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(|r| r.get::<i64, _>(0)).collect())
    }

    /// Rows for every selected server before anything starts, so a crash leaves a trace of
    /// the servers that never started.
    pub async fn insert_pending_nodes(&self, rows: &[NodeRow]) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        for n in rows {
            sqlx::query("INSERT INTO node_results (execution_id, node, host, transport, status, step_reached, files, bytes) VALUES ($1, $2, $3, $4, 'pending', 0, 0, 0) ON CONFLICT (execution_id, node) DO NOTHING")
                .bind(&n.execution_id)
                .bind(&n.node)
                .bind(&n.host)
                .bind(&n.transport)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// A server started, or reached a step.
    pub async fn node_progress(
        &self,
        execution_id: &str,
        node: &str,
        step_reached: i64,
        now: i64,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        node_progress_tx(&mut tx, execution_id, node, step_reached, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Marks interrupted every running execution whose controller is gone: one that has
    /// not refreshed its heartbeat since `stale_before`, one listed in `dead` (known dead:
    /// a process of this host that no longer exists), or one with no row at all. Their
    /// servers that had not finished are marked interrupted at the step they reached.
    /// Returns the executions marked.
    pub async fn interrupt_orphans(
        &self,
        stale_before: i64,
        dead: &[String],
        now: i64,
    ) -> StoreResult<Vec<ExecutionRow>> {
        let running = sqlx::query(AssertSqlSafe(format!(
            "{} WHERE status = $1 AND owner <> ''",
            super::executions::EXEC_SELECT
        )))
        .bind(ExecutionStatus::Running.as_str())
        .fetch_all(&self.pool)
        .await?;
        let alive: Vec<(String, i64)> =
            sqlx::query("SELECT instance, heartbeat_at FROM controllers")
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
        let mut out = Vec::new();
        for e in running.iter().map(super::executions::exec_row) {
            let gone = dead.contains(&e.owner)
                || match alive.iter().find(|(i, _)| *i == e.owner) {
                    Some((_, hb)) => *hb < stale_before,
                    None => true,
                };
            if !gone {
                continue;
            }
            let why = format!("interrupted: controller {} stopped during the run", e.owner);
            let mut tx = self.pool.begin().await?;
            let n = sqlx::query("UPDATE executions SET status = 'interrupted', finished_at = $2, error = $3, nodes_ok = (SELECT COUNT(*) FROM node_results WHERE execution_id = $1 AND status = 'succeeded'), nodes_failed = (SELECT COUNT(*) FROM node_results WHERE execution_id = $1 AND status <> 'succeeded') WHERE id = $1 AND status = 'running'")
                .bind(&e.id)
                .bind(now)
                .bind(&why)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            sqlx::query("UPDATE node_results SET status = 'interrupted', finished_at = $2, error = CASE WHEN step_reached > 0 THEN 'interrupted during step ' || CAST(step_reached AS TEXT) ELSE 'interrupted before it started' END WHERE execution_id = $1 AND status IN ('pending', 'running')")
                .bind(&e.id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            if n == 1 {
                out.push(e);
            }
        }
        Ok(out)
    }

    pub async fn record_notification(&self, n: &NotificationRow) -> StoreResult<()> {
        sqlx::query("INSERT INTO notifications (execution_id, event, channel, target, ok, detail, at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(&n.execution_id)
            .bind(&n.event)
            .bind(&n.channel)
            .bind(&n.target)
            .bind(i32::from(n.ok))
            .bind(n.detail.clone())
            .bind(n.at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn notifications(&self, execution_id: &str) -> StoreResult<Vec<NotificationRow>> {
        let rows = sqlx::query("SELECT execution_id, event, channel, target, ok, detail, at FROM notifications WHERE execution_id = $1 ORDER BY at, event")
            .bind(execution_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| NotificationRow {
                execution_id: r.get(0),
                event: r.get(1),
                channel: r.get(2),
                target: r.get(3),
                ok: r.get::<i32, _>(4) != 0,
                detail: r.get(5),
                at: r.get(6),
            })
            .collect())
    }

    /// The finished executions of `job` beyond the newest `keep`, or older than
    /// `older_than` (ms); running ones are never purged.
    pub async fn purgeable(
        &self,
        job: &str,
        keep: Option<i64>,
        older_than: Option<i64>,
    ) -> StoreResult<Vec<String>> {
        let rows = sqlx::query("SELECT id, started_at FROM executions WHERE job = $1 AND status <> $2 ORDER BY started_at DESC, id DESC")
            .bind(job)
            .bind(ExecutionStatus::Running.as_str())
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .enumerate()
            .filter(|(i, r)| {
                keep.is_some_and(|k| *i as i64 >= k)
                    || older_than.is_some_and(|t| r.get::<i64, _>(1) < t)
            })
            .map(|(_, r)| r.get(0))
            .collect())
    }

    /// Deletes an execution and everything recorded with it.
    pub async fn delete_execution(&self, id: &str) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        for table in [
            "log_lines",
            "collected_files",
            "node_results",
            "notifications",
            "running_groups",
        ] {
            sqlx::query(AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE execution_id = $1"
            )))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("DELETE FROM executions WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every job name with history.
    pub async fn jobs_with_history(&self) -> StoreResult<Vec<String>> {
        let rows = sqlx::query("SELECT DISTINCT job FROM executions ORDER BY job")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Fire records of a job older than `before`, except the newest (which anchors the
    /// schedule).
    pub async fn purge_fires(&self, job: &str, before: i64) -> StoreResult<u64> {
        let n = sqlx::query("DELETE FROM fires WHERE job = $1 AND due_at < $2 AND due_at < (SELECT MAX(due_at) FROM fires WHERE job = $1) AND decision <> 'queued'")
            .bind(job)
            .bind(before)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n)
    }
}
