//! What a run writes as it goes: log lines, collected files, agents seen, servers'
//! progress and results, batched into one transaction per tick ([`Batch`]).

// Dynamic SQL here is only constants composed in code; values are always bound.
use sqlx::{AssertSqlSafe, Row};

use super::nodes::upsert_node_tx;
use super::{NodeRow, Store, StoreResult, Tx};

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

impl Store {
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
            super::nodes::node_progress_tx(&mut tx, execution_id, node, *step, *ts).await?;
        }
        for a in &b.agents {
            upsert_agent_tx(&mut tx, a).await?;
        }
        for (n, files) in &b.done {
            upsert_node_tx(&mut tx, n).await?;
            insert_files_tx(&mut tx, execution_id, files).await?;
            // The server is done: nothing of it is left to stop.
            sqlx::query("DELETE FROM running_groups WHERE execution_id = $1 AND node = $2")
                .bind(execution_id)
                .bind(&n.node)
                .execute(&mut *tx)
                .await?;
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

    pub async fn logs(&self, execution_id: &str, node: Option<&str>) -> StoreResult<Vec<LogLine>> {
        self.logs_after(execution_id, node, -1, i64::MAX).await
    }

    /// The last `n` lines of an execution, in order, and how many it has in all.
    pub async fn logs_tail(&self, execution_id: &str, n: i64) -> StoreResult<(Vec<LogLine>, i64)> {
        let count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM log_lines WHERE execution_id = $1")
                .bind(execution_id)
                .fetch_one(&self.pool)
                .await?;
        let first: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MIN(seq), -1) FROM (SELECT seq FROM log_lines WHERE execution_id = $1 ORDER BY seq DESC LIMIT $2) t",
        )
        .bind(execution_id)
        .bind(n)
        .fetch_one(&self.pool)
        .await?;
        let lines = self.logs_after(execution_id, None, first - 1, n).await?;
        Ok((lines, count))
    }

    /// At most `limit` lines after line `after` (a sequence number), in order.
    pub async fn logs_after(
        &self,
        execution_id: &str,
        node: Option<&str>,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<LogLine>> {
        let mut q = String::from(
            "SELECT seq, node, step, stream, ts, line FROM log_lines WHERE execution_id = $1 AND seq > $2",
        );
        if node.is_some() {
            q.push_str(" AND node = $4");
        }
        q.push_str(" ORDER BY seq LIMIT $3");
        let mut query = sqlx::query(AssertSqlSafe(q))
            .bind(execution_id)
            .bind(after)
            .bind(limit);
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
}
