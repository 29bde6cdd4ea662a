//! Accounts and their API tokens (`controller users`, `controller tokens`). Passwords are
//! Argon2id PHC strings and token secrets SHA-256 hex: nothing here is a usable secret.

use sqlx::Row;

use super::{Store, StoreError, StoreResult};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserRow {
    pub name: String,
    /// Argon2id PHC string.
    pub password: String,
    /// admin, operator or viewer.
    pub role: String,
    pub email: String,
    /// Job folders this account may use (`*` is every one).
    pub projects: Vec<String>,
    /// Set on a secondary account: its primary.
    pub primary_user: Option<String>,
    /// The administrator who manages this account.
    pub manager: Option<String>,
    /// A top administrator: manages every account, keys and the whole audit log. Granted
    /// only by another top administrator or the controller's command line.
    pub top: bool,
    /// The SSO tenant (trusted front-end) this account may log in through.
    pub tenant: Option<String>,
    pub disabled: bool,
    pub created_at: i64,
    pub changed_at: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenRow {
    pub id: String,
    pub user_name: String,
    pub secret_hash: String,
    pub label: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

const USER_SELECT: &str = "SELECT name, password, role, email, projects, primary_user, manager, tenant, disabled, created_at, changed_at, top_admin FROM users";
const TOKEN_SELECT: &str = "SELECT id, user_name, secret_hash, label, created_at, expires_at, revoked_at, last_used_at FROM tokens";

fn user_row(r: &sqlx::any::AnyRow) -> UserRow {
    UserRow {
        name: r.get(0),
        password: r.get(1),
        role: r.get(2),
        email: r.get(3),
        projects: serde_json::from_str(&r.get::<String, _>(4)).unwrap_or_default(),
        primary_user: r.get(5),
        manager: r.get(6),
        tenant: r.get(7),
        disabled: r.get::<i32, _>(8) != 0,
        created_at: r.get(9),
        changed_at: r.get(10),
        top: r.get::<i32, _>(11) != 0,
    }
}

fn token_row(r: &sqlx::any::AnyRow) -> TokenRow {
    TokenRow {
        id: r.get(0),
        user_name: r.get(1),
        secret_hash: r.get(2),
        label: r.get(3),
        created_at: r.get(4),
        expires_at: r.get(5),
        revoked_at: r.get(6),
        last_used_at: r.get(7),
    }
}

impl Store {
    /// Adds an account; an existing name is refused.
    pub async fn insert_user(&self, u: &UserRow) -> StoreResult<()> {
        let done = sqlx::query("INSERT INTO users (name, password, role, email, projects, primary_user, manager, tenant, disabled, created_at, changed_at, top_admin) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (name) DO NOTHING")
            .bind(&u.name)
            .bind(&u.password)
            .bind(&u.role)
            .bind(&u.email)
            .bind(serde_json::to_string(&u.projects).unwrap_or_default())
            .bind(u.primary_user.clone())
            .bind(u.manager.clone())
            .bind(u.tenant.clone())
            .bind(i32::from(u.disabled))
            .bind(u.created_at)
            .bind(u.changed_at)
            .bind(i32::from(u.top))
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Exists(format!("an account named `{}`", u.name)));
        }
        Ok(())
    }

    /// Rewrites every field of an existing account.
    pub async fn update_user(&self, u: &UserRow) -> StoreResult<()> {
        let done = sqlx::query("UPDATE users SET password = $2, role = $3, email = $4, projects = $5, primary_user = $6, manager = $7, tenant = $8, disabled = $9, changed_at = $10, top_admin = $11 WHERE name = $1")
            .bind(&u.name)
            .bind(&u.password)
            .bind(&u.role)
            .bind(&u.email)
            .bind(serde_json::to_string(&u.projects).unwrap_or_default())
            .bind(u.primary_user.clone())
            .bind(u.manager.clone())
            .bind(u.tenant.clone())
            .bind(i32::from(u.disabled))
            .bind(u.changed_at)
            .bind(i32::from(u.top))
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Missing(format!("account `{}`", u.name)));
        }
        Ok(())
    }

    pub async fn user(&self, name: &str) -> StoreResult<Option<UserRow>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{USER_SELECT} WHERE name = $1"
        )))
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(user_row))
    }

    pub async fn users(&self) -> StoreResult<Vec<UserRow>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!("{USER_SELECT} ORDER BY name")))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(user_row).collect())
    }

    /// Deletes an account with its tokens and sessions; its secondaries become primaries
    /// and the accounts it managed are handed to `hand_to` (never to nobody). Its
    /// executions stay, marked `NAME (deleted)` (a name no account can take): a new
    /// account of the same name does not see them.
    pub async fn delete_user(&self, name: &str, hand_to: &str) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("DELETE FROM users WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Missing(format!("account `{name}`")));
        }
        for sql in [
            "DELETE FROM tokens WHERE user_name = $1",
            "DELETE FROM sessions WHERE user_name = $1",
            "DELETE FROM login_codes WHERE user_name = $1",
            "UPDATE users SET primary_user = NULL WHERE primary_user = $1",
            // Its alert configuration and queued alerts go with it (a new account of the
            // same name starts afresh).
            "DELETE FROM alert_settings WHERE account = $1",
            "DELETE FROM alert_rules WHERE account = $1",
            "DELETE FROM alert_outbox WHERE account = $1 AND state IN ('pending', 'sending')",
        ] {
            sqlx::query(sql).bind(name).execute(&mut *tx).await?;
        }
        sqlx::query("UPDATE users SET manager = $1 WHERE manager = $2")
            .bind(hand_to)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        // Its audit entries and sent alerts stay, as a deleted account's: an account made
        // later under the same name does not inherit them.
        for sql in [
            "UPDATE audit SET account = $1 WHERE account = $2",
            "UPDATE alert_outbox SET account = $1 WHERE account = $2",
        ] {
            sqlx::query(sql)
                .bind(format!("{name} (deleted)"))
                .bind(name)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("UPDATE executions SET account = $1 WHERE account = $2")
            .bind(format!("{name} (deleted)"))
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn insert_token(&self, t: &TokenRow) -> StoreResult<()> {
        sqlx::query("INSERT INTO tokens (id, user_name, secret_hash, label, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(&t.id)
            .bind(&t.user_name)
            .bind(&t.secret_hash)
            .bind(&t.label)
            .bind(t.created_at)
            .bind(t.expires_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn token(&self, id: &str) -> StoreResult<Option<TokenRow>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("{TOKEN_SELECT} WHERE id = $1")))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(token_row))
    }

    /// Every token, or one account's, newest first.
    pub async fn tokens(&self, user: Option<&str>) -> StoreResult<Vec<TokenRow>> {
        let rows = match user {
            Some(u) => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "{TOKEN_SELECT} WHERE user_name = $1 ORDER BY created_at DESC, id"
                )))
                .bind(u)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "{TOKEN_SELECT} ORDER BY created_at DESC, id"
                )))
                .fetch_all(&self.pool)
                .await?
            }
        };
        Ok(rows.iter().map(token_row).collect())
    }

    /// Revokes a token (once: revoking it again keeps the first time).
    pub async fn revoke_token(&self, id: &str, now: i64) -> StoreResult<()> {
        let done =
            sqlx::query("UPDATE tokens SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1")
                .bind(id)
                .bind(now)
                .execute(&self.pool)
                .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Missing(format!("token `{id}`")));
        }
        Ok(())
    }

    /// Revokes every live token of `user` (a new password: whoever had the old one may
    /// have made tokens too).
    pub async fn revoke_tokens_of(&self, user: &str, now: i64) -> StoreResult<u64> {
        let done = sqlx::query(
            "UPDATE tokens SET revoked_at = $2 WHERE user_name = $1 AND revoked_at IS NULL",
        )
        .bind(user)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    pub async fn token_used(&self, id: &str, now: i64) -> StoreResult<()> {
        sqlx::query("UPDATE tokens SET last_used_at = $2 WHERE id = $1")
            .bind(id)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
