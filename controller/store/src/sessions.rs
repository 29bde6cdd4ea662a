//! What a login leaves behind: step-two codes, sessions, the waits after failed logins,
//! the replay guard (WSSE nonces, SSO tokens) and the audit log. Codes, tickets and
//! session ids are stored as SHA-256 hex only.

use sqlx::Row;

use super::{Store, StoreResult};

#[derive(Debug, Clone, Default)]
pub struct LoginCodeRow {
    pub ticket_hash: String,
    pub user_name: String,
    pub code_hash: String,
    pub expires_at: i64,
    /// The ticket's absolute end: no code sent for it is valid later.
    pub ends_at: i64,
    pub tries: i64,
    pub sends: i64,
    pub used: bool,
}

#[derive(Debug, Clone, Default)]
pub struct SessionRow {
    pub id_hash: String,
    pub user_name: String,
    pub csrf: String,
    pub created_at: i64,
    pub seen_at: i64,
    pub ended_at: Option<i64>,
    /// How it was opened: `password and mailed code`, `sso`.
    pub how: String,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct AuditRow {
    pub id: String,
    pub at: i64,
    pub actor: String,
    pub address: String,
    pub action: String,
    pub target: String,
    pub detail: String,
    /// The account behind `actor` (empty: none, or an entry older than this column).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub account: String,
}

/// Which audit entries to read.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter<'a> {
    /// Entries of this actor (its label, or its account's name).
    pub actor: Option<&'a str>,
    pub action: Option<&'a str>,
    /// Only the entries of this account and of the accounts it manages.
    pub managed_by: Option<&'a str>,
    pub limit: i64,
}

impl Store {
    pub async fn insert_login_code(&self, c: &LoginCodeRow) -> StoreResult<()> {
        sqlx::query("INSERT INTO login_codes (ticket_hash, user_name, code_hash, expires_at, tries, sends, used, ends_at) VALUES ($1, $2, $3, $4, 0, 1, 0, $5)")
            .bind(&c.ticket_hash)
            .bind(&c.user_name)
            .bind(&c.code_hash)
            .bind(c.expires_at)
            .bind(c.ends_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn login_code(&self, ticket_hash: &str) -> StoreResult<Option<LoginCodeRow>> {
        let row = sqlx::query("SELECT ticket_hash, user_name, code_hash, expires_at, tries, sends, used, ends_at FROM login_codes WHERE ticket_hash = $1")
            .bind(ticket_hash)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| LoginCodeRow {
            ticket_hash: r.get(0),
            user_name: r.get(1),
            code_hash: r.get(2),
            expires_at: r.get(3),
            tries: r.get(4),
            sends: r.get(5),
            used: r.get::<i32, _>(6) != 0,
            ends_at: r.get(7),
        }))
    }

