//! Execution history: SQLite by default, PostgreSQL on the same code path (sqlx Any).

use std::path::Path;

use sqlx::any::{AnyPoolOptions, AnyRow};
// Dynamic SQL here is only constants composed in code; values are always bound.
use sqlx::{AnyPool, AssertSqlSafe, Row};

mod serve;
mod status;
mod transfer;
pub use serve::{FireRow, NotificationRow};
pub use status::ExecutionStatus;
pub use transfer::TransferRow;

/// Schema steps, applied in order once each (recorded in `schema_version`).
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/0001_executions.sql")),
    (2, include_str!("../../migrations/0002_agents.sql")),
    (3, include_str!("../../migrations/0003_serve.sql")),
    (4, include_str!("../../migrations/0004_transfers.sql")),
];

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {url}: {source}")]
    Open { url: String, source: sqlx::Error },
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("no execution matches `{0}`")]
    NotFound(String),
    #[error("`{0}` matches several executions: give more characters")]
    Ambiguous(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

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
}

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

#[derive(Debug, Clone)]
pub struct LogLine {
    pub seq: i64,
    pub node: String,
    pub step: i64,
    pub stream: String,
    pub ts: i64,
    pub line: String,
}

#[derive(Debug, Clone)]
pub struct CollectedFile {
    pub node: String,
    pub remote_path: String,
    pub local_path: String,
    pub size: i64,
}

/// The last contact with an agent.
#[derive(Debug, Clone)]
pub struct AgentRow {
    pub name: String,
    pub address: String,
    pub version: String,
    pub run_user: String,
    pub cert_not_after: i64,
    pub last_contact: i64,
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    postgres: bool,
}

type Tx<'a> = sqlx::Transaction<'a, sqlx::Any>;

/// What an execution's observer writes at once (see [`Store::record`]).
#[derive(Debug, Default)]
pub struct Batch {
    pub logs: Vec<LogLine>,
    pub progress: Vec<(String, i64, i64)>,
    pub agents: Vec<AgentRow>,
    pub done: Vec<(NodeRow, Vec<CollectedFile>)>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.logs.is_empty()
            && self.progress.is_empty()
            && self.agents.is_empty()
            && self.done.is_empty()
    }
}

