//! The keys an encryption goes to: those named, and every backup key; each one checked
//! (it exists, its certificate reads, it has not expired).

use openssl::x509::X509;

use super::cms;
use crate::store::{KeyRow, Store, StoreError};

/// Why a key was refused, with the field of the request at fault.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// `field`: name, cert, cn, days, passphrase.
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("no key `{0}`")]
    NotFound(String),
    /// Named by jobs or profiles: `what` cannot be done while they do.
    #[error("key `{name}` is used by {users}: {what}")]
    InUse {
        name: String,
        users: String,
        what: &'static str,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type KeyResult<T> = Result<T, KeyError>;

fn invalid(field: &'static str, message: impl Into<String>) -> KeyError {
    KeyError::Invalid {
        field,
        message: message.into(),
    }
}

/// Keys expiring within this many days are reported (check, serve, the console).
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// The certificates for `names` plus every backup key, with what to warn about (no backup
/// key, a key expiring soon); an error names the key at fault.
pub async fn recipients(
    store: &Store,
    names: &[&str],
    now: i64,
) -> Result<(Vec<X509>, Vec<String>), String> {
    let all = store.keys().await.map_err(|e| e.to_string())?;
    let mut chosen: Vec<&KeyRow> = Vec::new();
    for n in names {
        match all.iter().find(|k| k.name == *n) {
            Some(k) => chosen.push(k),
            None => return Err(format!("key `{n}` does not exist (controller keys list)")),
        }
    }
    let mut warnings = Vec::new();
    let backups: Vec<&KeyRow> = all.iter().filter(|k| k.backup).collect();
    if backups.is_empty() {
        warnings.push("no backup key: only the named keys can decrypt (controller keys add NAME --cert FILE --backup)".to_string());
    }
    for b in backups {
        if !chosen.iter().any(|k| k.name == b.name) {
            chosen.push(b);
        }
    }
    let mut certs = Vec::new();
    for k in chosen {
        let what = format!("key `{}`", k.name);
        let (cert, info) =
            cms::read_cert(k.cert_pem.as_bytes(), &what, now).map_err(|e| e.to_string())?;
        if info.not_after - now < EXPIRY_WARNING_DAYS * 86_400_000 {
            warnings.push(format!("{what} expires on {}", cms::gmt(info.not_after)));
        }
        certs.push(cert);
    }
    Ok((certs, warnings))
}

/// One key named by a job or profile: it exists and can receive encrypted files now;
/// a warning when it expires within 30 days.
pub async fn check_key(store: &Store, name: &str, now: i64) -> Result<Vec<String>, String> {
    let k = store
        .key(name)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("key `{name}` does not exist (controller keys list)"))?;
    let what = format!("key `{name}`");
    let (_, info) = cms::read_cert(k.cert_pem.as_bytes(), &what, now).map_err(|e| e.to_string())?;
    Ok(if info.not_after - now < EXPIRY_WARNING_DAYS * 86_400_000 {
        vec![format!("{what} expires on {}", cms::gmt(info.not_after))]
    } else {
        Vec::new()
    })
}

/// A key's name: letters, digits, `-`, `_`, `.`, 1 to 64 characters.
pub fn check_name(name: &str) -> KeyResult<()> {
    if name.is_empty()
        || name.len() > 64
        || name.starts_with(['.', '-'])
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(invalid(
            "name",
            format!(
                "key name `{name}`: 1 to 64 letters, digits, `-`, `_` or `.`, not starting with `.` or `-`"
            ),
        ));
    }
    Ok(())
}

/// What names keys: the jobs (`archive: encrypt`) and the transfer profiles (`encrypt`).
pub struct Users<'a> {
    pub jobs: &'a ordo_jobs::JobSet,
    pub profiles: &'a std::collections::BTreeMap<String, ordo_jobs::transfer::Profile>,
}

/// The jobs whose archive, and the profiles whose payload, is encrypted to `name`.
pub fn used_by(u: &Users<'_>, name: &str) -> Vec<String> {
    let jobs = u
        .jobs
        .jobs
        .values()
        .filter(|j| j.encrypt.iter().any(|(k, _)| k == name));
    let profiles = u
        .profiles
        .values()
        .filter(|p| p.encrypt.iter().any(|(k, _)| k == name));
    jobs.map(|j| j.name.clone())
        .chain(profiles.map(|p| format!("profile {}", p.name)))
        .collect()
}

fn row_of(
    name: &str,
    info: &cms::CertInfo,
    pem: String,
    backup: bool,
    who: &str,
    now: i64,
) -> KeyRow {
    KeyRow {
        name: name.to_string(),
        cert_pem: pem,
        cn: info.cn.clone(),
        issuer: info.issuer.clone(),
        serial: info.serial.clone(),
        key_type: info.key_type.clone(),
        not_after: info.not_after,
        backup,
        generated: false,
        added_by: who.to_string(),
        added_at: now,
    }
}

