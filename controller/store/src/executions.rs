//! Executions: started, finished, listed, found by ID or prefix (their servers' rows are
//! `nodes.rs`).

use sqlx::any::AnyRow;
// Dynamic SQL here is only constants composed in code; values are always bound.
use sqlx::{AssertSqlSafe, Row};

use super::{ExecutionStatus, Store, StoreError, StoreResult};

#[derive(Debug, Clone, Default)]
pub struct ExecutionRow {
    pub id: String,
    pub job: String,
    pub status: ExecutionStatus,
    pub options: String,
    pub targets: String,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub nodes_total: i64,
    pub nodes_ok: i64,
    pub nodes_failed: i64,
    pub archive: Option<String>,
    pub mail: Option<String>,
    pub started_by: String,
    pub error: Option<String>,
    /// Why it started: manual, schedule, watch, follow-up, job-step, retry.
    pub cause: String,
    /// The controller process running it (see the `controllers` table).
    pub owner: String,
    /// The schedule fire or file-watch trigger it runs for.
    pub fire_key: Option<String>,
    pub retry_of: Option<String>,
    /// The execution that started this one (follow-up, job step).
    pub parent_id: Option<String>,
    /// The account that started it (API or console); empty for schedules, triggers, the CLI.
    pub account: String,
    /// A group retried from its first failed member: that member's step index (the
    /// members before it were not run again).
    pub resumed_from: Option<i64>,
    /// A run of a job marked `test: true` (alerts only accounts that want test runs).
    pub test: bool,
}

impl Store {
    pub async fn insert_execution(&self, e: &ExecutionRow) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO executions (id, job, status, options, targets, started_at, nodes_total, started_by, cause, owner, fire_key, retry_of, parent_id, account, resumed_from, test) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
        )
        .bind(&e.id)
        .bind(&e.job)
        .bind(e.status.as_str())
        .bind(&e.options)
        .bind(&e.targets)
        .bind(e.started_at)
        .bind(e.nodes_total)
        .bind(&e.started_by)
        .bind(&e.cause)
        .bind(&e.owner)
        .bind(e.fire_key.clone())
        .bind(e.retry_of.clone())
        .bind(e.parent_id.clone())
        .bind(&e.account)
        .bind(e.resumed_from.map(|i| i as i32))
        .bind(i32::from(e.test))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn finish_execution(&self, e: &ExecutionRow) -> StoreResult<()> {
        sqlx::query(
            "UPDATE executions SET status = $2, finished_at = $3, nodes_ok = $4, nodes_failed = $5, archive = $6, mail = $7, error = $8 WHERE id = $1",
        )
        .bind(&e.id)
        .bind(e.status.as_str())
        .bind(e.finished_at)
        .bind(e.nodes_ok)
        .bind(e.nodes_failed)
        .bind(e.archive.clone())
        .bind(e.mail.clone())
        .bind(e.error.clone())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The executions `parent` started (its job steps and follow-ups), in the order they
    /// started.
    pub async fn children(&self, parent: &str) -> StoreResult<Vec<ExecutionRow>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "{EXEC_SELECT} WHERE parent_id = $1 ORDER BY started_at, id LIMIT 1000"
        )))
        .bind(parent)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(exec_row).collect())
    }

    pub async fn list_executions(
        &self,
        job: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<ExecutionRow>> {
        let rows = match job {
            Some(j) => {
                sqlx::query(AssertSqlSafe(format!(
                    "{EXEC_SELECT} WHERE job = $1 ORDER BY started_at DESC, id DESC LIMIT $2"
                )))
                .bind(j)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(AssertSqlSafe(format!(
                    "{EXEC_SELECT} ORDER BY started_at DESC, id DESC LIMIT $1"
                )))
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
        };
        Ok(rows.iter().map(exec_row).collect())
    }

    /// An execution by its full id only (the API: a prefix would tell about others' runs).
    pub async fn execution(&self, id: &str) -> StoreResult<ExecutionRow> {
        let row = sqlx::query(AssertSqlSafe(format!("{EXEC_SELECT} WHERE id = $1")))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref()
            .map(exec_row)
            .ok_or_else(|| StoreError::NotFound(id.to_string()))
    }

    /// An execution by full id, unique prefix, or `latest`.
    pub async fn find_execution(&self, key: &str) -> StoreResult<ExecutionRow> {
        let rows = if key == "latest" || key == "last" {
            sqlx::query(AssertSqlSafe(format!(
                "{EXEC_SELECT} ORDER BY started_at DESC, id DESC LIMIT 1"
            )))
            .fetch_all(&self.pool)
            .await?
        } else {
            sqlx::query(AssertSqlSafe(format!(
                "{EXEC_SELECT} WHERE id = $1 OR id LIKE $2 ORDER BY id LIMIT 2"
            )))
            .bind(key)
            .bind(format!("{}%", key.replace(['%', '_'], "")))
            .fetch_all(&self.pool)
            .await?
        };
        let found: Vec<ExecutionRow> = rows.iter().map(exec_row).collect();
        if let Some(exact) = found.iter().find(|e| e.id == key) {
            return Ok(exact.clone());
        }
        match found.len() {
            0 => Err(StoreError::NotFound(key.to_string())),
            1 => Ok(found[0].clone()),
            _ => Err(StoreError::Ambiguous(key.to_string())),
        }
    }
}

pub(super) const EXEC_SELECT: &str = "SELECT id, job, status, options, targets, started_at, finished_at, nodes_total, nodes_ok, nodes_failed, archive, mail, started_by, error, cause, owner, fire_key, retry_of, parent_id, account, resumed_from, test FROM executions";

pub(super) fn exec_row(r: &AnyRow) -> ExecutionRow {
    ExecutionRow {
        id: r.get(0),
        job: r.get(1),
        status: ExecutionStatus::from_db(&r.get::<String, _>(2)),
        options: r.get(3),
        targets: r.get(4),
        started_at: r.get(5),
        finished_at: r.get(6),
        nodes_total: i64::from(r.get::<i32, _>(7)),
        nodes_ok: i64::from(r.get::<i32, _>(8)),
        nodes_failed: i64::from(r.get::<i32, _>(9)),
        archive: r.get(10),
        mail: r.get(11),
        started_by: r.get(12),
        error: r.get(13),
        cause: r.get(14),
        owner: r.get(15),
        fire_key: r.get(16),
        retry_of: r.get(17),
        parent_id: r.get(18),
        account: r.get(19),
        resumed_from: r.get::<Option<i32>, _>(20).map(i64::from),
        test: r.get::<i32, _>(21) != 0,
    }
}
