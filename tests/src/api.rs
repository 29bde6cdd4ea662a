//! Calling `controller serve`'s API as a client would: `curl`, over HTTPS (trusting the
//! project's CA) or plain HTTP on loopback, with a token, a session cookie jar, or nothing.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// An answer: status, headers (lowercase names), body as text and as JSON.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub text: String,
    pub json: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// `error.code` of an error answer.
    pub fn code(&self) -> &str {
        self.json["error"]["code"].as_str().unwrap_or("")
    }
}

#[derive(Clone)]
pub struct Api {
    pub base: String,
    cacert: Option<PathBuf>,
    headers: Vec<String>,
    jar: Option<PathBuf>,
    /// The local address requests leave from (another client: `127.0.0.2`).
    source: Option<String>,
}

impl Api {
    /// Plain HTTP on 127.0.0.1.
    pub fn http(port: u16) -> Api {
        Api {
            base: format!("http://127.0.0.1:{port}"),
            cacert: None,
            headers: Vec::new(),
            jar: None,
            source: None,
        }
    }

    /// HTTPS on `localhost`, trusting the CA in `ca` (the project's `data/pki/ca.pem`).
    pub fn https(port: u16, ca: &Path) -> Api {
        Api {
            base: format!("https://localhost:{port}"),
            cacert: Some(ca.to_path_buf()),
            headers: Vec::new(),
            jar: None,
            source: None,
        }
    }

    /// The same API with a bearer token.
    pub fn token(&self, token: &str) -> Api {
        self.header(&format!("Authorization: Bearer {token}"))
    }

    /// The same API with one more request header.
    pub fn header(&self, h: &str) -> Api {
        let mut a = self.clone();
        a.headers.push(h.to_string());
        a
    }

    /// The same API, its requests leaving from `address` (a loopback address such as
    /// `127.0.0.2` stands for another client).
    pub fn from_address(&self, address: &str) -> Api {
        let mut a = self.clone();
        a.source = Some(address.to_string());
        a
    }

    /// The same API keeping cookies in `jar` (a browser's session).
    pub fn cookies(&self, jar: &Path) -> Api {
        let mut a = self.clone();
        a.jar = Some(jar.to_path_buf());
        a
    }

    pub fn get(&self, path: &str) -> Reply {
        self.call("GET", path, None)
    }

    pub fn post(&self, path: &str, body: &str) -> Reply {
        self.call("POST", path, Some(body))
    }

    /// A JSON request (`body` is JSON).
    pub fn call(&self, method: &str, path: &str, body: Option<&str>) -> Reply {
        self.send(method, path, body.map(|b| (b, "application/json")))
    }

    /// A request with a body of another type (a form: `application/x-www-form-urlencoded`).
    pub fn call_raw(&self, method: &str, path: &str, body: &str, content_type: &str) -> Reply {
        self.send(method, path, Some((body, content_type)))
    }

    fn send(&self, method: &str, path: &str, body: Option<(&str, &str)>) -> Reply {
        let mut c = Command::new("curl");
        c.args(["-sS", "-i", "--max-time", "30", "-X", method]);
        if let Some(ca) = &self.cacert {
            c.arg("--cacert").arg(ca);
        }
        if let Some(jar) = &self.jar {
            c.arg("-b").arg(jar).arg("-c").arg(jar);
        }
        if let Some(a) = &self.source {
            c.args(["--interface", a]);
        }
        for h in &self.headers {
            c.args(["-H", h]);
        }
        if let Some((b, content_type)) = body {
            c.args([
                "-H",
                &format!("Content-Type: {content_type}"),
                "--data-binary",
                b,
            ]);
        }
        c.arg(format!("{}{path}", self.base));
        let out = c.output().expect("curl (apt-get install curl)");
        let raw = String::from_utf8_lossy(&out.stdout).into_owned();
        let (head, text) = raw.split_once("\r\n\r\n").unwrap_or((raw.as_str(), ""));
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "{method} {path}: no answer: {raw}{}",
                    String::from_utf8_lossy(&out.stderr)
                )
            });
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        Reply {
            status,
            headers,
            json: serde_json::from_str(text).unwrap_or(Value::Null),
            text: text.to_string(),
        }
    }
}
