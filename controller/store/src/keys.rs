//! Encryption keys: certificates by name (personal or backup), never a private key.

use sqlx::Row;

use super::{Store, StoreError, StoreResult};

#[derive(Debug, Clone, Default)]
pub struct KeyRow {
    pub name: String,
    pub cert_pem: String,
    pub cn: String,
    pub issuer: String,
    pub serial: String,
    pub key_type: String,
    /// Unix milliseconds.
    pub not_after: i64,
    /// Added to every encryption.
    pub backup: bool,
    /// Made by the controller (its private part went to its owner once).
    pub generated: bool,
    pub added_by: String,
    pub added_at: i64,
}

const SELECT: &str = "SELECT name, cert_pem, cn, issuer, serial, key_type, not_after, backup, generated, added_by, added_at FROM encryption_keys";

fn row(r: &sqlx::any::AnyRow) -> KeyRow {
    KeyRow {
        name: r.get(0),
        cert_pem: r.get(1),
        cn: r.get(2),
        issuer: r.get(3),
        serial: r.get(4),
        key_type: r.get(5),
        not_after: r.get(6),
        backup: r.get::<i32, _>(7) != 0,
        generated: r.get::<i32, _>(8) != 0,
        added_by: r.get(9),
        added_at: r.get(10),
    }
}

impl Store {
    /// Every key, backup keys last, by name.
    pub async fn keys(&self) -> StoreResult<Vec<KeyRow>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{SELECT} ORDER BY backup, name"
        )))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(row).collect())
    }

    pub async fn key(&self, name: &str) -> StoreResult<Option<KeyRow>> {
        let r = sqlx::query(sqlx::AssertSqlSafe(format!("{SELECT} WHERE name = $1")))
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(r.as_ref().map(row))
    }

    /// Adds a key; an error when the name is taken.
    pub async fn insert_key(&self, k: &KeyRow) -> StoreResult<()> {
        let done = sqlx::query("INSERT INTO encryption_keys (name, cert_pem, cn, issuer, serial, key_type, not_after, backup, generated, added_by, added_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (name) DO NOTHING")
            .bind(&k.name)
            .bind(&k.cert_pem)
            .bind(&k.cn)
            .bind(&k.issuer)
            .bind(&k.serial)
            .bind(&k.key_type)
            .bind(k.not_after)
            .bind(i32::from(k.backup))
            .bind(i32::from(k.generated))
            .bind(&k.added_by)
            .bind(k.added_at)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Exists(format!("a key named `{}`", k.name)));
        }
        Ok(())
    }

    /// Renames a key and sets whether it is a backup key.
    pub async fn update_key(&self, name: &str, new_name: &str, backup: bool) -> StoreResult<()> {
        if new_name != name && self.key(new_name).await?.is_some() {
            return Err(StoreError::Exists(format!("a key named `{new_name}`")));
        }
        let done = sqlx::query("UPDATE encryption_keys SET name = $2, backup = $3 WHERE name = $1")
            .bind(name)
            .bind(new_name)
            .bind(i32::from(backup))
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Missing(format!("key `{name}`")));
        }
        Ok(())
    }

    pub async fn delete_key(&self, name: &str) -> StoreResult<()> {
        let done = sqlx::query("DELETE FROM encryption_keys WHERE name = $1")
            .bind(name)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Missing(format!("key `{name}`")));
        }
        Ok(())
    }
}