/// Imports a certificate (PEM) under `name`: only its public part is kept.
pub async fn add(
    store: &Store,
    name: &str,
    pem: &[u8],
    backup: bool,
    who: &str,
    now: i64,
) -> KeyResult<KeyRow> {
    check_name(name)?;
    if pem.len() > 64 * 1024 {
        return Err(invalid(
            "cert",
            format!("key `{name}`: a certificate of at most 64 KiB"),
        ));
    }
    let (cert, info) = cms::read_cert(pem, &format!("key `{name}`"), now)
        .map_err(|e| invalid("cert", e.to_string()))?;
    // Only the certificate itself is kept (a private key pasted with it is not).
    let pem = cert.to_pem().map_err(|e| invalid("cert", e.to_string()))?;
    let pem = String::from_utf8_lossy(&pem).into_owned();
    let row = row_of(name, &info, pem, backup, who, now);
    store.insert_key(&row).await.map_err(|e| match e {
        StoreError::Exists(_) => invalid("name", format!("a key named `{name}` exists")),
        e => e.into(),
    })?;
    Ok(row)
}

/// What `generate` is asked for.
pub struct GenerateSpec {
    pub name: String,
    pub cn: String,
    pub days: u32,
    pub kind: cms::KeyKind,
    pub backup: bool,
    pub passphrase: String,
    /// PKCS#12, else encrypted PEM (key and certificate).
    pub pkcs12: bool,
}

/// A new key pair for its owner: the row to record (the certificate) and the private key
/// file to hand over once, protected by the passphrase. Nothing is recorded here.
pub fn generate(g: &GenerateSpec, who: &str, now: i64) -> KeyResult<(KeyRow, Vec<u8>)> {
    check_name(&g.name)?;
    if g.cn.trim().is_empty() || g.cn.len() > 64 {
        return Err(invalid("cn", "CN: 1 to 64 characters"));
    }
    if !(1..=3650).contains(&g.days) {
        return Err(invalid("days", "days: 1 to 3650"));
    }
    if g.passphrase.chars().count() < 8 || g.passphrase.len() > 1024 {
        return Err(invalid(
            "passphrase",
            "the passphrase: 8 to 1024 characters",
        ));
    }
    let failed = |e: cms::CmsError| invalid("cn", format!("cannot make the key pair: {e}"));
    let (key, cert) = cms::generate(&g.cn, g.days, g.kind).map_err(failed)?;
    // What the key file refuses is the passphrase (a NUL in it, say).
    let file = if g.pkcs12 {
        cms::to_pkcs12(&g.name, &key, &cert, &g.passphrase)
    } else {
        cms::to_pem(&key, &cert, &g.passphrase)
    }
    .map_err(|e| invalid("passphrase", e.to_string()))?;
    let info = cms::cert_info(&cert).map_err(failed)?;
    let pem = cert.to_pem().map_err(|e| failed(e.into()))?;
    let mut row = row_of(
        &g.name,
        &info,
        String::from_utf8_lossy(&pem).into_owned(),
        g.backup,
        who,
        now,
    );
    row.generated = true;
    Ok((row, file))
}

/// `generate` on a blocking thread (making an RSA key takes a while).
pub async fn generate_off_thread(g: GenerateSpec, who: String) -> KeyResult<(KeyRow, Vec<u8>)> {
    tokio::task::spawn_blocking(move || generate(&g, &who, crate::clock::now_ms()))
        .await
        .map_err(|e| invalid("cn", format!("key generation stopped: {e}")))?
}

/// Renames a key or sets whether it is a backup key; refused for a rename while jobs
/// name it.
pub async fn edit(
    store: &Store,
    jobs: &Users<'_>,
    name: &str,
    rename: Option<&str>,
    backup: Option<bool>,
) -> KeyResult<KeyRow> {
    let k = store
        .key(name)
        .await?
        .ok_or_else(|| KeyError::NotFound(name.to_string()))?;
    let new = rename.unwrap_or(name);
    check_name(new)?;
    let users = used_by(jobs, name);
    if new != name && !users.is_empty() {
        return Err(KeyError::InUse {
            name: name.to_string(),
            users: users.join(", "),
            what: "rename it there too, then here",
        });
    }
    let backup = backup.unwrap_or(k.backup);
    store
        .update_key(name, new, backup)
        .await
        .map_err(|e| match e {
            StoreError::Exists(_) => invalid("name", format!("a key named `{new}` exists")),
            StoreError::Missing(_) => KeyError::NotFound(name.to_string()),
            e => e.into(),
        })?;
    Ok(KeyRow {
        name: new.to_string(),
        backup,
        ..k
    })
}

/// Deletes a key; refused while jobs use it, unless `force`.
pub async fn delete(store: &Store, jobs: &Users<'_>, name: &str, force: bool) -> KeyResult<()> {
    let users = used_by(jobs, name);
    if !users.is_empty() && !force {
        return Err(KeyError::InUse {
            name: name.to_string(),
            users: users.join(", "),
            what: "change those jobs first, or force",
        });
    }
    store.delete_key(name).await.map_err(|e| match e {
        StoreError::Missing(_) => KeyError::NotFound(name.to_string()),
        e => e.into(),
    })
}
