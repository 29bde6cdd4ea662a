//! Personal API tokens: anyone lists, creates and revokes its own; an administrator those
//! of the accounts it manages (a top administrator: everyone's). A token is made from a
//! logged-in session or the command line, never by another token or a tenant's header.

use std::collections::HashSet;
use std::time::Duration;

use super::{ActionError, ActionResult, Actor};
use crate::auth::Via;
use crate::auth::users;
use crate::clock::now_ms;
use crate::store::{Store, TokenRow};

/// Tokens made from the web live 90 days unless asked otherwise, a year at most.
pub const WEB_DEFAULT: Duration = Duration::from_secs(90 * 86400);
pub const WEB_MAX: Duration = Duration::from_secs(365 * 86400);

/// The accounts whose tokens `a` sees: its own, and those it manages.
async fn visible(store: &Store, a: &Actor) -> ActionResult<HashSet<String>> {
    let mut names: HashSet<String> = store
        .users()
        .await?
        .into_iter()
        .filter(|u| a.who.manages(u))
        .map(|u| u.name)
        .collect();
    names.insert(a.who.name.clone());
    Ok(names)
}

/// One account's tokens, or (none) every token this actor sees, newest first.
pub async fn list(store: &Store, a: &Actor, user: Option<&str>) -> ActionResult<Vec<TokenRow>> {
    if let Some(u) = user
        && u != a.who.name
    {
        a.managed(store, u).await?;
    }
    let user = user.or((!a.who.is_admin()).then_some(a.who.name.as_str()));
    let mine = visible(store, a).await?;
    Ok(store
        .tokens(user)
        .await?
        .into_iter()
        .filter(|t| a.who.is_cli() || mine.contains(&t.user_name))
        .collect())
}

/// What a new token takes.
#[derive(Debug, Clone, Default)]
pub struct NewToken {
    /// Whose (none: the actor's own).
    pub user: Option<String>,
    pub label: String,
    /// How long it lives: from the web 90 days by default and a year at most; from the
    /// command line, none is never.
    pub valid_for: Option<Duration>,
}

/// A new token: its row and its text, to show once.
pub async fn create(store: &Store, a: &Actor, t: NewToken) -> ActionResult<(TokenRow, String)> {
    if !matches!(a.who.via, Via::Session { sso: false, .. } | Via::Cli) {
        return Err(ActionError::Forbidden(
            "tokens are created from a session opened with a password and a mailed code, or with `controller tokens create` (not through a tenant's SSO or WSSE)"
                .into(),
        ));
    }
    let user = t.user.unwrap_or_else(|| a.who.name.clone());
    if user != a.who.name || a.who.is_cli() {
        a.managed(store, &user).await?;
    }
    let valid_for = match t.valid_for {
        _ if a.who.is_cli() => t.valid_for,
        None => Some(WEB_DEFAULT),
        Some(d) if d > WEB_MAX || d.is_zero() => {
            return Err(ActionError::invalid("expires", "from 1s to 365d"));
        }
        Some(d) => Some(d),
    };
    let (row, shown) = users::create_token(store, &user, &t.label, valid_for).await?;
    a.audit(
        store,
        "token.create",
        &format!("{user} {}", row.id),
        &t.label,
    )
    .await;
    Ok((row, shown))
}

/// Revokes a token: one's own, or one of an account this administrator manages.
pub async fn revoke(store: &Store, a: &Actor, id: &str) -> ActionResult<TokenRow> {
    let t = store
        .token(id)
        .await?
        .ok_or_else(|| ActionError::NotFound(format!("no token `{id}`")))?;
    if t.user_name != a.who.name || a.who.is_cli() {
        a.managed(store, &t.user_name).await?;
    }
    store.revoke_token(id, now_ms()).await?;
    a.audit(store, "token.revoke", &format!("{} {id}", t.user_name), "")
        .await;
    Ok(t)
}
