//! `/api/v1/keys`: encryption keys, for administrators: the list (personal and backup,
//! expiry in GMT, the jobs using each), import of a certificate, a key pair made for its
//! owner (the private key is in this one answer, never kept), rename, backup or not,
//! delete. The rules (backup keys for top administrators) are the actions'.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};

use super::Web;
use super::error::{ApiError, ApiResult};
use super::extract::Body;
use super::guard::Caller;
use crate::actions::{self, keys::KeysCx};
use crate::clock::now_ms;
use crate::pki::cms::{KeyKind, gmt};
use crate::pki::keys;
use crate::store::KeyRow;

type Shared = State<Arc<Web>>;

/// What names keys in the loaded project.
pub fn users(env: &crate::project::Env) -> keys::Users<'_> {
    keys::Users {
        jobs: &env.jobs,
        profiles: &env.profiles,
    }
}

pub fn key_json(k: &KeyRow, jobs: &keys::Users<'_>, now: i64) -> Value {
    json!({
        "name": k.name, "backup": k.backup, "cn": k.cn, "issuer": k.issuer, "serial": k.serial,
        "type": k.key_type, "expires_at": k.not_after, "expires": gmt(k.not_after),
        "expired": k.not_after <= now,
        "expires_soon": k.not_after > now && k.not_after - now < keys::EXPIRY_WARNING_DAYS * 86_400_000,
        "generated": k.generated, "added_by": k.added_by, "added_at": k.added_at,
        "used_by": if k.backup { json!("every encryption") } else { json!(keys::used_by(jobs, &k.name)) },
    })
}

/// What key actions need, from the loaded project.
pub fn cx<'a>(s: &'a Web, env: &'a crate::project::Env) -> KeysCx<'a> {
    KeysCx {
        store: &s.store,
        users: users(env),
        mail: &env.cfg.mail,
    }
}

pub async fn list(State(s): Shared, c: Caller) -> ApiResult<Json<Value>> {
    let env = s.env();
    let now = now_ms();
    let list: Vec<Value> = actions::keys::list(&cx(&s, &env), &c)
        .await?
        .iter()
        .map(|k| key_json(k, &users(&env), now))
        .collect();
    Ok(Json(json!({ "keys": list })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddBody {
    name: String,
    /// The certificate, PEM.
    cert: String,
    #[serde(default)]
    backup: bool,
}

pub async fn add(State(s): Shared, c: Caller, Body(b): Body<AddBody>) -> ApiResult<Json<Value>> {
    let env = s.env();
    let k = actions::keys::add(&cx(&s, &env), &c, &b.name, b.cert.as_bytes(), b.backup).await?;
    Ok(Json(key_json(&k, &users(&env), now_ms())))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerateBody {
    name: String,
    cn: String,
    #[serde(default = "two_years")]
    days: u32,
    /// rsa (3072) or ec (P-256).
    #[serde(default = "rsa", rename = "type")]
    kind: String,
    #[serde(default)]
    backup: bool,
    passphrase: String,
    /// p12 (default) or pem.
    #[serde(default = "p12")]
    format: String,
}

fn two_years() -> u32 {
    730
}
fn rsa() -> String {
    "rsa".into()
}
fn p12() -> String {
    "p12".into()
}

/// A key pair for its owner: the answer carries the private key (base64), once.
pub async fn generate(
    State(s): Shared,
    c: Caller,
    Body(b): Body<GenerateBody>,
) -> ApiResult<Json<Value>> {
    let kind = match b.kind.as_str() {
        "rsa" => KeyKind::Rsa3072,
        "ec" => KeyKind::EcP256,
        other => return Err(ApiError::field("type", format!("`{other}`: rsa or ec"))),
    };
    let pkcs12 = match b.format.as_str() {
        "p12" => true,
        "pem" => false,
        other => return Err(ApiError::field("format", format!("`{other}`: p12 or pem"))),
    };
    let spec = keys::GenerateSpec {
        name: b.name,
        cn: b.cn,
        days: b.days,
        kind,
        backup: b.backup,
        passphrase: b.passphrase,
        pkcs12,
    };
    let env = s.env();
    // The private key is in this answer: nothing to deliver before the record.
    let (row, file) = actions::keys::generate(&cx(&s, &env), &c, spec, |_, _| Ok(())).await?;
    let mut v = key_json(&row, &users(&env), now_ms());
    v["private_key"] = json!(base64::engine::general_purpose::STANDARD.encode(&file));
    v["private_key_format"] = json!(if pkcs12 { "p12" } else { "pem" });
    Ok(Json(v))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EditBody {
    name: Option<String>,
    backup: Option<bool>,
}

pub async fn edit(
    State(s): Shared,
    c: Caller,
    Path(name): Path<String>,
    Body(b): Body<EditBody>,
) -> ApiResult<Json<Value>> {
    let env = s.env();
    let k = actions::keys::edit(&cx(&s, &env), &c, &name, b.name.as_deref(), b.backup).await?;
    Ok(Json(key_json(&k, &users(&env), now_ms())))
}

#[derive(Deserialize)]
pub struct DeleteQuery {
    force: Option<String>,
}

pub async fn delete(
    State(s): Shared,
    c: Caller,
    Path(name): Path<String>,
    Query(q): Query<DeleteQuery>,
) -> ApiResult<Json<Value>> {
    let force = q.force.as_deref() == Some("true");
    let env = s.env();
    actions::keys::delete(&cx(&s, &env), &c, &name, force).await?;
    Ok(Json(json!({ "deleted": name })))
}