    /// Counts one try of the code whose hash was read as `code_hash`, in one statement: it
    /// counts only while the code is unused, unexpired, the same one, and under `max`
    /// tries, so parallel tries cannot pass the limit. True when this call used the code
    /// (`ok`: the code given was right).
    pub async fn try_login_code(
        &self,
        ticket_hash: &str,
        code_hash: &str,
        ok: bool,
        now: i64,
        max: i64,
    ) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE login_codes SET tries = tries + 1, used = $2 WHERE ticket_hash = $1 AND used = 0 AND code_hash = $3 AND expires_at > $4 AND tries < $5")
            .bind(ticket_hash)
            .bind(i32::from(ok))
            .bind(code_hash)
            .bind(now)
            .bind(max)
            .execute(&self.pool)
            .await?;
        Ok(ok && done.rows_affected() == 1)
    }

    /// Deletes every pending login of `user` (a new password, a disable, a new role: a
    /// code mailed before it must not open a session after it).
    pub async fn delete_login_codes(&self, user: &str) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM login_codes WHERE user_name = $1")
            .bind(user)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// What only grows unless purged: sessions ended or idle since before `stale`, login
    /// codes past their ends, waits that ended before `stale` and replay-guard rows past
    /// their validity. Returns the rows deleted.
    pub async fn purge_login_state(&self, now: i64, stale: i64) -> StoreResult<u64> {
        let mut n = 0;
        for (sql, at) in [
            (
                "DELETE FROM sessions WHERE (ended_at IS NOT NULL AND ended_at < $1) OR seen_at < $1",
                stale,
            ),
            (
                "DELETE FROM login_codes WHERE expires_at < $1 AND (ends_at < $1 OR used = 1)",
                now,
            ),
            ("DELETE FROM login_waits WHERE until_at < $1", stale),
            ("DELETE FROM replay_guard WHERE expires_at < $1", now),
        ] {
            n += sqlx::query(sql)
                .bind(at)
                .execute(&self.pool)
                .await?
                .rows_affected();
        }
        Ok(n)
    }

    /// A new code for the same ticket: the old one stops working, the tries start again.
    pub async fn replace_login_code(
        &self,
        ticket_hash: &str,
        code_hash: &str,
        expires_at: i64,
    ) -> StoreResult<()> {
        sqlx::query("UPDATE login_codes SET code_hash = $2, expires_at = $3, tries = 0, sends = sends + 1 WHERE ticket_hash = $1 AND used = 0")
            .bind(ticket_hash)
            .bind(code_hash)
            .bind(expires_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn insert_session(&self, s: &SessionRow) -> StoreResult<()> {
        sqlx::query("INSERT INTO sessions (id_hash, user_name, csrf, created_at, seen_at, how) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(&s.id_hash)
            .bind(&s.user_name)
            .bind(&s.csrf)
            .bind(s.created_at)
            .bind(s.seen_at)
            .bind(&s.how)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn session(&self, id_hash: &str) -> StoreResult<Option<SessionRow>> {
        let row = sqlx::query("SELECT id_hash, user_name, csrf, created_at, seen_at, ended_at, how FROM sessions WHERE id_hash = $1")
            .bind(id_hash)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| SessionRow {
            id_hash: r.get(0),
            user_name: r.get(1),
            csrf: r.get(2),
            created_at: r.get(3),
            seen_at: r.get(4),
            ended_at: r.get(5),
            how: r.get(6),
        }))
    }

    pub async fn session_seen(&self, id_hash: &str, now: i64) -> StoreResult<()> {
        sqlx::query("UPDATE sessions SET seen_at = $2 WHERE id_hash = $1")
            .bind(id_hash)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Ends one session, or (`id_hash` empty) every session of `user`.
    pub async fn end_sessions(&self, id_hash: &str, user: &str, now: i64) -> StoreResult<()> {
        sqlx::query("UPDATE sessions SET ended_at = $3 WHERE ended_at IS NULL AND (id_hash = $1 OR ($1 = '' AND user_name = $2))")
            .bind(id_hash)
            .bind(user)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// (consecutive failures, wait until) for `user:NAME` or `addr:IP`.
    pub async fn login_wait(&self, subject: &str) -> StoreResult<(i64, i64)> {
        let row = sqlx::query("SELECT failures, until_at FROM login_waits WHERE subject = $1")
            .bind(subject)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map_or((0, 0), |r| (r.get(0), r.get(1))))
    }

    /// One more failure of `subject`, counted in the database (parallel failures all
    /// count); returns the count. `fresh_before`: a last wait that ended before this
    /// time is forgotten first (the count starts again).
    pub async fn add_login_failure(&self, subject: &str, fresh_before: i64) -> StoreResult<i64> {
        let r = sqlx::query("INSERT INTO login_waits (subject, failures, until_at) VALUES ($1, 1, 0) ON CONFLICT (subject) DO UPDATE SET failures = CASE WHEN login_waits.until_at < $2 THEN 1 ELSE login_waits.failures + 1 END RETURNING failures")
            .bind(subject)
            .bind(fresh_before)
            .fetch_one(&self.pool)
            .await?;
        Ok(r.get(0))
    }

    /// Sets the end of `subject`'s wait (a later end already set stays).
    pub async fn extend_login_wait(&self, subject: &str, until: i64) -> StoreResult<()> {
        sqlx::query("UPDATE login_waits SET until_at = CASE WHEN until_at > $2 THEN until_at ELSE $2 END WHERE subject = $1")
            .bind(subject)
            .bind(until)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn set_login_wait(
        &self,
        subject: &str,
        failures: i64,
        until: i64,
    ) -> StoreResult<()> {
        sqlx::query("INSERT INTO login_waits (subject, failures, until_at) VALUES ($1, $2, $3) ON CONFLICT (subject) DO UPDATE SET failures = $2, until_at = $3")
            .bind(subject)
            .bind(failures)
            .bind(until)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn clear_login_wait(&self, subject: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM login_waits WHERE subject = $1")
            .bind(subject)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records `key` as used until `expires_at`; false when it was already used.
    pub async fn claim_once(&self, key: &str, expires_at: i64, now: i64) -> StoreResult<bool> {
        sqlx::query("DELETE FROM replay_guard WHERE expires_at < $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        let done = sqlx::query("INSERT INTO replay_guard (key, expires_at) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
            .bind(key)
            .bind(expires_at)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn insert_audit(&self, a: &AuditRow) -> StoreResult<()> {
        sqlx::query("INSERT INTO audit (id, at, actor, address, action, target, detail, account) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
            .bind(&a.id)
            .bind(a.at)
            .bind(&a.actor)
            .bind(&a.address)
            .bind(&a.action)
            .bind(&a.target)
            .bind(&a.detail)
            .bind(&a.account)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The newest audit entries, optionally of one actor, one action, or only those of
    /// the accounts one administrator manages.
    pub async fn audit(&self, f: &AuditFilter<'_>) -> StoreResult<Vec<AuditRow>> {
        let rows = sqlx::query("SELECT id, at, actor, address, action, target, detail, account FROM audit WHERE ($1 = '' OR actor = $1 OR account = $1) AND ($2 = '' OR action = $2) AND ($3 = '' OR account = $3 OR account IN (SELECT name FROM users WHERE manager = $3 AND top_admin = 0)) ORDER BY at DESC, id DESC LIMIT $4")
            .bind(f.actor.unwrap_or(""))
            .bind(f.action.unwrap_or(""))
            .bind(f.managed_by.unwrap_or(""))
            .bind(f.limit)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| AuditRow {
                id: r.get(0),
                at: r.get(1),
                actor: r.get(2),
                address: r.get(3),
                action: r.get(4),
                target: r.get(5),
                detail: r.get(6),
                account: r.get(7),
            })
            .collect())
    }
}
