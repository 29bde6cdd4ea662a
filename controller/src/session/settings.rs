//! What the selected servers' transports need, loaded from the project's settings: SSH
//! keys and known hosts, the agents' certificates.

use std::path::PathBuf;

use ordo_inventory::{Node, Transport};

use super::{AgentSettings, Settings, SshSettings};
use crate::project::{BadInput, ProjectConfig};

/// Loads what the selected servers' transports need (SSH keys, the agent PKI), only then.
pub fn for_nodes(
    cfg: &ProjectConfig,
    nodes: &[Node],
    accept_new: bool,
) -> Result<Settings, BadInput> {
    let mut s = Settings::default();
    if nodes.iter().any(|n| n.transport == Transport::Ssh) {
        s.ssh = Some(ssh_settings(cfg, accept_new)?);
    }
    if nodes.iter().any(|n| n.transport == Transport::Agent) {
        let pki = crate::pki::Pki::new(&cfg.pki_dir);
        s.agent = Some(
            AgentSettings::load(
                &pki.ca_cert(),
                &pki.controller_cert(),
                &pki.controller_key(),
                &pki.crl(),
                cfg.ssh.connect_timeout,
            )
            .map_err(|e| BadInput(e.to_string()))?,
        );
    }
    Ok(s)
}

fn ssh_settings(cfg: &ProjectConfig, accept_new: bool) -> Result<SshSettings, BadInput> {
    let known_hosts = cfg.ssh.known_hosts.clone().unwrap_or_else(|| {
        PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into()))
            .join(".ssh/known_hosts")
    });
    SshSettings::new(
        cfg.ssh.user.clone().unwrap_or_else(super::current_user),
        &cfg.ssh.identity,
        known_hosts,
        accept_new || cfg.ssh.accept_new_host_keys,
        cfg.ssh.connect_timeout,
        cfg.ssh.connect_attempts,
    )
    .map_err(|e| {
        BadInput(format!(
            "ssh: {e} (set ssh.identity in {})",
            cfg.root.join(crate::project::CONFIG_FILE).display()
        ))
    })
}
