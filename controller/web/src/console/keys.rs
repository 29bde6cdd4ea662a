//! The encryption keys page (administrators), as the source's two tables: personal keys
//! and backup keys with their name, certificate CN and expiry (GMT), each renamed, made
//! backup or personal, or deleted; a certificate imported (its public key only), or a key
//! pair made for its owner, whose private key the browser downloads once.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;

use super::page::{Chrome, Page, PageResult, Posted, render, see};
use crate::Web;
use crate::actions::{self, ActionError};
use crate::api_keys::{cx, users};
use crate::clock::now_ms;
use crate::pki::cms::{KeyKind, gmt};
use crate::pki::keys;

type Shared = State<Arc<Web>>;

pub struct KeyLine {
    pub name: String,
    pub cn: String,
    pub issuer: String,
    pub kind: String,
    pub expires: String,
    /// expired, soon, or empty.
    pub state: String,
    pub used_by: String,
}

pub struct Section {
    pub title: &'static str,
    pub id: &'static str,
    pub backup: bool,
    pub keys: Vec<KeyLine>,
}

#[derive(Template)]
#[template(path = "keys.html")]
struct KeysPage {
    chrome: Chrome,
    sections: Vec<Section>,
    error: String,
    /// Backup keys are changed by top administrators only.
    top: bool,
}

async fn page(s: &Web, p: &Page, error: String) -> PageResult {
    let env = s.env();
    let now = now_ms();
    let (mut personal, mut backup) = (Vec::new(), Vec::new());
    for k in actions::keys::list(&cx(s, &env), &p.actor()).await? {
        let line = KeyLine {
            state: if k.not_after <= now {
                "expired".into()
            } else if k.not_after - now < keys::EXPIRY_WARNING_DAYS * 86_400_000 {
                "soon".into()
            } else {
                String::new()
            },
            name: k.name.clone(),
            cn: k.cn.clone(),
            issuer: k.issuer.clone(),
            kind: k.key_type.clone(),
            expires: gmt(k.not_after),
            used_by: keys::used_by(&users(&env), &k.name).join(", "),
        };
        if k.backup {
            backup.push(line);
        } else {
            personal.push(line);
        }
    }
    let sections = vec![
        Section {
            title: "Personal keys",
            id: "personal",
            backup: false,
            keys: personal,
        },
        Section {
            title: "Backup keys",
            id: "backup",
            backup: true,
            keys: backup,
        },
    ];
    let mut r = render(&KeysPage {
        chrome: p.chrome(),
        sections,
        error: error.clone(),
        top: p.who.is_top(),
    });
    if !error.is_empty() {
        *r.status_mut() = axum::http::StatusCode::BAD_REQUEST;
    }
    Ok(r)
}

pub async fn list(State(s): Shared, p: Page) -> PageResult {
    page(&s, &p, String::new()).await
}

/// An action's refusal of the form's input comes back on the page; anything else is an
/// error page.
async fn again(s: &Web, p: &Page, e: ActionError) -> PageResult {
    match e {
        ActionError::Invalid { .. } | ActionError::Conflict(_) => page(s, p, e.to_string()).await,
        e => Err(e.into()),
    }
}

pub async fn add(State(s): Shared, f: Posted) -> PageResult {
    let (name, cert) = (
        f.text("name"),
        f.get("cert").unwrap_or_default().to_string(),
    );
    let env = s.env();
    let backup = f.get("backup") == Some("on");
    match actions::keys::add(
        &cx(&s, &env),
        &f.page.actor(),
        &name,
        cert.as_bytes(),
        backup,
    )
    .await
    {
        Ok(_) => Ok(see("/admin/keys")),
        Err(e) => again(&s, &f.page, e).await,
    }
}

pub async fn generate(State(s): Shared, f: Posted) -> PageResult {
    let pass = f.get("passphrase").unwrap_or_default().to_string();
    if f.get("again").unwrap_or_default() != pass {
        return page(&s, &f.page, "the two passphrases differ".into()).await;
    }
    let kind = if f.text("type") == "ec" {
        KeyKind::EcP256
    } else {
        KeyKind::Rsa3072
    };
    let pkcs12 = f.text("format") != "pem";
    let days: u32 = match f.text("days").parse() {
        Ok(d) => d,
        Err(_) => {
            return page(
                &s,
                &f.page,
                format!("days: `{}` is not a number of days", f.text("days")),
            )
            .await;
        }
    };
    let spec = keys::GenerateSpec {
        name: f.text("name"),
        cn: f.text("cn"),
        days,
        kind,
        backup: f.get("backup") == Some("on"),
        passphrase: pass,
        pkcs12,
    };
    let env = s.env();
    // The private key goes to the browser in this answer, once: it is not kept.
    let made = actions::keys::generate(&cx(&s, &env), &f.page.actor(), spec, |_, _| Ok(())).await;
    let (row, file) = match made {
        Ok(x) => x,
        Err(e) => return again(&s, &f.page, e).await,
    };
    let ext = if pkcs12 { "p12" } else { "pem" };
    let mut r = file.into_response();
    let h = r.headers_mut();
    let ct = if pkcs12 {
        "application/x-pkcs12"
    } else {
        "application/x-pem-file"
    };
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{}.{ext}\"", row.name)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

pub async fn edit(State(s): Shared, Path(name): Path<String>, f: Posted) -> PageResult {
    let rename = Some(f.text("rename")).filter(|r| !r.is_empty());
    let backup = f.get("backup").map(|b| b == "true");
    let env = s.env();
    match actions::keys::edit(
        &cx(&s, &env),
        &f.page.actor(),
        &name,
        rename.as_deref(),
        backup,
    )
    .await
    {
        Ok(_) => Ok(see("/admin/keys")),
        Err(e) => again(&s, &f.page, e).await,
    }
}

pub async fn delete(State(s): Shared, Path(name): Path<String>, f: Posted) -> PageResult {
    let env = s.env();
    let force = f.get("force") == Some("on");
    match actions::keys::delete(&cx(&s, &env), &f.page.actor(), &name, force).await {
        Ok(()) => Ok(see("/admin/keys")),
        Err(e) => again(&s, &f.page, e).await,
    }
}
