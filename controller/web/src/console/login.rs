//! The console's login pages: the password form, the code form ("send a new code"),
//! logout. They drive the same steps as the API's login.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Form, Query, State};
use axum::response::Response;
use serde::Deserialize;

use super::page::{Chrome, Posted, render, see};
use crate::Web;
use crate::auth::AuthError;
use crate::auth::login::{self, NewSession, Started};
use crate::clock::now_ms;
use crate::guard::{Client, set_session_cookie};

type Shared = State<Arc<Web>>;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    chrome: Chrome,
    error: String,
    user: String,
    next: String,
}

#[derive(Template)]
#[template(path = "code.html")]
struct CodePage {
    chrome: Chrome,
    error: String,
    ticket: String,
    sent_to: String,
    next: String,
}

/// Only a path of this site: never another host (`//evil`, `https://...`).
fn safe_next(next: &str) -> String {
    // A path of this site made only of plain URL characters: no `//host`, no tab or
    // backslash a browser would read its own way.
    let plain = next
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.~/?&=%+".contains(&b));
    let ok = plain
        && next.starts_with('/')
        && !next.starts_with("//")
        && next.len() <= 500
        && !next.starts_with("/login");
    if ok { next.to_string() } else { "/".into() }
}

fn message(e: &AuthError) -> String {
    match e {
        AuthError::Wait { seconds } => {
            format!("Too many failed tries: wait {seconds} seconds before the next one.")
        }
        AuthError::Mail(_) => {
            "The code could not be sent (the mail relay did not take it): try again later.".into()
        }
        other => {
            let t = other.to_string();
            let mut c = t.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str() + ".")
                .unwrap_or_default()
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn next_is_a_plain_path_of_this_site() {
        for ok in ["/", "/jobs/vip/collect", "/executions?job=a%2Fb&page=2"] {
            assert_eq!(super::safe_next(ok), ok);
        }
        for bad in [
            "//evil.example",
            "/\t/evil.example",
            "/\\evil",
            "https://evil",
            "/login?next=/",
            "/a\nb",
        ] {
            assert_eq!(super::safe_next(bad), "/", "{bad:?}");
        }
    }
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

pub async fn form(Query(q): Query<NextQuery>) -> Response {
    render(&LoginPage {
        chrome: Chrome::default(),
        error: String::new(),
        user: String::new(),
        next: safe_next(q.next.as_deref().unwrap_or("/")),
    })
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    user: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

fn logged_in(s: &Web, n: NewSession, next: &str) -> Response {
    let max_age = s.env().cfg.serve.auth.session_max.as_secs();
    let mut r = see(&safe_next(next));
    set_session_cookie(&mut r, &n.cookie, max_age);
    r
}

pub async fn submit(State(s): Shared, Client(addr): Client, Form(f): Form<LoginForm>) -> Response {
    let env = s.env();
    let user = f.user.trim().to_string();
    match login::start(&s.store, &env.cfg, &user, &f.password, &addr, now_ms()).await {
        Ok(Started::Code { ticket, sent_to }) => render(&CodePage {
            chrome: Chrome::default(),
            error: String::new(),
            ticket,
            sent_to,
            next: safe_next(&f.next),
        }),
        Ok(Started::Session(n)) => logged_in(&s, n, &f.next),
        Err(e) => render(&LoginPage {
            chrome: Chrome::default(),
            error: message(&e),
            user,
            next: safe_next(&f.next),
        }),
    }
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    ticket: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    next: String,
}

pub async fn code(State(s): Shared, Client(addr): Client, Form(f): Form<CodeForm>) -> Response {
    let env = s.env();
    match login::finish(
        &s.store,
        &env.cfg,
        &f.ticket,
        f.code.trim(),
        &addr,
        now_ms(),
    )
    .await
    {
        Ok(n) => logged_in(&s, n, &f.next),
        Err(e) => render(&CodePage {
            chrome: Chrome::default(),
            error: message(&e),
            ticket: f.ticket,
            sent_to: "your address".into(),
            next: safe_next(&f.next),
        }),
    }
}

pub async fn resend(State(s): Shared, Client(addr): Client, Form(f): Form<CodeForm>) -> Response {
    let env = s.env();
    let (error, sent_to) = match login::resend(&s.store, &env.cfg, &f.ticket, &addr, now_ms()).await
    {
        Ok(to) => (String::new(), to),
        Err(e) => (message(&e), "your address".into()),
    };
    let mut chrome = Chrome::default();
    if error.is_empty() {
        chrome.flash = "A new code was sent; the previous one no longer works.".into();
    }
    render(&CodePage {
        chrome,
        error,
        ticket: f.ticket,
        sent_to,
        next: safe_next(&f.next),
    })
}

pub async fn logout(State(s): Shared, p: Posted) -> Response {
    if let crate::auth::Via::Session { id_hash, .. } = &p.page.who.via {
        let _ = s
            .store
            .end_sessions(id_hash, &p.page.who.name, now_ms())
            .await;
        crate::auth::audit(
            &s.store,
            &p.page.who.name,
            &p.page.address,
            "logout",
            &p.page.who.name,
            "",
        )
        .await;
    }
    let mut r = see("/login");
    set_session_cookie(&mut r, "", 0);
    r
}
