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
use crate::clock::now_ms;
use crate::pki::cms::{KeyKind, gmt};
use crate::pki::keys;
use crate::serve::Server;
use crate::serve::api_keys::users;

type Shared = State<Arc<Server>>;

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
}

async fn page(s: &Server, p: &Page, error: String) -> PageResult {
    p.caller().require_admin()?;
    let env = s.env();
    let now = now_ms();
    let (mut personal, mut backup) = (Vec::new(), Vec::new());
    for k in s.store.keys().await? {
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
    });
    if !error.is_empty() {
        *r.status_mut() = axum::http::StatusCode::BAD_REQUEST;
    }
    Ok(r)
}

pub async fn list(State(s): Shared, p: Page) -> PageResult {
    page(&s, &p, String::new()).await
}

pub async fn add(State(s): Shared, f: Posted) -> PageResult {
    f.page.caller().require_admin()?;
    let (name, cert) = (
        f.text("name"),
        f.get("cert").unwrap_or_default().to_string(),
    );
    let who = f.page.who.label();
    match keys::add(
        &s.store,
        &name,
        cert.as_bytes(),
        f.get("backup") == Some("on"),
        &who,
        now_ms(),
    )
    .await
    {
        Ok(k) => {
            f.page.caller().audit(&s, "key add", &k.name, &k.cn).await;
            Ok(see("/admin/keys"))
        }
        Err(e) => page(&s, &f.page, e).await,
    }
}

pub async fn generate(State(s): Shared, f: Posted) -> PageResult {
    f.page.caller().require_admin()?;
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
    let (name, cn, who) = (f.text("name"), f.text("cn"), f.page.who.label());
    let backup = f.get("backup") == Some("on");
    let spec = keys::GenerateSpec {
        name,
        cn,
        days,
        kind,
        backup,
        passphrase: pass,
        pkcs12,
    };
    let made = keys::generate_off_thread(spec, who).await;
    let (row, file) = match made {
        Ok(x) => x,
        Err(e) => return page(&s, &f.page, e).await,
    };
    if let Err(e) = s.store.insert_key(&row).await {
        return page(&s, &f.page, e.to_string()).await;
    }
    f.page
        .caller()
        .audit(&s, "key generate", &row.name, &row.cn)
        .await;
    // The private key goes to the browser, once: it is not kept.
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
    f.page.caller().require_admin()?;
    let rename = Some(f.text("rename")).filter(|r| !r.is_empty());
    let backup = f.get("backup").map(|b| b == "true");
    match keys::edit(&s.store, &users(&s.env()), &name, rename.as_deref(), backup).await {
        Ok(k) => {
            let detail = format!("name={} backup={}", k.name, k.backup);
            f.page.caller().audit(&s, "key edit", &name, &detail).await;
            Ok(see("/admin/keys"))
        }
        Err(e) => page(&s, &f.page, e).await,
    }
}

pub async fn delete(State(s): Shared, Path(name): Path<String>, f: Posted) -> PageResult {
    f.page.caller().require_admin()?;
    match keys::delete(
        &s.store,
        &users(&s.env()),
        &name,
        f.get("force") == Some("on"),
    )
    .await
    {
        Ok(()) => {
            f.page.caller().audit(&s, "key delete", &name, "").await;
            Ok(see("/admin/keys"))
        }
        Err(e) => page(&s, &f.page, e).await,
    }
}
