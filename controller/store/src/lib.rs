//! ordo's history: executions and their logs, accounts, sessions, alerts, transfers and
//! keys, in SQLite by default or PostgreSQL on the same code path (sqlx Any), with the
//! migrations of both and the clock every time is read from. Nothing here knows the
//! project's files or the network: the controller calls it.

use std::path::Path;

use sqlx::any::AnyPoolOptions;
// Dynamic SQL here is only constants composed in code; values are always bound.
use sqlx::{AnyPool, AssertSqlSafe, Row};

pub mod clock;

mod accounts;
mod alerts;
mod executions;
mod filter;
mod groups;
mod keys;
mod nodes;
mod records;
mod runs;
mod serve;
mod sessions;
mod status;
mod transfer;
pub mod write_retry;
pub use accounts::{TokenRow, UserRow};
pub use alerts::{AlertEventRow, AlertRuleRow, AlertSettingsRow, OutboxRow};
pub use executions::ExecutionRow;
pub use filter::{ExecFilter, Scope};
pub use groups::RunningGroup;
pub use keys::KeyRow;
pub use nodes::NodeRow;
pub use records::{AgentRow, Batch, CollectedFile, LogLine};
pub use serve::{FireRow, NotificationRow};
pub use sessions::{AuditFilter, AuditRow, LoginCodeRow, SessionRow};
pub use status::ExecutionStatus;
pub use transfer::{TRANSFER_STATUSES, TransferRow};

/// Schema steps, applied in order once each (recorded in `schema_version`).
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/0001_executions.sql")),
    (2, include_str!("../migrations/0002_agents.sql")),
    (3, include_str!("../migrations/0003_serve.sql")),
    (4, include_str!("../migrations/0004_transfers.sql")),
    (5, include_str!("../migrations/0005_accounts.sql")),
    (6, include_str!("../migrations/0006_switches.sql")),
    (7, include_str!("../migrations/0007_groups.sql")),
    (8, include_str!("../migrations/0008_alerts.sql")),
    (9, include_str!("../migrations/0009_keys.sql")),
    (10, include_str!("../migrations/0010_lanes.sql")),
    (11, include_str!("../migrations/0011_running_groups.sql")),
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
    /// Anything else that is not there: `no {0}` (e.g. "account `bob`").
    #[error("no {0}")]
    Missing(String),
    #[error("{0} already exists")]
    Exists(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    postgres: bool,
}

type Tx<'a> = sqlx::Transaction<'a, sqlx::Any>;

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
    /// Opens the history and brings its schema up to date. Two processes opening a new
    /// SQLite file at once (`serve` starting while `users add` runs) may find it locked
    /// while the other sets it up: tried again for up to 30 s.
    pub async fn open(url: &str) -> StoreResult<Store> {
        let started = std::time::Instant::now();
        loop {
            match Self::open_once(url).await {
                Err(e)
                    if write_retry::transient(&e)
                        && started.elapsed() < std::time::Duration::from_secs(30) =>
                {
                    tracing::debug!("database busy while opening ({e}): trying again");
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                }
                other => return other,
            }
        }
    }

    async fn open_once(url: &str) -> StoreResult<Store> {
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
            // The wait first: another process may be creating or migrating the file.
            sqlx::query("PRAGMA busy_timeout=10000")
                .execute(&pool)
                .await?;
            sqlx::query("PRAGMA journal_mode=WAL")
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

    pub async fn close(&self) {
        self.pool.close().await;
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