async fn upsert_node_tx(tx: &mut Tx<'_>, n: &NodeRow) -> StoreResult<()> {
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

async fn insert_logs_tx(tx: &mut Tx<'_>, execution_id: &str, lines: &[LogLine]) -> StoreResult<()> {
    // Multi-row inserts: a statement per line would dominate a run with much output.
    // Not more rows: sqlx looks each `$N` up by name in SQLite, which is linear in the
    // number of parameters, so very wide statements get slower per row (measured in
    // docs/benchmarks.md).
    const ROWS: usize = 32;
    for chunk in lines.chunks(ROWS) {
        let mut sql = String::from(
            "INSERT INTO log_lines (execution_id, seq, node, step, stream, ts, line) VALUES ",
        );
        for i in 0..chunk.len() {
            let b = i * 7;
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!(
                "(${}, ${}, ${}, ${}, ${}, ${}, ${})",
                b + 1,
                b + 2,
                b + 3,
                b + 4,
                b + 5,
                b + 6,
                b + 7
            ));
        }
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for l in chunk {
            q = q
                .bind(execution_id)
                .bind(l.seq)
                .bind(&l.node)
                .bind(l.step)
                .bind(&l.stream)
                .bind(l.ts)
                .bind(&l.line);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

async fn insert_files_tx(
    tx: &mut Tx<'_>,
    execution_id: &str,
    files: &[CollectedFile],
) -> StoreResult<()> {
    for f in files {
        sqlx::query("INSERT INTO collected_files (execution_id, node, remote_path, local_path, size) VALUES ($1, $2, $3, $4, $5)")
            .bind(execution_id)
            .bind(&f.node)
            .bind(&f.remote_path)
            .bind(&f.local_path)
            .bind(f.size)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

async fn upsert_agent_tx(tx: &mut Tx<'_>, a: &AgentRow) -> StoreResult<()> {
    sqlx::query("DELETE FROM agents WHERE name = $1")
        .bind(&a.name)
        .execute(&mut **tx)
        .await?;
    sqlx::query("INSERT INTO agents (name, address, version, run_user, cert_not_after, last_contact) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(&a.name)
        .bind(&a.address)
        .bind(&a.version)
        .bind(&a.run_user)
        .bind(a.cert_not_after)
        .bind(a.last_contact)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Applies one schema step and records it.
async fn run_migration(conn: &mut sqlx::AnyConnection, version: i64, sql: &str) -> StoreResult<()> {
    let code: String = sql
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    for stmt in code.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        sqlx::query(AssertSqlSafe(stmt.to_string()))
            .execute(&mut *conn)
            .await?;
    }
    sqlx::query("INSERT INTO schema_version (version) VALUES ($1)")
        .bind(version)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The default database URL for a data folder.
pub fn default_url(data_dir: &Path) -> String {
    format!("sqlite://{}?mode=rwc", data_dir.join("ordo.db").display())
}

impl Store {
    pub async fn open(url: &str) -> StoreResult<Store> {
        sqlx::any::install_default_drivers();
        let sqlite = url.starts_with("sqlite:");
        let mut options = AnyPoolOptions::new().max_connections(if sqlite { 1 } else { 5 });
        if sqlite {
            // One connection that every writer of the process takes in turn: waiting for it
            // is normal, and a run on 1,000 servers that saturates the machine's cores waits
            // seconds (it printed sqlx warnings on the operator's terminal).
            options = options
                .acquire_slow_threshold(std::time::Duration::from_secs(30))
                .acquire_timeout(std::time::Duration::from_secs(300));
        }
        let pool = options
            .connect(url)
            .await
            .map_err(|source| StoreError::Open {
                url: redact(url),
                source,
            })?;
        if sqlite {
            sqlx::query("PRAGMA journal_mode=WAL")
                .execute(&pool)
                .await?;
            sqlx::query("PRAGMA busy_timeout=10000")
                .execute(&pool)
                .await?;
            // With WAL, NORMAL only risks the last commits on power loss, never corruption,
            // and saves an fsync per log batch.
            sqlx::query("PRAGMA synchronous=NORMAL")
                .execute(&pool)
                .await?;
        }
        let store = Store {
            pool,
            postgres: url.starts_with("postgres"),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Applies the missing schema steps. On PostgreSQL an advisory lock makes controllers
    /// that start together take turns.
    async fn migrate(&self) -> StoreResult<()> {
        let mut conn = self.pool.acquire().await?;
        if self.postgres {
            sqlx::query("SELECT pg_advisory_lock(7060) ")
                .execute(&mut *conn)
                .await?;
            let result = self.migrate_on(&mut conn, false).await;
            sqlx::query("SELECT pg_advisory_unlock(7060)")
                .execute(&mut *conn)
                .await?;
            result
        } else {
            // One writer at a time: a second process waits (busy_timeout) for the first
            // to finish, then finds the schema up to date.
            sqlx::query("BEGIN EXCLUSIVE").execute(&mut *conn).await?;
            let result = self.migrate_on(&mut conn, true).await;
            let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
            sqlx::query(end).execute(&mut *conn).await?;
            result
        }
    }

    async fn migrate_on(&self, conn: &mut sqlx::AnyConnection, in_tx: bool) -> StoreResult<()> {
        sqlx::query("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT PRIMARY KEY)")
            .execute(&mut *conn)
            .await?;
        let done: Vec<i64> = sqlx::query("SELECT version FROM schema_version")
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|r| r.get::<i64, _>(0))
            .collect();
        for (version, sql) in MIGRATIONS {
            if done.contains(version) {
                continue;
            }
            if in_tx {
                run_migration(&mut *conn, *version, sql).await?;
                continue;
            }
            let mut tx = sqlx::Connection::begin(&mut *conn).await?;
            run_migration(&mut tx, *version, sql).await?;
            tx.commit().await?;
        }
        Ok(())
    }

    pub async fn insert_execution(&self, e: &ExecutionRow) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO executions (id, job, status, options, targets, started_at, nodes_total, started_by, cause, owner, fire_key, retry_of, parent_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
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

    pub async fn upsert_node(&self, n: &NodeRow) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        upsert_node_tx(&mut tx, n).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Everything an execution's observer gathered since its last write, in one
    /// transaction: log lines, servers' progress (node, step, time), agents seen, servers
    /// done with their files.
    pub async fn record(&self, execution_id: &str, b: &Batch) -> StoreResult<()> {
        if b.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        insert_logs_tx(&mut tx, execution_id, &b.logs).await?;
        for (node, step, ts) in &b.progress {
            serve::node_progress_tx(&mut tx, execution_id, node, *step, *ts).await?;
        }
        for a in &b.agents {
            upsert_agent_tx(&mut tx, a).await?;
        }
        for (n, files) in &b.done {
            upsert_node_tx(&mut tx, n).await?;
            insert_files_tx(&mut tx, execution_id, files).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn insert_logs(&self, execution_id: &str, lines: &[LogLine]) -> StoreResult<()> {
        if lines.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        insert_logs_tx(&mut tx, execution_id, lines).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The highest log line number of an execution (0 when none).
    pub async fn last_log_seq(&self, execution_id: &str) -> StoreResult<i64> {
        let r = sqlx::query("SELECT MAX(seq) FROM log_lines WHERE execution_id = $1")
            .bind(execution_id)
            .fetch_one(&self.pool)
            .await?;
        Ok(r.get::<Option<i64>, _>(0).unwrap_or(0))
    }

    pub async fn insert_files(
        &self,
        execution_id: &str,
        files: &[CollectedFile],
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        insert_files_tx(&mut tx, execution_id, files).await?;
        tx.commit().await?;
        Ok(())
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

    pub async fn logs(&self, execution_id: &str, node: Option<&str>) -> StoreResult<Vec<LogLine>> {
        let mut q = String::from(
            "SELECT seq, node, step, stream, ts, line FROM log_lines WHERE execution_id = $1",
        );
        if node.is_some() {
            q.push_str(" AND node = $2");
        }
        q.push_str(" ORDER BY seq");
        let mut query = sqlx::query(AssertSqlSafe(q)).bind(execution_id);
        if let Some(n) = node {
            query = query.bind(n);
        }
        let rows = query.fetch_all(&self.pool).await?;
        Ok(rows
            .iter()
            .map(|r| LogLine {
                seq: r.get(0),
                node: r.get(1),
                step: i64::from(r.get::<i32, _>(2)),
                stream: r.get(3),
                ts: r.get(4),
                line: r.get(5),
            })
            .collect())
    }

    pub async fn files(&self, execution_id: &str) -> StoreResult<Vec<CollectedFile>> {
        let rows = sqlx::query("SELECT node, remote_path, local_path, size FROM collected_files WHERE execution_id = $1 ORDER BY node, local_path")
            .bind(execution_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| CollectedFile {
                node: r.get(0),
                remote_path: r.get(1),
                local_path: r.get(2),
                size: r.get(3),
            })
            .collect())
    }

    pub async fn upsert_agent(&self, a: &AgentRow) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        upsert_agent_tx(&mut tx, a).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn agents(&self) -> StoreResult<Vec<AgentRow>> {
        let rows = sqlx::query("SELECT name, address, version, run_user, cert_not_after, last_contact FROM agents ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| AgentRow {
                name: r.get(0),
                address: r.get(1),
                version: r.get(2),
                run_user: r.get(3),
                cert_not_after: r.get(4),
                last_contact: r.get(5),
            })
            .collect())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

const EXEC_SELECT: &str = "SELECT id, job, status, options, targets, started_at, finished_at, nodes_total, nodes_ok, nodes_failed, archive, mail, started_by, error, cause, owner, fire_key, retry_of, parent_id FROM executions";

fn exec_row(r: &AnyRow) -> ExecutionRow {
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
    }
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:****{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}
