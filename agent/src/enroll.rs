//! Enrollment: the agent makes its own private key and a certificate signing request; the
//! controller signs the request (`controller pki sign`). The private key never leaves the
//! agent's TLS folder.

use std::path::{Path, PathBuf};

use anyhow::Context;
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};

/// The files enrollment writes.
pub struct Request {
    pub key: PathBuf,
    pub csr: PathBuf,
}

/// Writes `<dir>/agent.key` (0600, kept if it already exists) and `<dir>/agent.csr` for
/// `name` (also the certificate's first DNS name) and any `extra_names`.
pub fn make_request(dir: &Path, name: &str, extra_names: &[String]) -> anyhow::Result<Request> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let key_path = dir.join("agent.key");
    let key = if key_path.exists() {
        let pem = std::fs::read_to_string(&key_path)
            .with_context(|| format!("cannot read {}", key_path.display()))?;
        KeyPair::from_pem(&pem)
            .with_context(|| format!("{} is not a private key", key_path.display()))?
    } else {
        let key = KeyPair::generate().context("cannot generate a key")?;
        write_private(&key_path, &key.serialize_pem())?;
        key
    };
    let mut names = vec![name.to_string()];
    names.extend(extra_names.iter().filter(|n| n.as_str() != name).cloned());
    let mut params = CertificateParams::new(names).context("invalid name")?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    dn.push(DnType::OrganizationName, "ordo");
    params.distinguished_name = dn;
    let csr = params
        .serialize_request(&key)
        .context("cannot make the request")?
        .pem()
        .context("cannot encode the request")?;
    let csr_path = dir.join("agent.csr");
    std::fs::write(&csr_path, csr)
        .with_context(|| format!("cannot write {}", csr_path.display()))?;
    Ok(Request {
        key: key_path,
        csr: csr_path,
    })
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}
