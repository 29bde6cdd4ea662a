//! Encryption keys. Every administrator reads the list and adds, renames or deletes
//! personal keys it added itself. Backup keys receive every future encrypted archive, so
//! adding, changing or deleting one (and deleting someone else's key) is for top
//! administrators only; when the set of backup keys changes, the top administrators and
//! the key holders (accounts named as a key) are mailed.

use super::{ActionError, ActionResult, Actor};
use crate::auth::account_of;
use crate::clock::now_ms;
use crate::pki::keys::{self, GenerateSpec, KeyError, Users};
use crate::project::MailConfig;
use crate::store::{KeyRow, Store};

/// What key actions need besides the caller.
pub struct KeysCx<'a> {
    pub store: &'a Store,
    /// What names keys (jobs and profiles): a key in use is not renamed or deleted.
    pub users: Users<'a>,
    pub mail: &'a MailConfig,
}

impl From<KeyError> for ActionError {
    fn from(e: KeyError) -> Self {
        match e {
            KeyError::Invalid { field, message } => ActionError::invalid(field, message),
            KeyError::NotFound(_) => ActionError::NotFound(e.to_string()),
            KeyError::InUse { .. } => ActionError::Conflict(e.to_string()),
            KeyError::Store(s) => s.into(),
        }
    }
}

pub async fn list(cx: &KeysCx<'_>, a: &Actor) -> ActionResult<Vec<KeyRow>> {
    a.require_admin()?;
    Ok(cx.store.keys().await?)
}

/// Did `a` add this key? Its `added_by` names `a`'s account, not the command line, and
/// the key was added since that account exists (an account made later under the name of
/// a deleted one, or of the system user, owns nothing).
async fn own(cx: &KeysCx<'_>, a: &Actor, k: &KeyRow) -> ActionResult<bool> {
    if a.who.is_cli() || k.added_by.ends_with(" (cli)") || account_of(&k.added_by) != a.who.name {
        return Ok(false);
    }
    Ok(cx
        .store
        .user(&a.who.name)
        .await?
        .is_some_and(|u| u.created_at <= k.added_at))
}

async fn existing(cx: &KeysCx<'_>, name: &str) -> ActionResult<KeyRow> {
    cx.store
        .key(name)
        .await?
        .ok_or_else(|| KeyError::NotFound(name.to_string()).into())
}

/// Imports a certificate under `name`.
pub async fn add(
    cx: &KeysCx<'_>,
    a: &Actor,
    name: &str,
    pem: &[u8],
    backup: bool,
) -> ActionResult<KeyRow> {
    a.require_admin()?;
    if backup {
        a.require_top("adding a backup key")?;
    }
    let k = keys::add(cx.store, name, pem, backup, &a.who.label(), now_ms()).await?;
    a.audit(cx.store, "key add", &k.name, &backup_note(&k))
        .await;
    if k.backup {
        backup_set_changed(
            cx,
            a,
            &format!("backup key `{}` (CN={}) was added", k.name, k.cn),
        )
        .await;
    }
    Ok(k)
}

fn backup_note(k: &KeyRow) -> String {
    if k.backup {
        format!("{} (backup)", k.cn)
    } else {
        k.cn.clone()
    }
}

/// Makes a key pair; `deliver` hands the private key file over (written for the command
/// line; sent to the browser by the web, which delivers after this returns) before the
/// certificate is recorded. Returns the row and the file.
pub async fn generate(
    cx: &KeysCx<'_>,
    a: &Actor,
    spec: GenerateSpec,
    deliver: impl FnOnce(&KeyRow, &[u8]) -> ActionResult<()>,
) -> ActionResult<(KeyRow, Vec<u8>)> {
    a.require_admin()?;
    if spec.backup {
        a.require_top("making a backup key")?;
    }
    keys::check_name(&spec.name)?;
    if cx.store.key(&spec.name).await?.is_some() {
        return Err(ActionError::invalid(
            "name",
            format!("a key named `{}` exists", spec.name),
        ));
    }
    let (row, file) = keys::generate_off_thread(spec, a.who.label()).await?;
    deliver(&row, &file)?;
    cx.store.insert_key(&row).await.map_err(|e| match e {
        crate::store::StoreError::Exists(_) => {
            ActionError::invalid("name", format!("a key named `{}` exists", row.name))
        }
        e => e.into(),
    })?;
    a.audit(cx.store, "key generate", &row.name, &backup_note(&row))
        .await;
    if row.backup {
        backup_set_changed(
            cx,
            a,
            &format!("backup key `{}` (CN={}) was made", row.name, row.cn),
        )
        .await;
    }
    Ok((row, file))
}

