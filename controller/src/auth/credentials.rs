//! Checking what a request carries: a session cookie, a bearer token, or a tenant's WSSE
//! header; and the SSO token a tenant's front-end gives in place of a password.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use super::secret::{same, sha256_hex};
use super::{AuthError, AuthResult, AuthSettings, Principal, Role, Via, principal};
use crate::store::{Store, UserRow};

fn refused(why: &str) -> AuthError {
    AuthError::Unauthenticated(why.to_string())
}

/// The enabled account `name`, or the generic refusal (which never says which part was wrong).
async fn enabled(store: &Store, name: &str, why: &str) -> AuthResult<UserRow> {
    match store.user(name).await? {
        Some(u) if !u.disabled => Ok(u),
        _ => Err(refused(why)),
    }
}

/// A console session: its cookie value, unexpired (idle and absolute limits).
pub async fn session(
    store: &Store,
    cfg: &AuthSettings,
    cookie: &str,
    now: i64,
) -> AuthResult<Principal> {
    const WHY: &str = "your session has ended: log in again";
    let id_hash = sha256_hex(cookie.as_bytes());
    let s = store.session(&id_hash).await?.ok_or_else(|| refused(WHY))?;
    let idle = cfg.session_idle.as_millis() as i64;
    let max = cfg.session_max.as_millis() as i64;
    if s.ended_at.is_some() || now - s.seen_at > idle || now - s.created_at > max {
        return Err(refused(WHY));
    }
    // One write a minute at most: the idle limit does not need better.
    if now - s.seen_at > 60_000 {
        store.session_seen(&id_hash, now).await?;
    }
    let u = enabled(store, &s.user_name, WHY).await?;
    principal(
        store,
        &u,
        Via::Session {
            id_hash,
            csrf: s.csrf,
            sso: s.how == "sso",
        },
    )
    .await
}

/// `Authorization: Bearer ordo_<id>_<secret>`.
pub async fn bearer(store: &Store, token: &str, now: i64) -> AuthResult<Principal> {
    const WHY: &str = "unknown, expired or revoked API token";
    let mut parts = token.splitn(3, '_');
    let (Some("ordo"), Some(id), Some(secret)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(refused(WHY));
    };
    if id.len() > 64 || secret.len() > 256 {
        return Err(refused(WHY));
    }
    let t = store.token(id).await?.ok_or_else(|| refused(WHY))?;
    let live = t.revoked_at.is_none() && t.expires_at.is_none_or(|e| e > now);
    if !live || !same(&t.secret_hash, &sha256_hex(secret.as_bytes())) {
        return Err(refused(WHY));
    }
    let u = enabled(store, &t.user_name, WHY).await?;
    if t.last_used_at.is_none_or(|l| now - l > 60_000) {
        store.token_used(&t.id, now).await?;
    }
    principal(store, &u, Via::Token(t.id)).await
}

/// A tenant's shared key, read now from its file or environment variable.
pub fn tenant_key(cfg: &AuthSettings, tenant: &str) -> Option<String> {
    let t = cfg.tenants.get(tenant)?;
    let key = match (&t.key_file, &t.key_env) {
        (Some(f), _) => std::fs::read_to_string(f)
            .map_err(|e| tracing::error!("tenant {tenant}: cannot read {}: {e}", f.display()))
            .ok()?,
        (None, Some(v)) => std::env::var(v).ok()?,
        (None, None) => return None,
    };
    let key = key.trim_end_matches(['\n', '\r']).to_string();
    (!key.is_empty()).then_some(key)
}

/// The key of the tenant `u` belongs to.
fn key_for(cfg: &AuthSettings, u: &UserRow, why: &str) -> AuthResult<String> {
    u.tenant
        .as_deref()
        .and_then(|t| tenant_key(cfg, t))
        .ok_or_else(|| refused(why))
}

/// Administrators never log in through a tenant: said only to a caller who proved it
/// holds the tenant's key (others cannot learn who is an administrator this way).
fn not_admin(u: &UserRow) -> AuthResult<()> {
    if u.role == Role::Admin.as_str() {
        return Err(AuthError::Forbidden(
            "administrators cannot log in through a tenant (SSO or WSSE)".into(),
        ));
    }
    Ok(())
}

/// An account's WSSE password: hex HMAC-SHA256 of its name with its tenant's key. The
/// tenant computes it for each of its accounts; a header made for one account is
/// worthless for another.
pub fn wsse_password(tenant_key: &str, user: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, tenant_key.as_bytes());
    hex::encode(ring::hmac::sign(&key, user.as_bytes()))
}

