//! The agent's configuration file.
//!
//! ```yaml
//! name: web1                        # must be the name in its certificate and the inventory
//! listen: 0.0.0.0:7443
//! tls:                              # relative paths: relative to this file
//!   ca: ca.pem                      # the controller's CA
//!   cert: agent.pem
//!   key: agent.key
//!   crl: crl.pem                    # optional: the controller's pki/crl.pem (revoked certificates)
//! allowed_users: [dollaru, ops]     # users commands may run as; "*" = any user but
//!                                   # root (uid 0 or gid 0): allowed only by name. A
//!                                   # request without a user runs as the agent's own,
//!                                   # which must be allowed too (never an implicit root)
//! upload_dirs: [/tmp, /var/tmp]     # where run folders (`ordo-*`) may be made for uploads
//! state_dir: /run/ordo-agent        # the commands running now, to stop after a crash
//! controllers: [ordo-controller]    # client certificate names accepted
//! max_concurrent: 16                # commands at once; more wait their turn
//! kill_grace: 2s                    # between TERM and KILL
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ordo_inventory::yaml::{self, Diagnostics, Pos};

#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub file: PathBuf,
    pub name: String,
    pub listen: SocketAddr,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The CA's revocation list, when given: clients with a revoked certificate get nothing.
    pub crl: Option<PathBuf>,
    pub allowed_users: Vec<String>,
    /// Folders in which uploads may make a run folder (the jobs' `remote_dir`).
    pub upload_dirs: Vec<PathBuf>,
    /// Where the agent records the commands it runs (see `orphans.rs`).
    pub state_dir: PathBuf,
    pub controllers: Vec<String>,
    pub max_concurrent: usize,
    pub kill_grace: Duration,
}

impl AgentConfig {
    /// Whether `user` may run commands: listed by name, or any user but a superuser when
    /// `*` is listed (`superuser`: whether its uid is 0). Root is allowed only by name.
    pub fn user_allowed(&self, user: &str, superuser: bool) -> bool {
        self.allowed_users
            .iter()
            .any(|u| u == user || (u == "*" && !superuser))
    }

    /// A configuration for unit tests: uploads under `/tmp`, the users given.
    #[cfg(test)]
    pub(crate) fn for_tests(allowed_users: &[&str]) -> Self {
        AgentConfig {
            file: PathBuf::from("/etc/ordo-agent/agent.yaml"),
            name: "a".into(),
            listen: "127.0.0.1:7443".parse().unwrap(),
            ca: PathBuf::new(),
            cert: PathBuf::new(),
            key: PathBuf::new(),
            crl: None,
            allowed_users: allowed_users.iter().map(|u| u.to_string()).collect(),
            upload_dirs: vec![PathBuf::from("/tmp")],
            state_dir: PathBuf::from("/run/ordo-agent"),
            controllers: vec![],
            max_concurrent: 1,
            kill_grace: Duration::from_secs(1),
        }
    }

    /// Reads and checks the file; every problem is reported, with its position.
    pub fn load(file: &Path) -> Result<Self, Diagnostics> {
        let mut d = Diagnostics::new(file);
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) => {
                d.error(Pos::new(1, 1), format!("cannot read: {e}"));
                return Err(d);
            }
        };
        let Some(doc) = yaml::parse(&text, &mut d) else {
            return Err(d);
        };
        let base = file.parent().unwrap_or(Path::new("."));
        let f = doc.fields(
            "agent",
            &[
                "name",
                "listen",
                "tls",
                "allowed_users",
                "upload_dirs",
                "state_dir",
                "controllers",
                "max_concurrent",
                "kill_grace",
            ],
            &mut d,
        );
        let name = f
            .require("name", "agent", &mut d)
            .and_then(|n| n.str("name", &mut d))
            .unwrap_or_default();
        let listen = match f.get("listen") {
            Some(n) => n.str("listen", &mut d).and_then(|s| {
                s.parse::<SocketAddr>()
                    .map_err(|_| {
                        d.error(
                            n.pos,
                            format!("listen: `{s}` is not an address:port (example: 0.0.0.0:7443)"),
                        )
                    })
                    .ok()
            }),
            None => Some(SocketAddr::from(([0, 0, 0, 0], 7443))),
        };
        let (mut ca, mut cert, mut key) = (None, None, None);
        let mut crl = None;
        if let Some(t) = f.require("tls", "agent", &mut d) {
            let tf = t.fields("tls", &["ca", "cert", "key", "crl"], &mut d);
            if let Some(n) = tf.get("crl")
                && let Some(p) = n.str("tls: crl", &mut d)
            {
                crl = Some(base.join(p));
            }
            for (k, slot) in [("ca", &mut ca), ("cert", &mut cert), ("key", &mut key)] {
                if let Some(n) = tf.require(k, "tls", &mut d)
                    && let Some(p) = n.str(&format!("tls: {k}"), &mut d)
                {
                    let path = base.join(p);
                    if !path.is_file() {
                        d.error(
                            n.pos,
                            format!(
                                "tls: {k}: {} does not exist (run `agent enroll` first)",
                                path.display()
                            ),
                        );
                    }
                    *slot = Some(path);
                }
            }
        }
        let list = |key: &str, default: &[&str], d: &mut Diagnostics| -> Vec<String> {
            match f.get(key) {
                Some(n) => n.str_list(key, d).into_iter().map(|(s, _)| s).collect(),
                None => default.iter().map(|s| s.to_string()).collect(),
            }
        };
        let allowed_users = list("allowed_users", &["*"], &mut d);
        let controllers = list("controllers", &["ordo-controller"], &mut d);
        let upload_dirs: Vec<PathBuf> = list("upload_dirs", &["/tmp", "/var/tmp"], &mut d)
            .into_iter()
            .map(PathBuf::from)
            .collect();
        let state_dir = f
            .get("state_dir")
            .and_then(|n| n.str("state_dir", &mut d))
            .map(|p| base.join(p))
            .unwrap_or_else(|| PathBuf::from("/run/ordo-agent"));
        if let Some(bad) = upload_dirs.iter().find(|p| !p.is_absolute()) {
            d.error(
                f.get("upload_dirs").map_or(f.pos, |n| n.pos),
                format!("upload_dirs: `{}` must be an absolute path", bad.display()),
            );
        }
        let max_concurrent = f
            .get("max_concurrent")
            .and_then(|n| n.u64("max_concurrent", &mut d))
            .unwrap_or(16);
        if max_concurrent == 0 {
            d.error(
                f.get("max_concurrent").map_or(f.pos, |n| n.pos),
                "max_concurrent: must be at least 1",
            );
        }
        let kill_grace = match f.get("kill_grace") {
            Some(n) => n.str("kill_grace", &mut d).and_then(|s| {
                humantime::parse_duration(&s)
                    .map_err(|_| {
                        d.error(
                            n.pos,
                            format!("kill_grace: `{s}` is not a duration (example: 2s)"),
                        )
                    })
                    .ok()
            }),
            None => Some(Duration::from_secs(2)),
        };
        d.sort();
        if !d.is_empty() {
            return Err(d);
        }
        Ok(AgentConfig {
            file: file.to_path_buf(),
            name,
            listen: listen.expect("checked"),
            ca: ca.expect("checked"),
            cert: cert.expect("checked"),
            key: key.expect("checked"),
            crl,
            allowed_users,
            upload_dirs,
            state_dir,
            controllers,
            max_concurrent: max_concurrent.max(1) as usize,
            kill_grace: kill_grace.expect("checked"),
        })
    }
}
