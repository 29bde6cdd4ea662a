//! Managing accounts and API tokens: the rules shared by `controller users|tokens` and the
//! API's admin endpoints (names, addresses, roles, hierarchy, password hashing).

use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

use super::secret::{random_hex, sha256_hex};
use super::{AuthError, AuthResult, Role};
use crate::clock::now_ms;
use crate::store::{Store, TokenRow, UserRow};

/// Longest password accepted (Argon2 would take any; a bound keeps requests small).
pub const MAX_PASSWORD: usize = 1024;
pub const MIN_PASSWORD: usize = 10;

fn invalid(field: &str, message: impl Into<String>) -> AuthError {
    AuthError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

/// Account names: 1-64 of letters, digits, `.`, `_`, `-`, `@`.
pub fn check_name(name: &str) -> AuthResult<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "name",
            format!("`{name}`: 1 to 64 letters, digits, `.`, `_`, `-` or `@`"),
        ))
    }
}

pub fn check_email(email: &str) -> AuthResult<()> {
    if email.len() > 254 {
        return Err(invalid("email", "longer than 254 characters"));
    }
    email
        .parse::<lettre::Address>()
        .map(|_| ())
        .map_err(|e| invalid("email", format!("`{email}`: {e}")))
}

/// Argon2id with the crate's recommended parameters, as a PHC string.
pub fn hash_password(password: &str) -> AuthResult<String> {
    let n = password.chars().count();
    if n < MIN_PASSWORD || password.len() > MAX_PASSWORD {
        return Err(invalid(
            "password",
            format!("{MIN_PASSWORD} to {MAX_PASSWORD} characters (got {n})"),
        ));
    }
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| invalid("password", format!("cannot hash it: {e}")))
}

/// Does `password` match the PHC string? (A malformed string matches nothing.)
pub fn verify_password(password: &str, phc: &str) -> bool {
    password.len() <= MAX_PASSWORD
        && Argon2::default()
            .verify_password(password.as_bytes(), phc)
            .is_ok()
}

/// What `users add` and `POST /api/v1/users` give.
#[derive(Debug, Clone, Default)]
pub struct NewUser {
    pub name: String,
    pub role: String,
    pub email: String,
    pub projects: Vec<String>,
    pub primary_user: Option<String>,
    pub manager: Option<String>,
    pub tenant: Option<String>,
    /// A top administrator (an admin only).
    pub top: bool,
}

/// Checks the hierarchy: a primary exists and is itself a primary (one level, as in the
/// source documents); a manager exists and is an admin.
async fn check_links(store: &Store, u: &UserRow) -> AuthResult<()> {
    if let Some(p) = &u.primary_user {
        match store.user(p).await? {
            Some(pu) if pu.primary_user.is_none() && pu.name != u.name => {}
            Some(_) => {
                return Err(invalid(
                    "primary",
                    format!("`{p}` is itself a secondary account (or this account)"),
                ));
            }
            None => return Err(invalid("primary", format!("no account `{p}`"))),
        }
    }
    if let Some(m) = &u.manager {
        match store.user(m).await? {
            Some(mu) if mu.role == "admin" => {}
            Some(_) => return Err(invalid("manager", format!("`{m}` is not an admin"))),
            None => return Err(invalid("manager", format!("no account `{m}`"))),
        }
    }
    if u.manager.as_deref() == Some(u.name.as_str()) {
        return Err(invalid("manager", "an account cannot manage itself"));
    }
    if u.top && u.role != Role::Admin.as_str() {
        return Err(invalid(
            "top",
            "only an administrator can be a top administrator",
        ));
    }
    for p in &u.projects {
        if p.is_empty() || p.len() > 200 || p.contains("..") {
            return Err(invalid("projects", format!("`{p}` is not a job folder")));
        }
    }
    Ok(())
}

pub async fn add(store: &Store, new: NewUser, password: &str) -> AuthResult<UserRow> {
    check_name(&new.name)?;
    check_email(&new.email)?;
    Role::parse(&new.role)?;
    let now = now_ms();
    let u = UserRow {
        name: new.name,
        password: hash_password(password)?,
        role: new.role,
        email: new.email,
        projects: new.projects,
        primary_user: new.primary_user,
        manager: new.manager,
        tenant: new.tenant,
        top: new.top,
        disabled: false,
        created_at: now,
        changed_at: now,
    };
    check_links(store, &u).await?;
    store.insert_user(&u).await?;
    Ok(u)
}

pub async fn get(store: &Store, name: &str) -> AuthResult<UserRow> {
    store
        .user(name)
        .await?
        .ok_or_else(|| invalid("user", format!("no account `{name}`")))
}

/// Saves a changed account. A new password, a disabled account, a changed role, top
/// standing, manager or tenant ends its sessions and deletes its pending logins; the
/// same changes but a disable also revoke its API tokens (whoever had the old password,
/// or managed it before, may have made some).
pub async fn save(store: &Store, before: &UserRow, mut after: UserRow) -> AuthResult<UserRow> {
    check_email(&after.email)?;
    Role::parse(&after.role)?;
    if after.role != Role::Admin.as_str() {
        after.top = false;
    }
    check_links(store, &after).await?;
    after.changed_at = now_ms();
    store.update_user(&after).await?;
    let standing = after.password != before.password
        || after.role != before.role
        || after.top != before.top
        || after.manager != before.manager
        || after.tenant != before.tenant;
    if standing || after.disabled {
        store
            .end_sessions("", &after.name, after.changed_at)
            .await?;
        store.delete_login_codes(&after.name).await?;
    }
    if standing {
        store
            .revoke_tokens_of(&after.name, after.changed_at)
            .await?;
    }
    Ok(after)
}

/// A new personal API token: the row kept (hashed) and the text shown once.
pub async fn create_token(
    store: &Store,
    user: &str,
    label: &str,
    valid_for: Option<Duration>,
) -> AuthResult<(TokenRow, String)> {
    let u = get(store, user).await?;
    if u.disabled {
        return Err(invalid("user", format!("account `{user}` is disabled")));
    }
    if label.len() > 200 {
        return Err(invalid("label", "longer than 200 characters"));
    }
    let id = random_hex(8);
    let secret = random_hex(32);
    let now = now_ms();
    let row = TokenRow {
        id: id.clone(),
        user_name: u.name,
        secret_hash: sha256_hex(secret.as_bytes()),
        label: label.to_string(),
        created_at: now,
        expires_at: valid_for.map(|d| now + d.as_millis() as i64),
        ..TokenRow::default()
    };
    store.insert_token(&row).await?;
    Ok((row, format!("ordo_{id}_{secret}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("correct horse batterz", &h));
        assert!(!verify_password("x", "not a phc string"));
        assert!(hash_password("short").is_err());
    }

    #[test]
    fn names_and_addresses_are_checked() {
        assert!(check_name("alice.b-2@x").is_ok());
        for bad in ["", "a b", "a/b", &"x".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        assert!(check_email("a@example.com").is_ok());
        assert!(check_email("nope").is_err());
    }
}
