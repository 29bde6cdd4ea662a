//! A real ordo agent on a loopback port, enrolled through the real commands
//! (`agent enroll`, `controller pki sign`), in its own mount namespace with a private `/tmp`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::project::Project;
use crate::{free_port, temp_dir, wait_for_port};

pub struct AgentProcess {
    pub name: String,
    pub port: u16,
    pub dir: tempfile::TempDir,
    child: Child,
}

/// `target/debug/agent`, refusing a stale one.
pub fn agent_bin() -> PathBuf {
    crate::fresh_bin("agent")
}

/// The agent binary where the agent's own namespace sees it: a checkout under `/tmp` is
/// hidden by the private `/tmp`, so the binary is linked (or copied) once per build
/// under the fixtures' root.
fn agent_bin_for_namespace() -> PathBuf {
    let bin = agent_bin();
    if !bin.starts_with("/tmp") {
        return bin;
    }
    let built = std::fs::metadata(&bin)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let dir = crate::fixtures_root().join("bin");
    std::fs::create_dir_all(&dir).expect("create the fixtures' bin folder");
    let copy = dir.join(format!("agent-{built}"));
    if !copy.exists() {
        let part = dir.join(format!("agent-{built}.{}", std::process::id()));
        if std::fs::hard_link(&bin, &part).is_err() {
            std::fs::copy(&bin, &part).expect("copy the agent binary");
        }
        std::fs::rename(&part, &copy).expect("place the agent binary");
    }
    copy
}

impl AgentProcess {
    /// Enrolls an agent named `name` with the project's CA (the project must have run
    /// `controller pki init`) and starts it. `allowed_users` goes into its config as is.
    pub fn start(project: &Project, name: &str, allowed_users: &str) -> Self {
        crate::require("unshare", "util-linux");
        crate::ensure_test_users();
        let dir = temp_dir("agent");
        let d = dir.path();
        let enroll = Command::new(agent_bin())
            .args(["enroll", "--name", name, "--dir"])
            .arg(d)
            .output()
            .expect("agent enroll");
        assert!(
            enroll.status.success(),
            "agent enroll: {}",
            String::from_utf8_lossy(&enroll.stderr)
        );
        project
            .controller(&[
                "pki",
                "sign",
                &d.join("agent.csr").display().to_string(),
                "--out",
                &d.join("agent.pem").display().to_string(),
                "--yes",
            ])
            .expect_code(0);
        std::fs::copy(project.path().join("data/pki/ca.pem"), d.join("ca.pem"))
            .expect("copy ca.pem");
        let port = free_port();
        std::fs::write(
            d.join("agent.yaml"),
            format!(
                "name: {name}\nlisten: 127.0.0.1:{port}\ntls: {{ ca: ca.pem, cert: agent.pem, key: agent.key }}\nallowed_users: {allowed_users}\nkill_grace: 1s\nstate_dir: .\n"
            ),
        )
        .expect("agent.yaml");
        let child = spawn(d);
        wait_for_port(port, "the agent");
        AgentProcess {
            name: name.to_string(),
            port,
            dir,
            child,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("agent.log")).unwrap_or_default()
    }

    /// The inventory line for this agent.
    pub fn inventory_line(&self, extra: &str) -> String {
        format!(
            "  {}: {{ host: 127.0.0.1, port: {}, transport: agent{extra} }}\n",
            self.name, self.port
        )
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl AgentProcess {
    /// Kills the agent outright (SIGKILL), as a crash or an OOM kill would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the agent again with the same configuration and port (after `kill`).
    pub fn restart(&mut self) {
        self.child = spawn(self.dir.path());
        wait_for_port(self.port, "the agent");
    }
}

/// Runs the agent configured in `d/agent.yaml` in a mount namespace of its own (a private
/// /tmp), appending its log to `d/agent.log`.
fn spawn(d: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(d.join("agent.log"))
        .expect("agent log");
    Command::new("unshare")
        .args(["--mount", "--propagation", "private", "/bin/sh", "-c"])
        .arg(format!(
            "mount -t tmpfs -o mode=1777 tmpfs /tmp && exec {} run -c {}",
            agent_bin_for_namespace().display(),
            d.join("agent.yaml").display()
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start agent")
}