/// Renames a key or makes it a backup key or not.
pub async fn edit(
    cx: &KeysCx<'_>,
    a: &Actor,
    name: &str,
    rename: Option<&str>,
    backup: Option<bool>,
) -> ActionResult<KeyRow> {
    a.require_admin()?;
    let before = existing(cx, name).await?;
    let backup_changes = backup.is_some_and(|b| b != before.backup);
    if before.backup || backup_changes {
        a.require_top("changing a backup key")?;
    } else if !own(cx, a, &before).await? {
        a.require_top("changing a key someone else added")?;
    }
    let k = keys::edit(cx.store, &cx.users, name, rename, backup).await?;
    let detail = format!("name={} backup={}", k.name, k.backup);
    a.audit(cx.store, "key edit", name, &detail).await;
    if backup_changes {
        let what = if k.backup {
            format!("key `{}` (CN={}) became a backup key", k.name, k.cn)
        } else {
            format!("key `{}` (CN={}) is no longer a backup key", k.name, k.cn)
        };
        backup_set_changed(cx, a, &what).await;
    }
    Ok(k)
}

/// Deletes a key (refused while jobs use it, unless `force`).
pub async fn delete(cx: &KeysCx<'_>, a: &Actor, name: &str, force: bool) -> ActionResult<()> {
    a.require_admin()?;
    let k = existing(cx, name).await?;
    if k.backup {
        a.require_top("deleting a backup key")?;
    } else if !own(cx, a, &k).await? {
        a.require_top("deleting a key someone else added")?;
    }
    keys::delete(cx.store, &cx.users, name, force).await?;
    let detail = if force { "forced" } else { "" };
    a.audit(cx.store, "key delete", name, detail).await;
    if k.backup {
        backup_set_changed(
            cx,
            a,
            &format!("backup key `{}` (CN={}) was deleted", k.name, k.cn),
        )
        .await;
    }
    Ok(())
}

/// Mails the top administrators and the key holders that the backup keys changed (a
/// failure to mail is logged: the change is made and audited).
async fn backup_set_changed(cx: &KeysCx<'_>, a: &Actor, what: &str) {
    let (users, keys) = match (cx.store.users().await, cx.store.keys().await) {
        (Ok(u), Ok(k)) => (u, k),
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!("backup keys changed, but the accounts to tell cannot be read: {e}");
            return;
        }
    };
    let mut to: Vec<String> = users
        .iter()
        .filter(|u| !u.disabled && !u.email.is_empty())
        .filter(|u| u.top || keys.iter().any(|k| k.name == u.name))
        .map(|u| u.email.clone())
        .collect();
    to.sort();
    to.dedup();
    if to.is_empty() {
        tracing::warn!("{what}: no top administrator or key holder has a mail address to tell");
        return;
    }
    let backups: Vec<String> = keys
        .iter()
        .filter(|k| k.backup)
        .map(|k| {
            format!(
                "  {} (CN={}, expires {})",
                k.name,
                k.cn,
                crate::pki::cms::gmt(k.not_after)
            )
        })
        .collect();
    let now = if backups.is_empty() {
        "There is no backup key now: only the keys a job names can decrypt its results.".to_string()
    } else {
        format!(
            "Every encrypted result is now also encrypted to:\n{}",
            backups.join("\n")
        )
    };
    let m = crate::mail::Outgoing {
        to,
        cc: Vec::new(),
        subject: "[ordo] the backup encryption keys changed".into(),
        body: format!(
            "{what}, by {} {}.\n\n{now}\n\nIf you did not expect this change, check the audit log (controller audit --action 'key add').\n",
            a.who.label(),
            if a.address.is_empty() {
                String::new()
            } else {
                format!("from {}", a.address)
            }
        ),
        attachment: None,
    };
    if let Err(e) = crate::mail::send_or_queue(cx.mail, &m).await {
        tracing::error!("{what}: the mail telling the top administrators failed: {e}");
    }
}
