//! Writes that outlast a database briefly away: a lock another program holds on the
//! SQLite file longer than the busy timeout, a PostgreSQL server restarted. A run's
//! servers cannot wait for the database, so their output is kept and written again until
//! it goes through (within [`RETRY_FOR`]); other errors are returned at once.

use std::future::Future;
use std::time::{Duration, Instant};

use super::{StoreError, StoreResult};

/// How long a write is tried again before its error is returned.
pub const RETRY_FOR: Duration = Duration::from_secs(600);

/// Whether the database is only away for now (locked, busy, restarting, unreachable).
pub fn transient(e: &StoreError) -> bool {
    match e {
        StoreError::Sql(
            sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::Protocol(_),
        ) => true,
        StoreError::Sql(sqlx::Error::Database(d)) => {
            let m = d.message().to_lowercase();
            // SQLite: locked or busy; PostgreSQL: shutting down (57P..), connection (08...).
            m.contains("locked")
                || m.contains("busy")
                || d.code()
                    .is_some_and(|c| c.starts_with("57P") || c.starts_with("08"))
        }
        _ => false,
    }
}

/// Runs `write` until it succeeds, its error is not [`transient`], or [`RETRY_FOR`]
/// passed; pauses from 0.5 s doubling to 10 s; says once what it waits for.
pub async fn write_retrying<T, F, Fut>(what: &str, mut write: F) -> StoreResult<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = StoreResult<T>>,
{
    let started = Instant::now();
    let mut pause = Duration::from_millis(500);
    let mut said = false;
    loop {
        match write().await {
            Err(e) if transient(&e) && started.elapsed() < RETRY_FOR => {
                if !said {
                    tracing::warn!("{what}: the database is not available ({e}): trying again");
                    said = true;
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(10));
            }
            Err(e) => return Err(e),
            Ok(v) => {
                if said {
                    tracing::warn!("{what}: written, the database is back");
                }
                return Ok(v);
            }
        }
    }
}
