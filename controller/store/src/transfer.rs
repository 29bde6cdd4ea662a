//! Transfers (one row per file sent or received) and per-profile record numbers.

use sqlx::{AssertSqlSafe, Row};

use super::{Store, StoreResult};

#[derive(Debug, Clone, Default)]
pub struct TransferRow {
    pub id: String,
    pub scenario: String,
    pub profile: String,
    /// send or receive.
    pub direction: String,
    pub execution_id: String,
    pub file_name: String,
    /// Where the file was found (send) or fetched from (receive).
    pub source_path: String,
    /// The backup copy (send) or the stored file (receive).
    pub stored_path: String,
    /// Where it went at the partner (path, URL, recipients).
    pub remote: Option<String>,
    pub size: i64,
    pub sha256: String,
    pub segments: i64,
    pub status: String,
    pub attempts: i64,
    pub error: Option<String>,
    pub created_at: i64,
    pub deposited_at: Option<i64>,
    pub delivered_at: Option<i64>,
    pub acknowledged_at: Option<i64>,
    pub updated_at: i64,
}

/// Every status a transfer row can have.
pub const TRANSFER_STATUSES: &[&str] = &[
    "prepared",
    "deposited",
    "delivered",
    "acknowledged",
    "failed",
    "unacknowledged",
    "skipped",
    "received",
];

/// The alert event a transfer's new status is, if any: each status counts once per file
/// and run, so a file resent by a later run that fails again is a new fact.
fn lifecycle_event(t: &TransferRow) -> Option<super::AlertEventRow> {
    let kind = match t.status.as_str() {
        "deposited" | "delivered" | "acknowledged" | "unacknowledged" | "received" => {
            t.status.as_str()
        }
        "failed" => "transfer_failed",
        _ => return None,
    };
    Some(super::AlertEventRow {
        id: format!("{}:{kind}:{}", t.id, t.execution_id),
        kind: kind.to_string(),
        project: t
            .scenario
            .rsplit_once('/')
            .map_or("", |(dir, _)| dir)
            .to_string(),
        subject: format!("file:{}/{}", t.scenario, t.file_name),
        job: t.scenario.clone(),
        execution_id: t.execution_id.clone(),
        at: t.updated_at,
        detail: match &t.error {
            Some(e) => format!("{}: {e}", t.file_name),
            None => t.file_name.clone(),
        },
        ..Default::default()
    })
}

const SELECT: &str = "SELECT id, scenario, profile, direction, execution_id, file_name, source_path, stored_path, remote, size, sha256, segments, status, attempts, error, created_at, deposited_at, delivered_at, acknowledged_at, updated_at FROM transfers";

fn row(r: &sqlx::any::AnyRow) -> TransferRow {
    TransferRow {
        id: r.get(0),
        scenario: r.get(1),
        profile: r.get(2),
        direction: r.get(3),
        execution_id: r.get(4),
        file_name: r.get(5),
        source_path: r.get(6),
        stored_path: r.get(7),
        remote: r.get(8),
        size: r.get(9),
        sha256: r.get(10),
        segments: i64::from(r.get::<i32, _>(11)),
        status: r.get(12),
        attempts: i64::from(r.get::<i32, _>(13)),
        error: r.get(14),
        created_at: r.get(15),
        deposited_at: r.get(16),
        delivered_at: r.get(17),
        acknowledged_at: r.get(18),
        updated_at: r.get(19),
    }
}

