//! Each server's row of an execution (`node_results`): written as the server starts and
//! progresses, replaced when it ends, read for the execution's page and retries.

use sqlx::Row;

use super::{Store, StoreResult, Tx};

#[derive(Debug, Clone, Default)]
pub struct NodeRow {
    pub execution_id: String,
    pub node: String,
    pub host: String,
    pub transport: String,
    pub status: String,
    pub exit_code: Option<i64>,
    pub step_reached: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub files: i64,
    pub bytes: i64,
    pub error: Option<String>,
}

impl Store {
    pub async fn upsert_node(&self, n: &NodeRow) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        upsert_node_tx(&mut tx, n).await?;
        tx.commit().await?;
        Ok(())
    }

    /// (servers, servers done) of an execution: its progress.
    pub async fn node_counts(&self, execution_id: &str) -> StoreResult<(i64, i64)> {
        let r = sqlx::query("SELECT COUNT(*), COALESCE(SUM(CASE WHEN status IN ('pending', 'running') THEN 0 ELSE 1 END), 0) FROM node_results WHERE execution_id = $1")
            .bind(execution_id)
            .fetch_one(&self.pool)
            .await?;
        Ok((r.get(0), r.get(1)))
    }

    pub async fn nodes(&self, execution_id: &str) -> StoreResult<Vec<NodeRow>> {
        let rows = sqlx::query(
            "SELECT execution_id, node, host, transport, status, exit_code, step_reached, started_at, finished_at, files, bytes, error FROM node_results WHERE execution_id = $1 ORDER BY node",
        )
        .bind(execution_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| NodeRow {
                execution_id: r.get(0),
                node: r.get(1),
                host: r.get(2),
                transport: r.get(3),
                status: r.get(4),
                exit_code: r.get::<Option<i32>, _>(5).map(i64::from),
                step_reached: i64::from(r.get::<i32, _>(6)),
                started_at: r.get(7),
                finished_at: r.get(8),
                files: i64::from(r.get::<i32, _>(9)),
                bytes: r.get(10),
                error: r.get(11),
            })
            .collect())
    }
}

pub(super) async fn upsert_node_tx(tx: &mut Tx<'_>, n: &NodeRow) -> StoreResult<()> {
    sqlx::query("DELETE FROM node_results WHERE execution_id = $1 AND node = $2")
        .bind(&n.execution_id)
        .bind(&n.node)
        .execute(&mut **tx)
        .await?;
    sqlx::query(
        "INSERT INTO node_results (execution_id, node, host, transport, status, exit_code, step_reached, started_at, finished_at, files, bytes, error) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(&n.execution_id)
    .bind(&n.node)
    .bind(&n.host)
    .bind(&n.transport)
    .bind(&n.status)
    .bind(n.exit_code)
    .bind(n.step_reached)
    .bind(n.started_at)
    .bind(n.finished_at)
    .bind(n.files)
    .bind(n.bytes)
    .bind(n.error.clone())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(super) async fn node_progress_tx(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    execution_id: &str,
    node: &str,
    step_reached: i64,
    now: i64,
) -> StoreResult<()> {
    sqlx::query("UPDATE node_results SET status = 'running', step_reached = CASE WHEN step_reached > $3 THEN step_reached ELSE $3 END, started_at = COALESCE(started_at, $4) WHERE execution_id = $1 AND node = $2")
        .bind(execution_id)
        .bind(node)
        .bind(step_reached)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
