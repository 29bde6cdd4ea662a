//! `controller pki init|renew|sign|revoke`: the agents' certificate authority.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;

use super::{BadInput, Cli, EXIT_OK};
use crate::pki::Pki;

#[derive(Subcommand, Debug)]
pub enum PkiCmd {
    /// Create the CA and the controller's client certificate in the PKI folder.
    Init,
    /// A new key and client certificate for the controller (2 years), e.g. before the
    /// current one expires; agents accept it at once (same CA).
    Renew,
    /// Revoke every certificate issued to an agent (by its name), the controller's own
    /// (`controller`), or one by its serial number; writes the CRL (`crl.pem`) that the
    /// controller checks and agents read (`tls: { crl: crl.pem }`).
    Revoke {
        /// An agent's name, `controller`, or a serial number (hex).
        who: String,
    },
    /// Sign an agent's certificate signing request (made by `agent enroll`), after showing
    /// what it asks for. The agent's private key never leaves the agent.
    Sign {
        /// The request (PEM), e.g. /etc/ordo-agent/agent.csr copied from the agent.
        csr: PathBuf,
        /// Where to write the certificate (default: next to the request, `.pem`).
        #[arg(short, long)]
        out: Option<PathBuf>,
        /// Days the certificate is valid (at most 825).
        #[arg(long, default_value_t = 365)]
        days: u32,
        /// Another DNS name the request may carry besides the agent's (repeatable).
        #[arg(long)]
        also: Vec<String>,
        /// Approve without asking.
        #[arg(short, long)]
        yes: bool,
    },
}

pub fn run(cli: &Cli, cmd: &PkiCmd) -> anyhow::Result<i32> {
    let cfg = super::config(cli)?;
    let pki = Pki::new(&cfg.pki_dir);
    match cmd {
        PkiCmd::Init => {
            pki.init().map_err(|e| BadInput(e.to_string()))?;
            say!("created the agents' CA in {}", cfg.pki_dir.display());
            say!(
                "  {}  copy this public certificate to every agent (tls.ca)",
                pki.ca_cert().display()
            );
            say!(
                "  {}  the controller's client certificate",
                pki.controller_cert().display()
            );
        }
        PkiCmd::Revoke { who } => {
            let serials = pki.revoke(who).map_err(|e| BadInput(e.to_string()))?;
            say!(
                "revoked {} certificate(s) of `{who}`: {}",
                serials.len(),
                serials.join(", ")
            );
            say!(
                "  {}  the controller refuses them from now on; copy it to every agent (tls: crl)",
                pki.crl().display()
            );
        }
        PkiCmd::Renew => {
            if !pki.ca_cert().exists() {
                return Err(BadInput(format!(
                    "no CA in {}: run `controller pki init` first",
                    cfg.pki_dir.display()
                ))
                .into());
            }
            pki.issue_controller_cert()
                .map_err(|e| BadInput(e.to_string()))?;
            say!(
                "renewed the controller's client certificate: {} (valid 2 years; same CA, nothing to copy to the agents)",
                pki.controller_cert().display()
            );
        }
        PkiCmd::Sign {
            csr,
            out,
            days,
            also,
            yes,
        } => {
            let pem = std::fs::read_to_string(csr)
                .map_err(|e| BadInput(format!("{}: {e}", csr.display())))?;
            let info =
                Pki::inspect(&pem).map_err(|e| BadInput(format!("{}: {e}", csr.display())))?;
            say!(
                "request {}: agent `{}`, names: {}",
                csr.display(),
                info.common_name,
                info.dns_names
                    .iter()
                    .chain(info.other_names.iter())
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            Pki::check_request(&info, *days, also)
                .map_err(|e| BadInput(format!("{}: {e}", csr.display())))?;
            if !yes {
                if !std::io::stdin().is_terminal() {
                    return Err(BadInput(
                        "refusing to sign without approval: answer on a terminal, or pass --yes"
                            .into(),
                    )
                    .into());
                }
                print!("sign it for {days} days? [y/N] ");
                std::io::stdout().flush()?;
                let mut answer = String::new();
                std::io::stdin().lock().read_line(&mut answer)?;
                if !matches!(answer.trim(), "y" | "Y" | "yes") {
                    say!("not signed");
                    return Ok(super::EXIT_FAILED);
                }
            }
            let cert = pki
                .sign_agent(&pem, *days, also)
                .map_err(|e| BadInput(e.to_string()))?;
            let out = out.clone().unwrap_or_else(|| csr.with_extension("pem"));
            std::fs::write(&out, cert)
                .with_context(|| format!("cannot write {}", out.display()))?;
            say!(
                "signed: {} (copy it to the agent, with {})",
                out.display(),
                pki.ca_cert().display()
            );
        }
    }
    Ok(EXIT_OK)
}
