//! Depositing a piece with an HTTP(S) upload (multipart POST or PUT), judged by the
//! profile's success status and text.

use ordo_jobs::transfer::{HttpMethod, Profile, Protocol};

use super::Deposited;
use super::files::Piece;

/// Deposits one piece over HTTP(S).
pub(super) async fn put(profile: &Profile, piece: &Piece) -> Result<Deposited, String> {
    let Protocol::Http {
        url,
        method,
        field,
        headers,
        username,
        password,
        success_status,
        success_body,
        timeout,
        ca_file,
    } = &profile.protocol
    else {
        return Err("not an http profile".into());
    };
    let mut builder = reqwest::Client::builder()
        .timeout(*timeout)
        .tcp_nodelay(true);
    if let Some(ca) = ca_file {
        let pem = std::fs::read(ca).map_err(|e| format!("ca_file {}: {e}", ca.display()))?;
        let cert = reqwest::Certificate::from_pem(&pem)
            .map_err(|e| format!("ca_file {}: {e}", ca.display()))?;
        builder = builder.add_root_certificate(cert);
    }
    let client = builder.build().map_err(|e| e.to_string())?;
    let bytes = tokio::fs::read(&piece.path)
        .await
        .map_err(|e| format!("{}: {e}", piece.path.display()))?;
    let target = url.replace("{name}", &piece.name);
    let mut req = match method {
        HttpMethod::Post => {
            let part = reqwest::multipart::Part::bytes(bytes).file_name(piece.name.clone());
            client
                .post(&target)
                .multipart(reqwest::multipart::Form::new().part(field.clone(), part))
        }
        HttpMethod::Put => client.put(&target).body(bytes),
    };
    for (k, v) in headers {
        req = req.header(k, v);
    }
    if let Some(u) = username {
        let pw = match password {
            Some(s) => Some(s.read().map_err(|e| format!("password: {e}"))?),
            None => None,
        };
        req = req.basic_auth(u, pw);
    }
    let resp = req.send().await.map_err(|e| {
        let mut s = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(inner) = src {
            s.push_str(&format!(": {inner}"));
            src = inner.source();
        }
        s
    })?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    let status_ok = if success_status.is_empty() {
        status.is_success()
    } else {
        success_status.contains(&status.as_u16())
    };
    if !status_ok {
        return Err(format!("HTTP {status}: {}", first_line(&text)));
    }
    if let Some(want) = success_body
        && !text.contains(want.as_str())
    {
        return Err(format!(
            "HTTP {status} but the answer lacks `{want}`: {}",
            first_line(&text)
        ));
    }
    Ok(Deposited {
        remote: target,
        note: Some(format!("HTTP {status}")),
    })
}

fn first_line(s: &str) -> String {
    let l = s
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    l.chars().take(200).collect()
}
