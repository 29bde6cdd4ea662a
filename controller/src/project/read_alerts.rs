//! Reading `serve: alerts:`: how often alerts are delivered, and what account holders may
//! see and change of their alert configuration (fields hidden, locked, pre-filled), for
//! everyone and per tenant.

use std::time::Duration;

use ordo_inventory::yaml::{self, Diagnostics};
use ordo_jobs::units::parse_duration;

use super::settings::{ALERT_FIELDS, AlertDefaults, AlertPolicy, AlertsSettings, FieldMode};

pub(super) fn read_alerts(n: &yaml::Node, d: &mut Diagnostics) -> AlertsSettings {
    let f = n.fields(
        "serve: alerts",
        &[
            "every",
            "fields",
            "defaults",
            "tenants",
            "webhook_hosts",
            "mail_domains",
        ],
        d,
    );
    let mut out = AlertsSettings::default();
    if let Some(v) = f.get("every")
        && let Some(t) = v.str("serve: alerts: every", d)
    {
        match parse_duration(&t) {
            Ok(t) => out.every = t.max(Duration::from_secs(1)),
            Err(e) => d.error(v.pos, format!("serve: alerts: every: {e}")),
        }
    }
    if let Some(h) = f.get("webhook_hosts") {
        out.webhook_hosts = h
            .str_list("serve: alerts: webhook_hosts", d)
            .into_iter()
            .map(|(h, _)| h.to_ascii_lowercase())
            .collect();
    }
    if let Some(m) = f.get("mail_domains") {
        for (domain, pos) in m.str_list("serve: alerts: mail_domains", d) {
            let domain = domain.trim_start_matches('@').to_ascii_lowercase();
            let plain = !domain.is_empty()
                && domain.split('.').all(|l| {
                    !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                });
            if plain {
                out.mail_domains.push(domain);
            } else {
                d.error(
                    pos,
                    format!(
                        "serve: alerts: mail_domains: `{domain}` is not a mail domain (example.com)"
                    ),
                );
            }
        }
    }
    out.policy = read_policy("serve: alerts", f.get("fields"), f.get("defaults"), d);
    if let Some(t) = f.get("tenants") {
        for (name, v) in t.entries("serve: alerts: tenants", d) {
            let what = format!("serve: alerts: tenants: {name}");
            let g = v.fields(&what, &["fields", "defaults"], d);
            let p = read_policy(&what, g.get("fields"), g.get("defaults"), d);
            out.tenants.insert(name, p);
        }
    }
    out
}

fn read_policy(
    what: &str,
    fields: Option<&yaml::Node>,
    defaults: Option<&yaml::Node>,
    d: &mut Diagnostics,
) -> AlertPolicy {
    let mut p = AlertPolicy::default();
    if let Some(n) = fields {
        for (name, v) in n.entries(&format!("{what}: fields"), d) {
            if !ALERT_FIELDS.contains(&name.as_str()) {
                d.error(
                    v.pos,
                    format!(
                        "{what}: fields: unknown field `{name}` (one of: {})",
                        ALERT_FIELDS.join(", ")
                    ),
                );
                continue;
            }
            let Some(mode) = v.str(&format!("{what}: fields: {name}"), d) else {
                continue;
            };
            match FieldMode::parse(&mode) {
                Some(m) => {
                    p.fields.insert(name, m);
                }
                None => d.error(
                    v.pos,
                    format!(
                        "{what}: fields: {name}: `{mode}` is not one of: editable, locked, hidden"
                    ),
                ),
            }
        }
    }
    if let Some(n) = defaults {
        let w = format!("{what}: defaults");
        let g = n.fields(
            &w,
            &[
                "active",
                "send_admin",
                "secondary_alerts",
                "send_test",
                "mails",
            ],
            d,
        );
        let flag =
            |k: &str, d: &mut Diagnostics| g.get(k).and_then(|v| v.bool(&format!("{w}: {k}"), d));
        p.defaults = AlertDefaults {
            active: flag("active", d),
            send_admin: flag("send_admin", d),
            secondary_alerts: flag("secondary_alerts", d),
            send_test: flag("send_test", d),
            mails: g.get("mails").map(|v| {
                v.str_list(&format!("{w}: mails"), d)
                    .into_iter()
                    .map(|(m, _)| m)
                    .collect()
            }),
        };
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::settings::FieldMode;

    #[test]
    fn a_tenant_policy_adds_to_the_common_one_field_by_field() {
        let text = "fields: { send_admin: hidden, mails: locked }\ndefaults: { send_test: true }\ntenants:\n  acme: { fields: { projects: locked, mails: editable }, defaults: { active: false } }\nwebhook_hosts: [Hooks.Internal]\n";
        let mut d = Diagnostics::new(std::path::Path::new("ordo.yaml"));
        let n = yaml::parse(text, &mut d).unwrap();
        let a = read_alerts(&n, &mut d);
        assert!(d.is_empty(), "{d}");
        let acme = a.policy_for(Some("acme"));
        assert_eq!(acme.mode("send_admin"), FieldMode::Hidden);
        assert_eq!(acme.mode("projects"), FieldMode::Locked);
        assert_eq!(acme.mode("mails"), FieldMode::Editable);
        assert_eq!(
            (acme.defaults.active, acme.defaults.send_test),
            (Some(false), Some(true))
        );
        let other = a.policy_for(Some("globex"));
        assert_eq!(other.mode("mails"), FieldMode::Locked);
        assert_eq!(other.mode("projects"), FieldMode::Editable);
        assert_eq!(a.webhook_hosts, ["hooks.internal"]);

        let mut d = Diagnostics::new(std::path::Path::new("ordo.yaml"));
        let n = yaml::parse("fields: { account: hidden, mails: secret }\n", &mut d).unwrap();
        read_alerts(&n, &mut d);
        let e = d.to_string();
        assert!(
            e.contains("unknown field `account`")
                && e.contains("`secret` is not one of: editable, locked, hidden"),
            "{e}"
        );
    }

    #[test]
    fn mail_domains_are_plain_domains_in_lower_case() {
        let mut d = Diagnostics::new(std::path::Path::new("ordo.yaml"));
        let text = "mail_domains: [Example.COM, '@partner.fr', 'not a domain', '']\n";
        let n = yaml::parse(text, &mut d).unwrap();
        let a = read_alerts(&n, &mut d);
        assert_eq!(a.mail_domains, ["example.com", "partner.fr"]);
        let e = d.to_string();
        assert!(
            e.contains("ordo.yaml:1:") && e.contains("`not a domain` is not a mail domain"),
            "{e}"
        );
        use crate::project::settings::mail_domain_allowed as ok;
        let domains = a.mail_domains;
        assert!(ok(&domains, "a@example.com") && ok(&domains, "a@Mail.Example.com"));
        assert!(!ok(&domains, "a@badexample.com") && !ok(&domains, "a@example.com.evil"));
        assert!(ok(&[], "anyone@anywhere.test"));
    }
}
