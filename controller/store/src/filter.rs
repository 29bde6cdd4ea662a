//! Listing executions with filters and a reader's scope (the API and the console).

use sqlx::AssertSqlSafe;

use super::executions::{EXEC_SELECT, ExecutionRow, exec_row};
use super::{Store, StoreResult};

/// What a non-administrator may see: jobs under these folders (`*` all, `/` the top
/// level), started by these accounts, and (`unowned`) runs no account started.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub folders: Vec<String>,
    pub accounts: Vec<String>,
    pub unowned: bool,
}

#[derive(Debug, Clone, Default)]
pub struct ExecFilter {
    pub job: Option<String>,
    pub status: Option<String>,
    /// Started by this account.
    pub account: Option<String>,
    /// Started at or after / before (Unix ms).
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub offset: i64,
    pub limit: i64,
    /// `None` for an administrator: everything.
    pub scope: Option<Scope>,
}

enum Arg {
    Text(String),
    Int(i64),
}

impl Store {
    /// Executions matching `f`, newest first, with the total count for paging.
    pub async fn list_filtered(&self, f: &ExecFilter) -> StoreResult<(Vec<ExecutionRow>, i64)> {
        let mut cond: Vec<String> = Vec::new();
        let mut args: Vec<Arg> = Vec::new();
        let bind = |args: &mut Vec<Arg>, a: Arg| {
            args.push(a);
            format!("${}", args.len())
        };
        if let Some(j) = &f.job {
            cond.push(format!("job = {}", bind(&mut args, Arg::Text(j.clone()))));
        }
        if let Some(s) = &f.status {
            cond.push(format!(
                "status = {}",
                bind(&mut args, Arg::Text(s.clone()))
            ));
        }
        if let Some(a) = &f.account {
            cond.push(format!(
                "account = {}",
                bind(&mut args, Arg::Text(a.clone()))
            ));
        }
        if let Some(t) = f.since {
            cond.push(format!("started_at >= {}", bind(&mut args, Arg::Int(t))));
        }
        if let Some(t) = f.until {
            cond.push(format!("started_at < {}", bind(&mut args, Arg::Int(t))));
        }
        if let Some(s) = &f.scope {
            let mut folders = Vec::new();
            for g in &s.folders {
                let g = g.trim_end_matches('/');
                if g == "*" {
                    folders = vec!["1 = 1".to_string()];
                    break;
                }
                if g.is_empty() {
                    folders.push("job NOT LIKE '%/%'".into());
                } else {
                    let p = bind(&mut args, Arg::Text(format!("{g}/")));
                    folders.push(format!("substr(job, 1, length({p})) = {p}"));
                }
            }
            if folders.is_empty() {
                folders.push("1 = 0".into());
            }
            cond.push(format!("({})", folders.join(" OR ")));
            let mut who: Vec<String> = s
                .accounts
                .iter()
                .map(|a| format!("account = {}", bind(&mut args, Arg::Text(a.clone()))))
                .collect();
            if s.unowned {
                who.push("account = ''".into());
            }
            if who.is_empty() {
                who.push("1 = 0".into());
            }
            cond.push(format!("({})", who.join(" OR ")));
        }
        let filter = if cond.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", cond.join(" AND "))
        };
        let count_sql = format!("SELECT COUNT(*) FROM executions{filter}");
        let mut count = sqlx::query_scalar::<_, i64>(AssertSqlSafe(count_sql));
        for a in &args {
            count = match a {
                Arg::Text(t) => count.bind(t.clone()),
                Arg::Int(i) => count.bind(*i),
            };
        }
        let total = count.fetch_one(&self.pool).await?;
        let n = args.len();
        let sql = format!(
            "{EXEC_SELECT}{filter} ORDER BY started_at DESC, id DESC LIMIT ${} OFFSET ${}",
            n + 1,
            n + 2
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for a in &args {
            q = match a {
                Arg::Text(t) => q.bind(t.clone()),
                Arg::Int(i) => q.bind(*i),
            };
        }
        let rows = q.bind(f.limit).bind(f.offset).fetch_all(&self.pool).await?;
        Ok((rows.iter().map(exec_row).collect(), total))
    }
}
