//! Reading the `serve:` section of `ordo.yaml`: schedules' defaults, the API's address,
//! TLS, accepted host names and the login settings.

use std::path::Path;
use std::time::Duration;

use ordo_inventory::yaml::{self, Diagnostics};
use ordo_jobs::units::parse_duration;

use super::settings::*;

pub(super) fn read_serve(root: &Path, n: &yaml::Node, d: &mut Diagnostics) -> ServeConfig {
    let s = n.fields(
        "serve",
        &[
            "timezone",
            "lease_ttl",
            "misfire_grace",
            "dead_after",
            "mail_retry",
            "ack_check",
            "retention",
            "listen",
            "tls",
            "hosts",
            "auth",
            "alerts",
        ],
        d,
    );
    let mut out = ServeConfig::default();
    let dur = |key: &str, d: &mut Diagnostics| {
        let v = s.get(key)?;
        let t = v.str(&format!("serve: {key}"), d)?;
        parse_duration(&t)
            .map_err(|e| d.error(v.pos, format!("serve: {key}: {e}")))
            .ok()
    };
    if let Some(t) = dur("lease_ttl", d) {
        out.lease_ttl = t.max(Duration::from_secs(1));
    }
    if let Some(t) = dur("misfire_grace", d) {
        out.misfire_grace = t;
    }
    if let Some(t) = dur("ack_check", d) {
        out.ack_check = t.max(Duration::from_secs(1));
    }
    if let Some(t) = dur("mail_retry", d) {
        out.mail_retry = t.max(Duration::from_secs(1));
    }
    if let Some(t) = dur("dead_after", d) {
        out.dead_after = t.max(Duration::from_secs(2));
    }
    if let Some(v) = s.get("timezone")
        && let Some(z) = v.str("serve: timezone", d)
    {
        match z.parse() {
            Ok(tz) => out.timezone = tz,
            Err(_) => d.error(
                v.pos,
                format!("serve: unknown time zone `{z}` (IANA names, e.g. Europe/Paris or UTC)"),
            ),
        }
    }
    if let Some(r) = s.get("retention") {
        let f = r.fields("serve: retention", &["max_age", "max_count"], d);
        if let Some(v) = f.get("max_age")
            && let Some(t) = v.str("serve: retention: max_age", d)
        {
            match parse_duration(&t) {
                Ok(t) => out.retention.max_age = Some(t),
                Err(e) => d.error(v.pos, format!("serve: retention: max_age: {e}")),
            }
        }
        if let Some(c) = f
            .get("max_count")
            .and_then(|v| v.u64("serve: retention: max_count", d))
        {
            out.retention.max_count = Some(c.max(1));
        }
    }
    out.listen = s.get("listen").and_then(|v| v.str("serve: listen", d));
    if let Some(t) = s.get("tls") {
        let f = t.fields("serve: tls", &["cert", "key"], d);
        let file = |k: &str, d: &mut Diagnostics| {
            f.require(k, "serve: tls", d)
                .and_then(|v| v.str(&format!("serve: tls: {k}"), d))
                .map(|p| resolve(root, &p))
        };
        if let (Some(cert), Some(key)) = (file("cert", d), file("key", d)) {
            out.tls = Some(TlsFiles { cert, key });
        }
    }
    if let Some(h) = s.get("hosts") {
        out.hosts = h
            .str_list("serve: hosts", d)
            .into_iter()
            .map(|(h, _)| h.to_ascii_lowercase())
            .collect();
    }
    if let Some(a) = s.get("auth") {
        out.auth = read_auth(root, a, d);
    }
    if let Some(a) = s.get("alerts") {
        out.alerts = super::read_alerts::read_alerts(a, d);
    }
    out
}

fn read_auth(root: &Path, n: &yaml::Node, d: &mut Diagnostics) -> AuthSettings {
    let f = n.fields(
        "serve: auth",
        &[
            "session_idle",
            "session_max",
            "login_backoff",
            "sso_window",
            "tenants",
            "trusted_proxies",
        ],
        d,
    );
    let mut out = AuthSettings::default();
    let dur = |key: &str, d: &mut Diagnostics| {
        let v = f.get(key)?;
        let t = v.str(&format!("serve: auth: {key}"), d)?;
        parse_duration(&t)
            .map_err(|e| d.error(v.pos, format!("serve: auth: {key}: {e}")))
            .ok()
            .map(|t| t.max(Duration::from_secs(1)))
    };
    if let Some(t) = dur("session_idle", d) {
        out.session_idle = t;
    }
    if let Some(t) = dur("session_max", d) {
        out.session_max = t;
    }
    if let Some(t) = dur("login_backoff", d) {
        out.login_backoff = t;
    }
    if let Some(t) = dur("sso_window", d) {
        out.sso_window = t;
    }
    if let Some(t) = f.get("trusted_proxies") {
        for (text, pos) in t.str_list("serve: auth: trusted_proxies", d) {
            let net = text
                .parse::<ipnet::IpNet>()
                .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from));
            match net {
                Ok(n) => out.trusted_proxies.push(n),
                Err(_) => d.error(
                    pos,
                    format!(
                        "serve: auth: trusted_proxies: `{text}` is not an address or a network (10.0.8.0/24)"
                    ),
                ),
            }
        }
    }
    if let Some(t) = f.get("tenants") {
        for (name, v) in t.entries("serve: auth: tenants", d) {
            let what = format!("serve: auth: tenants: {name}");
            let k = v.fields(&what, &["key_file", "key_env"], d);
            let key_file = k
                .get("key_file")
                .and_then(|x| x.str(&format!("{what}: key_file"), d))
                .map(|p| resolve(root, &p));
            let key_env = k
                .get("key_env")
                .and_then(|x| x.str(&format!("{what}: key_env"), d));
            if key_file.is_none() && key_env.is_none() {
                d.error(
                    v.pos,
                    format!("{what}: give key_file or key_env (the shared key)"),
                );
            }
            out.tenants.insert(name, TenantKey { key_file, key_env });
        }
    }
    out
}
