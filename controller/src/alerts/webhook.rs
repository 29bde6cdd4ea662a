//! Alerts POSTed to an account's webhook, never to an address that is not public unless
//! the administrator allowed its host.

use std::time::Duration;

use serde_json::json;

use crate::project::ProjectConfig;
use crate::store::{AlertEventRow, OutboxRow};

/// Where a webhook may go: a host the administrator listed (`serve: alerts:
/// webhook_hosts`), or one that resolves only to public addresses; the address checked
/// is the one connected to (no second lookup, no redirect).
async fn webhook_target(
    cfg: &ProjectConfig,
    url: &reqwest::Url,
) -> Result<Option<(String, std::net::SocketAddr)>, String> {
    let host = url
        .host_str()
        .ok_or("a URL without a host")?
        .to_ascii_lowercase();
    let bare = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    if cfg
        .serve
        .alerts
        .webhook_hosts
        .iter()
        .any(|h| *h == host || *h == bare)
    {
        return Ok(None);
    }
    let port = url.port_or_known_default().unwrap_or(443);
    let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((bare.as_str(), port))
        .await
        .map_err(|e| format!("{host}: {e}"))?
        .collect();
    let first = *addrs.first().ok_or_else(|| format!("{host}: no address"))?;
    if let Some(bad) = addrs.iter().find(|a| !public(a.ip())) {
        return Err(format!(
            "{host} resolves to {} (not a public address): refused; an administrator may allow it in serve: alerts: webhook_hosts",
            bad.ip()
        ));
    }
    Ok(Some((bare, first)))
}

/// A public unicast address: not loopback, private, link-local, shared, unique-local,
/// multicast, documentation or unspecified.
fn public(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(a) => {
            let o = a.octets();
            !(a.is_loopback()
                || a.is_private()
                || a.is_link_local()
                || a.is_multicast()
                || a.is_broadcast()
                || a.is_unspecified()
                || a.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1])))
        }
        std::net::IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => public(std::net::IpAddr::V4(v4)),
            None => {
                let s = a.segments();
                !(a.is_loopback()
                    || a.is_unspecified()
                    || a.is_multicast()
                    || (s[0] & 0xfe00) == 0xfc00
                    || (s[0] & 0xffc0) == 0xfe80
                    || s[0] == 0x2001 && s[1] == 0x0db8)
            }
        },
    }
}

pub(super) async fn post(
    cfg: &ProjectConfig,
    url: &str,
    items: &[(OutboxRow, AlertEventRow)],
) -> Result<(), String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let alerts: Vec<_> = items
        .iter()
        .map(|(o, ev)| {
            json!({"event": ev.kind, "job": ev.job, "project": ev.project, "execution": ev.execution_id,
                   "started_by": ev.account, "account": o.account, "at": ev.at, "detail": ev.detail,
                   "test": ev.test})
        })
        .collect();
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("webhook: {e}"))?;
    let mut client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy();
    if let Some((host, addr)) = webhook_target(cfg, &parsed).await? {
        client = client.resolve(&host, addr);
    }
    let client = client.build().map_err(|e| e.to_string())?;
    let r = client
        .post(parsed)
        .json(&json!({ "alerts": alerts }))
        .send()
        .await
        .map_err(|e| format!("webhook: {e}"))?;
    if r.status().is_success() {
        Ok(())
    } else {
        Err(format!("the webhook answered {}", r.status()))
    }
}
