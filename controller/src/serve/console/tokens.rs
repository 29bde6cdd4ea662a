//! The API tokens page: each account's tokens (an administrator's: those of the accounts
//! it manages), made once and shown once, and revoked.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, State};

use super::page::{Chrome, Page, PageResult, Posted, render, see, url_encode};
use crate::auth::users;
use crate::clock::{now_ms, zoned_time};
use crate::serve::Server;
use crate::serve::error::ApiError;

type Shared = State<Arc<Server>>;

pub struct TokenLine {
    pub id: String,
    pub user: String,
    pub label: String,
    pub created: String,
    pub expires: String,
    pub last_used: String,
    pub state: String,
}

#[derive(Template)]
#[template(path = "tokens.html")]
struct TokensPage {
    chrome: Chrome,
    tokens: Vec<TokenLine>,
    shown: String,
    error: String,
    /// This form's one-time key: sent twice (a reload of the answer), it creates nothing.
    once: String,
}

async fn tokens_page(s: &Server, p: &Page, shown: String, error: String) -> PageResult {
    let tz = s.env().cfg.serve.timezone;
    let now = now_ms();
    let user = (!p.who.is_admin()).then(|| p.who.name.clone());
    let when = |t: Option<i64>| t.map(|t| zoned_time(t, tz)).unwrap_or_else(|| "-".into());
    let mine = crate::serve::api_admin::managed_names(s, &p.who).await?;
    let tokens = s
        .store
        .tokens(user.as_deref())
        .await?
        .into_iter()
        .filter(|t| mine.contains(&t.user_name))
        .map(|t| TokenLine {
            state: if t.revoked_at.is_some() {
                "revoked"
            } else if t.expires_at.is_some_and(|e| e <= now) {
                "expired"
            } else {
                "valid"
            }
            .into(),
            created: zoned_time(t.created_at, tz),
            expires: when(t.expires_at),
            last_used: when(t.last_used_at),
            id: t.id,
            user: t.user_name,
            label: t.label,
        })
        .collect();
    Ok(render(&TokensPage {
        chrome: p.chrome(),
        tokens,
        shown,
        error,
        once: uuid::Uuid::new_v4().simple().to_string(),
    }))
}

pub async fn tokens(State(s): Shared, p: Page) -> PageResult {
    tokens_page(&s, &p, String::new(), String::new()).await
}

pub async fn create_token(State(s): Shared, f: Posted) -> PageResult {
    let p = &f.page;
    let user = Some(f.text("user"))
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| p.who.name.clone());
    if user != p.who.name {
        p.caller().managed(&s, &user).await?;
    }
    // The same form sent again (the browser's "resubmit" on a reload) creates nothing.
    let once = f.text("once");
    let now = now_ms();
    if !once.is_empty()
        && (once.len() > 64
            || !s
                .store
                .claim_once(&format!("token-form:{once}"), now + 86_400_000, now)
                .await?)
    {
        return tokens_page(
            &s,
            p,
            String::new(),
            "This form was already sent (a reload?): the token it made is in the list, and its secret was shown once. Fill the form again for another.".into(),
        )
        .await;
    }
    let expires = f.text("expires");
    let valid_for = if expires.is_empty() {
        std::time::Duration::from_secs(90 * 86400)
    } else {
        match ordo_jobs::units::parse_duration(&expires) {
            Ok(d) if !d.is_zero() && d <= std::time::Duration::from_secs(365 * 86400) => d,
            _ => {
                return tokens_page(
                    &s,
                    p,
                    String::new(),
                    format!("Expires: `{expires}` is not a duration from 1s to 365d."),
                )
                .await;
            }
        }
    };
    match users::create_token(&s.store, &user, &f.text("label"), Some(valid_for)).await {
        Ok((row, shown)) => {
            p.caller()
                .audit(
                    &s,
                    "token.create",
                    &format!("{user} {}", row.id),
                    &row.label,
                )
                .await;
            tokens_page(&s, p, shown, String::new()).await
        }
        Err(e) => tokens_page(&s, p, String::new(), e.to_string()).await,
    }
}

pub async fn revoke_token(State(s): Shared, Path(id): Path<String>, f: Posted) -> PageResult {
    let p = &f.page;
    let t = s
        .store
        .token(&id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no token `{id}`")))?;
    if t.user_name != p.who.name {
        p.caller().managed(&s, &t.user_name).await?;
    }
    s.store.revoke_token(&id, now_ms()).await?;
    p.caller()
        .audit(&s, "token.revoke", &format!("{} {id}", t.user_name), "")
        .await;
    Ok(see(&format!("/admin/tokens#{}", url_encode(&id))))
}
