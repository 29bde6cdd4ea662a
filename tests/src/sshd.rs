//! A real OpenSSH server on a loopback port, in its own mount namespace with a private
//! tmpfs on `/tmp`, so that several "servers" on one machine each have their own `/tmp`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::{chmod, free_port, sh, temp_dir, wait_for_port};

/// A user key pair for the controller, shared by a test's servers.
pub struct ClientKey {
    pub private: PathBuf,
    pub public: String,
    _dir: tempfile::TempDir,
}

impl ClientKey {
    pub fn new() -> Self {
        crate::require("ssh-keygen", "openssh-client");
        let dir = temp_dir("client-key");
        let private = dir.path().join("id_ed25519");
        sh(&format!(
            "ssh-keygen -q -t ed25519 -N '' -C ordo-test -f {}",
            private.display()
        ));
        let public =
            std::fs::read_to_string(private.with_extension("pub")).expect("read public key");
        ClientKey {
            private,
            public,
            _dir: dir,
        }
    }
}

impl ClientKey {
    /// The same key, by its private key file (for another thread).
    pub fn from_existing(private: &Path) -> Self {
        let dir = temp_dir("client-key-copy");
        let public =
            std::fs::read_to_string(private.with_extension("pub")).expect("read public key");
        ClientKey {
            private: private.to_path_buf(),
            public,
            _dir: dir,
        }
    }
}

impl Default for ClientKey {
    fn default() -> Self {
        Self::new()
    }
}

pub struct SshServer {
    pub port: u16,
    /// `ssh-ed25519 AAAA...` of the server's host key.
    pub host_key: String,
    dir: tempfile::TempDir,
    child: Child,
}

impl SshServer {
    /// Starts sshd trusting `key` for every user.
    pub fn start(key: &ClientKey) -> Self {
        Self::start_on(key, free_port())
    }

    /// Starts sshd on a given port.
    pub fn start_on(key: &ClientKey, port: u16) -> Self {
        crate::require("/usr/sbin/sshd", "openssh-server");
        crate::require("unshare", "util-linux");
        crate::ensure_test_users();
        std::fs::create_dir_all("/run/sshd").expect("create /run/sshd");
        let dir = temp_dir("sshd");
        let d = dir.path();
        let host_key = d.join("host_ed25519");
        sh(&format!(
            "ssh-keygen -q -t ed25519 -N '' -f {}",
            host_key.display()
        ));
        let pubkey = std::fs::read_to_string(host_key.with_extension("pub")).expect("host pub key");
        let host_key_line = pubkey
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        std::fs::write(d.join("authorized_keys"), &key.public).expect("authorized_keys");
        chmod(&d.join("authorized_keys"), 0o644);
        let config = format!(
            "Port {port}\n\
             ListenAddress 127.0.0.1\n\
             HostKey {hk}\n\
             PidFile none\n\
             UsePAM no\n\
             StrictModes no\n\
             AuthorizedKeysFile {ak}\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             PermitRootLogin prohibit-password\n\
             Subsystem sftp internal-sftp\n\
             MaxStartups 200:30:400\n\
             MaxSessions 100\n\
             LogLevel VERBOSE\n",
            hk = host_key.display(),
            ak = d.join("authorized_keys").display(),
        );
        let cfg = d.join("sshd_config");
        std::fs::write(&cfg, config).expect("sshd_config");
        let log = std::fs::File::create(d.join("sshd.log")).expect("sshd log");
        let child = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "/bin/sh", "-c"])
            .arg(format!(
                "mount -t tmpfs -o mode=1777 tmpfs /tmp && exec /usr/sbin/sshd -D -e -f {}",
                cfg.display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start sshd (is openssh-server installed?)");
        wait_for_port(port, "sshd");
        SshServer {
            port,
            host_key: host_key_line,
            dir,
            child,
        }
    }

    /// The known_hosts line for this server.
    pub fn known_hosts_line(&self) -> String {
        format!("[127.0.0.1]:{} {}\n", self.port, self.host_key)
    }

    /// What sshd logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// How many logins sshd accepted.
    pub fn accepted_logins(&self) -> usize {
        self.log().matches("Accepted publickey").count()
    }

    /// Runs a command inside this server's mount namespace (to look at its `/tmp`).
    pub fn exec_inside(&self, cmd: &str) -> String {
        sh(&format!(
            "nsenter --target {} --mount /bin/sh -c {}",
            self.child.id(),
            shell_quote(cmd)
        ))
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Kills sshd and every session it serves (SIGKILL): established connections break,
    /// as when a partner's server goes down.
    pub fn kill_all(&mut self) {
        let mut pids = vec![self.child.id()];
        let mut i = 0;
        while i < pids.len() {
            let out = Command::new("pgrep")
                .args(["-P", &pids[i].to_string()])
                .output()
                .expect("pgrep");
            pids.extend(
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .filter_map(|l| l.trim().parse::<u32>().ok()),
            );
            i += 1;
        }
        for p in &pids {
            let _ = Command::new("kill").args(["-9", &p.to_string()]).status();
        }
        let _ = self.child.wait();
    }

    /// Restarts sshd with `line` added to its configuration (`ForceCommand ...`).
    pub fn reconfigure(&mut self, line: &str) {
        self.kill_all();
        let cfg = self.dir.path().join("sshd_config");
        let mut text = std::fs::read_to_string(&cfg).expect("sshd_config");
        text.push_str(line);
        text.push('\n');
        std::fs::write(&cfg, text).expect("sshd_config");
        self.restart();
    }

    /// Starts sshd again, same port, same host key (after `kill_all`).
    pub fn restart(&mut self) {
        let cfg = self.dir.path().join("sshd_config");
        let log = std::fs::OpenOptions::new()
            .append(true)
            .open(self.dir.path().join("sshd.log"))
            .expect("sshd log");
        self.child = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "/bin/sh", "-c"])
            .arg(format!(
                "mount -t tmpfs -o mode=1777 tmpfs /tmp && exec /usr/sbin/sshd -D -e -f {}",
                cfg.display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("restart sshd");
        wait_for_port(self.port, "sshd");
    }
}

impl Drop for SshServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}