impl Store {
    /// Inserts or replaces a transfer's row (its whole state).
    pub async fn save_transfer(&self, t: &TransferRow) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM transfers WHERE id = $1")
            .bind(&t.id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO transfers (id, scenario, profile, direction, execution_id, file_name, source_path, stored_path, remote, size, sha256, segments, status, attempts, error, created_at, deposited_at, delivered_at, acknowledged_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)")
            .bind(&t.id)
            .bind(&t.scenario)
            .bind(&t.profile)
            .bind(&t.direction)
            .bind(&t.execution_id)
            .bind(&t.file_name)
            .bind(&t.source_path)
            .bind(&t.stored_path)
            .bind(t.remote.clone())
            .bind(t.size)
            .bind(&t.sha256)
            .bind(t.segments as i32)
            .bind(&t.status)
            .bind(t.attempts as i32)
            .bind(t.error.clone())
            .bind(t.created_at)
            .bind(t.deposited_at)
            .bind(t.delivered_at)
            .bind(t.acknowledged_at)
            .bind(t.updated_at)
            .execute(&mut *tx)
            .await?;
        if let Some(mut e) = lifecycle_event(t) {
            // Who started the run, and whether it is a test run: the alert's owner.
            let owner = sqlx::query("SELECT account, test FROM executions WHERE id = $1")
                .bind(&t.execution_id)
                .fetch_optional(&mut *tx)
                .await?;
            (e.account, e.test) = owner
                .map(|r| (r.get::<String, _>(0), r.get::<i32, _>(1) != 0))
                .unwrap_or_default();
            super::alerts::insert_event(&mut *tx, &e).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Transfers, newest first, optionally of one scenario and/or in some statuses.
    pub async fn transfers(
        &self,
        scenario: Option<&str>,
        statuses: &[String],
        limit: i64,
    ) -> StoreResult<Vec<TransferRow>> {
        let mut sql = format!("{SELECT} WHERE 1 = 1");
        let mut n = 0;
        if scenario.is_some() {
            n += 1;
            sql.push_str(&format!(" AND scenario = ${n}"));
        }
        if !statuses.is_empty() {
            let marks: Vec<String> = statuses
                .iter()
                .map(|_| {
                    n += 1;
                    format!("${n}")
                })
                .collect();
            sql.push_str(&format!(" AND status IN ({})", marks.join(", ")));
        }
        n += 1;
        sql.push_str(&format!(" ORDER BY created_at DESC, id DESC LIMIT ${n}"));
        let mut q = sqlx::query(AssertSqlSafe(sql));
        if let Some(s) = scenario {
            q = q.bind(s.to_string());
        }
        for s in statuses {
            q = q.bind(s.clone());
        }
        let rows = q.bind(limit).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(row).collect())
    }

    /// The files a sending scenario has backed up but not delivered (`prepared`: cut by a
    /// crash; `failed`: after its retries), oldest first: the next run sends them again.
    pub async fn undelivered(&self, scenario: &str) -> StoreResult<Vec<TransferRow>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "{SELECT} WHERE scenario = $1 AND direction = 'send' AND status IN ('prepared', 'failed') AND stored_path <> '' ORDER BY created_at, id LIMIT 10000"
        )))
        .bind(scenario)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(row).collect())
    }

    /// The next record number of a profile (1, 2, ...), kept across runs.
    pub async fn next_record(&self, profile: &str) -> StoreResult<i64> {
        sqlx::query("INSERT INTO transfer_counters (profile, value) VALUES ($1, 0) ON CONFLICT (profile) DO NOTHING")
            .bind(profile)
            .execute(&self.pool)
            .await?;
        let r = sqlx::query(
            "UPDATE transfer_counters SET value = value + 1 WHERE profile = $1 RETURNING value",
        )
        .bind(profile)
        .fetch_one(&self.pool)
        .await?;
        Ok(r.get::<i64, _>(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_failing_again_in_a_later_run_is_a_new_fact() {
        let mut t = TransferRow {
            id: "t1".into(),
            scenario: "mandats/dgfip".into(),
            file_name: "MANDAT1".into(),
            execution_id: "run1".into(),
            status: "failed".into(),
            ..TransferRow::default()
        };
        let first = lifecycle_event(&t).unwrap();
        assert_eq!(lifecycle_event(&t).unwrap().id, first.id, "once per run");
        t.execution_id = "run2".into();
        let again = lifecycle_event(&t).unwrap();
        assert_ne!(again.id, first.id);
        assert_eq!(
            (again.kind.as_str(), again.project.as_str()),
            ("transfer_failed", "mandats")
        );
    }
}
