//! One HTTP client for every webhook ordo posts to: a job's `notify` and an account's
//! alerts. How far a URL may reach is an explicit [`Reach`]: an account holder's URL only
//! to global unicast addresses (or hosts an administrator listed), a job file's URL
//! anywhere (its authors own the project). The address checked is the one connected to
//! (no second lookup), redirects are never followed and no proxy is used, so a check
//! cannot be walked around.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// Where a webhook may go.
#[derive(Debug, Clone, Copy)]
pub enum Reach<'a> {
    /// Hosts that resolve only to global unicast addresses, or hosts listed in `allowed`
    /// (`serve: alerts: webhook_hosts`).
    Public { allowed: &'a [String] },
    /// Any address (a URL written in a job file: an internal relay is usual).
    Any,
}

/// One POST of a JSON body.
#[derive(Debug, Clone)]
pub struct Webhook<'a> {
    pub url: &'a str,
    pub headers: &'a [(String, String)],
    pub timeout: Duration,
    /// Tries in all (a 4xx answer is not tried again).
    pub attempts: u32,
    pub reach: Reach<'a>,
}

/// Posts `body`; `HTTP <status>` when the receiver took it. Errors never repeat the URL
/// (it may hold a secret token).
pub async fn post(w: &Webhook<'_>, body: &serde_json::Value) -> Result<String, String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let url = reqwest::Url::parse(w.url).map_err(|e| format!("webhook URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "webhook URL: `{}:` is not http or https",
            url.scheme()
        ));
    }
    let mut client = reqwest::Client::builder()
        .timeout(w.timeout)
        .tcp_nodelay(true)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy();
    if let Reach::Public { allowed } = w.reach
        && let Some((host, addr)) = public_target(&url, allowed).await?
    {
        client = client.resolve(&host, addr);
    }
    let client = client.build().map_err(|e| e.to_string())?;
    let mut last = String::new();
    for attempt in 0..w.attempts.max(1) {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(500 << attempt.min(6))).await;
        }
        let mut req = client.post(url.clone()).json(body);
        for (k, v) in w.headers {
            req = req.header(k, v);
        }
        match req.send().await {
            Ok(r) if r.status().is_success() => return Ok(format!("HTTP {}", r.status())),
            Ok(r) if r.status().is_client_error() => {
                return Err(format!("HTTP {} (not retried)", r.status()));
            }
            Ok(r) => last = format!("HTTP {}", r.status()),
            Err(e) => last = without_url(e),
        }
    }
    if w.attempts > 1 {
        last.push_str(&format!(" (after {} attempts)", w.attempts));
    }
    Err(last)
}

/// The host and the address to connect to for a [`Reach::Public`] URL: `None` for a host
/// the administrator listed (connected to as usual); refused when any address the host
/// resolves to is not global unicast.
async fn public_target(
    url: &reqwest::Url,
    allowed: &[String],
) -> Result<Option<(String, SocketAddr)>, String> {
    let host = url
        .host_str()
        .ok_or("a URL without a host")?
        .to_ascii_lowercase();
    let bare = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    if allowed.iter().any(|h| *h == host || *h == bare) {
        return Ok(None);
    }
    let port = url.port_or_known_default().unwrap_or(443);
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((bare.as_str(), port))
        .await
        .map_err(|e| format!("{host}: {e}"))?
        .collect();
    let first = *addrs.first().ok_or_else(|| format!("{host}: no address"))?;
    // The address itself is not said: account holders read this error, and should not
    // learn the controller's network from it.
    if addrs.iter().any(|a| !global_unicast(a.ip())) {
        return Err(format!(
            "{host} is not a public address: refused; an administrator may allow it in serve: alerts: webhook_hosts"
        ));
    }
    Ok(Some((bare, first)))
}

/// A webhook's URL as logs and the history show it: scheme, host and port, never the
/// path, query or user part (where tokens go).
pub fn shown_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => match (u.host_str(), u.port()) {
            (Some(h), Some(p)) => format!("{}://{h}:{p}/…", u.scheme()),
            (Some(h), None) => format!("{}://{h}/…", u.scheme()),
            _ => "(a URL without a host)".into(),
        },
        Err(_) => "(not a URL)".into(),
    }
}

/// A global unicast address. IPv4: not `0/8`, private, loopback, link-local, shared
/// (`100.64/10`), IETF (`192.0.0/24`), documentation, 6to4 relay (`192.88.99/24`),
/// benchmarking (`198.18/15`), multicast or reserved (`240/4`). IPv6: inside `2000::/3`
/// and not IETF assignments (`2001::/23`: Teredo, benchmarking, ORCHID), documentation
/// (`2001:db8::/32`, `3fff::/20`) or 6to4 (`2002::/16`); so NAT64 (`64:ff9b::/96`),
/// IPv4-compatible (`::a.b.c.d`), unique-local and link-local addresses never pass. An
/// IPv4-mapped address is judged as the IPv4 address it carries.
pub fn global_unicast(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            !(o[0] == 0
                || a.is_private()
                || a.is_loopback()
                || a.is_link_local()
                || (o[0] == 100 && (64..128).contains(&o[1]))
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || a.is_documentation()
                || (o[0] == 192 && o[1] == 88 && o[2] == 99)
                || (o[0] == 198 && (18..20).contains(&o[1]))
                || a.is_multicast()
                || o[0] >= 240)
        }
        IpAddr::V6(a) => {
            if let Some(v4) = a.to_ipv4_mapped() {
                return global_unicast(IpAddr::V4(v4));
            }
            let s = a.segments();
            (s[0] & 0xe000) == 0x2000
                && !(s[0] == 0x2001 && s[1] < 0x0200)
                && !(s[0] == 0x2001 && s[1] == 0x0db8)
                && (s[0] & 0xfff0) != 0x3ff0
                && s[0] != 0x2002
        }
    }
}

/// What went wrong, with its causes, never the URL.
fn without_url(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut s = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(inner) = src {
        s.push_str(&format!(": {inner}"));
        src = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shown_url_keeps_no_token() {
        assert_eq!(
            shown_url("https://u:p@hooks.example.com:8443/T0/B1/secret?key=x"),
            "https://hooks.example.com:8443/…"
        );
        assert_eq!(shown_url("http://h/x"), "http://h/…");
    }

    #[test]
    fn only_global_unicast_addresses_pass() {
        let ok = |s: &str| global_unicast(s.parse().unwrap());
        for public in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(ok(public), "{public}");
        }
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "192.0.0.8",
            "192.0.2.1",
            "198.18.0.1",
            "198.19.255.255",
            "240.0.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fe80::1",
            "ff02::1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::a9fe:a9fe",
            "2002:a9fe:a9fe::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2001:db8::1",
            "3fff::1",
            "::a9fe:a9fe",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
        ] {
            assert!(!ok(private), "{private}");
        }
    }
}
