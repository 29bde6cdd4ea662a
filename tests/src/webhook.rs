//! A real HTTP server receiving webhooks (Python's http.server), that can fail on demand.

use std::process::{Child, Command, Stdio};

use crate::{free_port, temp_dir, wait_for_port};

pub struct WebhookServer {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Child,
}

impl WebhookServer {
    pub fn start() -> Self {
        let dir = temp_dir("webhook");
        let port = free_port();
        let script =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/webhook_server.py");
        let child = Command::new("/usr/bin/python3")
            .arg(script)
            .arg(port.to_string())
            .arg(dir.path())
            .stdin(Stdio::null())
            .spawn()
            .expect("start the webhook server");
        wait_for_port(port, "webhook server");
        WebhookServer { port, dir, child }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Answer every request with this status from now on.
    pub fn answer(&self, code: u16) {
        std::fs::write(self.dir.path().join("status"), code.to_string()).expect("status");
    }

    /// Every request received so far: `{path, status, headers, body}`.
    pub fn received(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.dir.path().join("received.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

impl Drop for WebhookServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl WebhookServer {
    /// The files uploaded so far (multipart POST or PUT), by name.
    pub fn uploads(&self) -> std::collections::BTreeMap<String, Vec<u8>> {
        let mut out = std::collections::BTreeMap::new();
        if let Ok(rd) = std::fs::read_dir(self.dir.path().join("uploads")) {
            for e in rd.flatten() {
                out.insert(
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read(e.path()).unwrap_or_default(),
                );
            }
        }
        out
    }
}
