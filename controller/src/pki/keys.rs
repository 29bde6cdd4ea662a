//! The keys an encryption goes to: those named, and every backup key; each one checked
//! (it exists, its certificate reads, it has not expired).

use openssl::x509::X509;

use super::cms;
use crate::store::{KeyRow, Store};

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
