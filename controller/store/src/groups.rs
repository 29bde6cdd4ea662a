//! The process group each server's current step runs in (SSH and local): recorded as
//! soon as the server tells it, deleted when the server is done, so that what a
//! controller killed outright leaves running can be stopped by the next one.

use sqlx::Row;

use super::{Store, StoreResult};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunningGroup {
    pub execution_id: String,
    pub node: String,
    pub pid: i64,
    /// Field 22 of `/proc/<pid>/stat` when the step started (empty: unknown).
    pub start_time: String,
    /// The user its processes are signalled as (empty: the login user).
    pub kill_as: String,
    /// The controller's host, for the local transport (empty otherwise).
    pub host: String,
    pub tries: i64,
}

impl Store {
    /// The server's current step runs in this group (replacing the previous step's).
    pub async fn record_group(&self, g: &RunningGroup) -> StoreResult<()> {
        sqlx::query("INSERT INTO running_groups (execution_id, node, pid, start_time, kill_as, host) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (execution_id, node) DO UPDATE SET pid = $3, start_time = $4, kill_as = $5, host = $6, tries = 0, next_try_at = 0")
            .bind(&g.execution_id)
            .bind(&g.node)
            .bind(g.pid)
            .bind(&g.start_time)
            .bind(&g.kill_as)
            .bind(&g.host)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The groups of executions no controller runs any more (interrupted), due for a try.
    pub async fn leftover_groups(&self, now: i64, limit: i64) -> StoreResult<Vec<RunningGroup>> {
        let rows = sqlx::query("SELECT g.execution_id, g.node, g.pid, g.start_time, g.kill_as, g.host, g.tries FROM running_groups g JOIN executions e ON e.id = g.execution_id WHERE e.status <> 'running' AND g.next_try_at <= $1 ORDER BY g.execution_id, g.node LIMIT $2")
            .bind(now)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| RunningGroup {
                execution_id: r.get(0),
                node: r.get(1),
                pid: r.get(2),
                start_time: r.get(3),
                kill_as: r.get(4),
                host: r.get(5),
                tries: r.get(6),
            })
            .collect())
    }

    /// A group stopped (or given up on).
    pub async fn forget_group(&self, execution_id: &str, node: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM running_groups WHERE execution_id = $1 AND node = $2")
            .bind(execution_id)
            .bind(node)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// A try that failed (the server did not answer): try again at `next_try_at`.
    pub async fn retry_group_later(
        &self,
        execution_id: &str,
        node: &str,
        next_try_at: i64,
    ) -> StoreResult<()> {
        sqlx::query("UPDATE running_groups SET tries = tries + 1, next_try_at = $3 WHERE execution_id = $1 AND node = $2")
            .bind(execution_id)
            .bind(node)
            .bind(next_try_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
