//! The API tokens page: each account's tokens (an administrator's: those of the accounts
//! it manages), made once and shown once, and revoked.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, State};

use super::page::{Chrome, Page, PageResult, Posted, render, see, url_encode};
use crate::Web;
use crate::actions::ActionError;
use crate::actions::tokens::{self, NewToken};
use crate::clock::{now_ms, zoned_time};

type Shared = State<Arc<Web>>;

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

async fn tokens_page(s: &Web, p: &Page, shown: String, error: String) -> PageResult {
    let tz = s.env().cfg.serve.timezone;
    let now = now_ms();
    let when = |t: Option<i64>| t.map(|t| zoned_time(t, tz)).unwrap_or_else(|| "-".into());
    let tokens = tokens::list(&s.store, &p.actor(), None)
        .await?
        .into_iter()
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
    let user = Some(f.text("user")).filter(|u| !u.is_empty());
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
    let bad_expiry = || format!("Expires: `{expires}` is not a duration from 1s to 365d.");
    let valid_for = if expires.is_empty() {
        None
    } else {
        match ordo_jobs::units::parse_duration(&expires) {
            Ok(d) => Some(d),
            Err(_) => return tokens_page(&s, p, String::new(), bad_expiry()).await,
        }
    };
    let t = NewToken {
        user,
        label: f.text("label"),
        valid_for,
    };
    match tokens::create(&s.store, &p.actor(), t).await {
        Ok((_, shown)) => tokens_page(&s, p, shown, String::new()).await,
        Err(ActionError::Invalid { field, .. }) if field == "expires" => {
            tokens_page(&s, p, String::new(), bad_expiry()).await
        }
        Err(e @ (ActionError::Invalid { .. } | ActionError::Auth(_))) => {
            tokens_page(&s, p, String::new(), e.to_string()).await
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn revoke_token(State(s): Shared, Path(id): Path<String>, f: Posted) -> PageResult {
    tokens::revoke(&s.store, &f.page.actor(), &id).await?;
    Ok(see(&format!("/admin/tokens#{}", url_encode(&id))))
}