/// The fields of `UsernameToken Username="..", PasswordDigest="..", Nonce="..", Created=".."`.
fn wsse_fields(header: &str) -> Option<[String; 4]> {
    let rest = header.trim().strip_prefix("UsernameToken")?;
    let mut out: [Option<String>; 4] = Default::default();
    for part in rest.split(',') {
        let (k, v) = part.split_once('=')?;
        let v = v.trim().trim_matches('"').to_string();
        let slot = match k.trim() {
            "Username" => 0,
            "PasswordDigest" => 1,
            "Nonce" => 2,
            "Created" => 3,
            _ => continue,
        };
        out[slot] = Some(v);
    }
    let [a, b, c, d] = out;
    Some([a?, b?, c?, d?])
}

/// `X-WSSE: UsernameToken …` (OASIS UsernameToken profile): the digest is
/// `base64(sha1(nonce bytes + Created + password))` with the account's [`wsse_password`],
/// `Nonce` is base64, `Created` is RFC 3339 within ±5 minutes of now, and a nonce is
/// accepted once per tenant.
pub async fn wsse(
    store: &Store,
    cfg: &AuthSettings,
    header: &str,
    now: i64,
) -> AuthResult<Principal> {
    const WHY: &str = "WSSE: refused (unknown account, wrong digest, a Created time more than 5 minutes from now, or a nonce already used)";
    if header.len() > 1024 {
        return Err(refused(WHY));
    }
    let [user, digest, nonce, created] = wsse_fields(header).ok_or_else(|| {
        refused("WSSE: expected UsernameToken Username=, PasswordDigest=, Nonce=, Created=")
    })?;
    if user.len() > 64 || nonce.len() > 200 || digest.len() > 200 {
        return Err(refused(WHY));
    }
    let at = chrono::DateTime::parse_from_rfc3339(&created)
        .map_err(|_| refused("WSSE: Created is not an RFC 3339 time"))?
        .timestamp_millis();
    const SKEW: i64 = 5 * 60_000;
    if (now - at).abs() > SKEW {
        return Err(refused(WHY));
    }
    let nonce_bytes = B64
        .decode(&nonce)
        .map_err(|_| refused("WSSE: Nonce is not base64"))?;
    let u = enabled(store, &user, WHY).await?;
    let key = key_for(cfg, &u, WHY)?;
    let mut data = nonce_bytes;
    data.extend_from_slice(created.as_bytes());
    data.extend_from_slice(wsse_password(&key, &u.name).as_bytes());
    let expected = B64.encode(ring::digest::digest(
        &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
        &data,
    ));
    if !same(&expected, &digest) {
        return Err(refused(WHY));
    }
    not_admin(&u)?;
    let tenant = u.tenant.clone().unwrap_or_default();
    if !store
        .claim_once(&format!("wsse:{tenant}:{nonce}"), at + 2 * SKEW, now)
        .await?
    {
        return Err(refused(WHY));
    }
    principal(store, &u, Via::Wsse(u.tenant.clone().unwrap_or_default())).await
}

/// An SSO password `sso:<YYMMDD>:<HHmm>:<hex sha256(key + login + YYMMDD + HHmm)>` (UTC):
/// Ok when it is right, inside the window, and not used before.
pub async fn sso(
    store: &Store,
    cfg: &AuthSettings,
    u: &UserRow,
    token: &str,
    now: i64,
) -> AuthResult<()> {
    // One answer for every refusal, the same as a wrong password: nobody learns here
    // which accounts exist or belong to a tenant.
    const WHY: &str = "wrong user name or password";
    let parts: Vec<&str> = token.split(':').collect();
    let [_, date, time, mac] = parts[..] else {
        return Err(refused(WHY));
    };
    let at = chrono::NaiveDateTime::parse_from_str(&format!("{date}{time}"), "%y%m%d%H%M")
        .map_err(|_| refused(WHY))?
        .and_utc()
        .timestamp_millis();
    let window = cfg.sso_window.as_millis() as i64;
    if (now - at).abs() > window {
        return Err(refused(WHY));
    }
    let key = key_for(cfg, u, WHY)?;
    let expected = sha256_hex(format!("{key}{}{date}{time}", u.name).as_bytes());
    if !same(&expected, &mac.to_ascii_lowercase()) {
        return Err(refused(WHY));
    }
    not_admin(u)?;
    let key = format!("sso:{}:{}", u.name, mac.to_ascii_lowercase());
    if !store.claim_once(&key, at + window + 60_000, now).await? {
        return Err(refused(WHY));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wsse_header_fields_are_read_in_any_order() {
        let f = wsse_fields(r#"UsernameToken Nonce="bm9uY2U=", Username="bob", Created="2026-12-02T10:00:00Z", PasswordDigest="abc=""#).unwrap();
        assert_eq!(
            f,
            ["bob", "abc=", "bm9uY2U=", "2026-12-02T10:00:00Z"].map(String::from)
        );
        assert!(wsse_fields(r#"UsernameToken Username="bob""#).is_none());
        assert!(wsse_fields("Basic abc").is_none());
    }

    #[test]
    fn the_wsse_password_is_an_hmac_of_the_name() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            wsse_password("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
