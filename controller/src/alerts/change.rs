//! Changing an account's alert configuration: one JSON shape for the API (`PUT` replaces,
//! `PATCH` changes what it names), the console and the CLI; every wrong field is named,
//! and nothing is changed unless everything is right.

use serde_json::{Map, Value};

use super::AlertConfig;
use crate::project::settings::{AlertPolicy, FieldMode, mail_domain_allowed};

/// How many addresses one operation (`mails`, `mails_to_add`, `mails_to_delete`) takes.
pub const MAX_PER_OPERATION: usize = 3;
/// How long a field's text may be (addresses joined with `, `, the webhook's URL).
pub const MAX_FIELD: usize = 250;
/// How many addresses an account keeps at most.
pub const MAX_MAILS: usize = 10;
pub use super::{FieldErrors, MAX_DELAY, Mode};

const KEYS: &[&str] = &[
    "active",
    "send_admin",
    "secondary_alerts",
    "send_test",
    "mails",
    "mails_to_add",
    "mails_to_delete",
    "webhook",
    "projects",
];

/// `current` changed by `body`. `domains` (`serve: alerts: mail_domains`) bounds the
/// addresses added. `projects` are those the caller may set rules for;
/// `policy` binds callers that are not administrators: a field it hides or locks may not
/// be named at all (so an answer never tells what a hidden field holds), and keeps its
/// value, also in a `PUT`, which does not require it.
pub fn apply(
    current: &AlertConfig,
    body: &Value,
    mode: Mode,
    projects: &[String],
    policy: Option<&AlertPolicy>,
    domains: &[String],
) -> Result<AlertConfig, FieldErrors> {
    let mut errs: FieldErrors = Vec::new();
    let Some(obj) = body.as_object() else {
        return Err(vec![("body".into(), "a JSON object".into())]);
    };
    for k in obj.keys().filter(|k| !KEYS.contains(&k.as_str())) {
        errs.push((
            k.clone(),
            format!("unknown field (one of: {})", KEYS.join(", ")),
        ));
    }
    let open = |field: &str| policy.is_none_or(|p| p.mode(field) == FieldMode::Editable);
    for k in obj.keys().filter(|k| KEYS.contains(&k.as_str())) {
        if !open(field_of(k)) {
            errs.push((
                k.clone(),
                "set by your administrator: it cannot be changed here".into(),
            ));
        }
    }
    if !errs.is_empty() {
        return Err(errs);
    }
    let put = |field: &str| mode == Mode::Put && open(field);
    let mut next = current.clone();
    let s = &mut next.settings;
    for (key, slot) in [
        ("active", &mut s.active),
        ("send_admin", &mut s.send_admin),
        ("secondary_alerts", &mut s.secondary_alerts),
        ("send_test", &mut s.send_test),
    ] {
        match obj.get(key) {
            Some(Value::Bool(b)) => *slot = *b,
            Some(_) => errs.push((key.into(), "a boolean (true or false)".into())),
            None if put(key) => errs.push((key.into(), "required".into())),
            None => {}
        }
    }
    let mails_mode = if put("mails") { Mode::Put } else { Mode::Patch };
    mails(obj, mails_mode, &mut s.mails, &mut errs);
    let field = if obj.contains_key("mails") {
        "mails"
    } else {
        "mails_to_add"
    };
    for a in s
        .mails
        .iter()
        .filter(|a| !current.settings.mails.contains(a))
    {
        if !mail_domain_allowed(domains, a) {
            errs.push((
                field.into(),
                format!(
                    "`{a}`: alerts go only to addresses of {}",
                    domains.join(", ")
                ),
            ));
        }
    }
    if let Some(w) = obj.get("webhook") {
        match w.as_str() {
            Some(url) => match webhook(url) {
                Ok(()) => s.webhook = url.to_string(),
                Err(e) => errs.push(("webhook".into(), e)),
            },
            None => errs.push(("webhook".into(), "a URL (text), or \"\" for none".into())),
        }
    } else if put("webhook") {
        s.webhook.clear();
    }
    match obj.get("projects") {
        Some(p) => super::rule_change::rules(p, mode, projects, &mut next.rules, &mut errs),
        None if put("projects") => errs.push(("projects".into(), "required".into())),
        None => {}
    }
    if errs.is_empty() { Ok(next) } else { Err(errs) }
}

/// The policy's field a body key changes.
fn field_of(key: &str) -> &str {
    match key {
        "mails_to_add" | "mails_to_delete" => "mails",
        other => other,
    }
}

/// Addresses from a list or a text separated by `,` or `;`: each checked, at most
/// [`MAX_PER_OPERATION`], [`MAX_FIELD`] characters in all.
fn addresses(field: &str, v: &Value, errs: &mut FieldErrors) -> Option<Vec<String>> {
    let list: Vec<String> = match v {
        Value::String(s) => s
            .split([',', ';'])
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_string)
            .collect(),
        Value::Array(items) if items.iter().all(Value::is_string) => items
            .iter()
            .filter_map(|i| i.as_str())
            .map(|a| a.trim().to_string())
            .collect(),
        _ => {
            errs.push((field.into(), "a list of mail addresses".into()));
            return None;
        }
    };
    let before = errs.len();
    if list.len() > MAX_PER_OPERATION {
        errs.push((
            field.into(),
            format!(
                "at most {MAX_PER_OPERATION} addresses at a time ({} given)",
                list.len()
            ),
        ));
    }
    if list.join(", ").chars().count() > MAX_FIELD {
        errs.push((field.into(), format!("at most {MAX_FIELD} characters")));
    }
    for a in &list {
        if let Err(e) = check_address(a) {
            errs.push((field.into(), format!("`{a}`: {e}")));
        }
    }
    (errs.len() == before).then_some(list)
}

/// A mail address as the mail relay will take it.
pub fn check_address(a: &str) -> Result<(), String> {
    if a.len() > 254 || a.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("not a mail address".into());
    }
    a.parse::<lettre::Address>()
        .map(|_| ())
        .map_err(|e| format!("not a mail address ({e})"))
}

/// `mails` replaces, then `mails_to_delete` removes, then `mails_to_add` adds.
fn mails(obj: &Map<String, Value>, mode: Mode, list: &mut Vec<String>, errs: &mut FieldErrors) {
    if mode == Mode::Put {
        for k in ["mails_to_add", "mails_to_delete"] {
            if obj.contains_key(k) {
                errs.push((
                    k.into(),
                    "goes with PATCH; PUT gives the whole list in `mails`".into(),
                ));
            }
        }
        if !obj.contains_key("mails") {
            errs.push((
                "mails".into(),
                "required (an empty list: the account's own address)".into(),
            ));
        }
    }
    if let Some(v) = obj.get("mails")
        && let Some(new) = addresses("mails", v, errs)
    {
        *list = new;
    }
    if let Some(v) = obj.get("mails_to_delete")
        && let Some(gone) = addresses("mails_to_delete", v, errs)
    {
        for g in &gone {
            if !list.iter().any(|m| m.eq_ignore_ascii_case(g)) {
                errs.push((
                    "mails_to_delete".into(),
                    format!("`{g}` is not a recipient"),
                ));
            }
        }
        list.retain(|m| !gone.iter().any(|g| g.eq_ignore_ascii_case(m)));
    }
    if let Some(v) = obj.get("mails_to_add")
        && let Some(add) = addresses("mails_to_add", v, errs)
    {
        for a in add {
            if !list.iter().any(|m| m.eq_ignore_ascii_case(&a)) {
                list.push(a);
            }
        }
        if list.len() > MAX_MAILS {
            errs.push((
                "mails_to_add".into(),
                format!("an account has at most {MAX_MAILS} addresses"),
            ));
        }
    }
}

fn webhook(url: &str) -> Result<(), String> {
    if url.is_empty() {
        return Ok(());
    }
    if url.chars().count() > MAX_FIELD {
        return Err(format!("at most {MAX_FIELD} characters"));
    }
    let u = reqwest::Url::parse(url).map_err(|e| format!("`{url}` is not a URL ({e})"))?;
    if !matches!(u.scheme(), "https" | "http") || u.host_str().is_none() {
        return Err(format!("`{url}`: an http or https URL with a host"));
    }
    Ok(())
}
