//! The controller's certificate authority for agents: the CA, the controller's own client
//! certificate, and signing the requests agents make (their private keys never leave them).
//!
//! Files in the PKI folder (`<data dir>/pki` by default):
//! `ca.pem` (public: copy it to agents), `ca.key` (0600), `controller.pem`, `controller.key`.

use std::path::{Path, PathBuf};
use std::time::Duration;

pub mod cms;
pub mod keys;
mod revoke;
mod web;

pub use revoke::cert_serial;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};

/// The client certificate name agents accept by default.
pub const CONTROLLER_NAME: &str = "ordo-controller";

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Cert(String),
    #[error("{0} already exists: the PKI is initialised (remove the folder to start over)")]
    Exists(PathBuf),
}

pub(super) fn cert_err(e: rcgen::Error) -> PkiError {
    PkiError::Cert(e.to_string())
}

/// The PKI folder.
pub struct Pki {
    pub(super) dir: PathBuf,
}

/// What a signing request asks for, shown to the operator before signing.
#[derive(Debug, Clone)]
pub struct RequestInfo {
    pub common_name: String,
    pub dns_names: Vec<String>,
    /// Every other name it asks for (IP addresses, URIs, mail addresses...), as text.
    pub other_names: Vec<String>,
}

/// The longest an agent's certificate may be valid.
pub const MAX_AGENT_DAYS: u32 = 825;

impl Pki {
    pub fn new(dir: &Path) -> Self {
        Pki {
            dir: dir.to_path_buf(),
        }
    }

    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    fn ca_key(&self) -> PathBuf {
        self.dir.join("ca.key")
    }

    pub fn controller_cert(&self) -> PathBuf {
        self.dir.join("controller.pem")
    }

    pub fn controller_key(&self) -> PathBuf {
        self.dir.join("controller.key")
    }

    /// Writes a file; a private one (a key) is 0600 from its creation, never readable by
    /// others even for a moment.
    pub(super) fn write_file(
        &self,
        path: &Path,
        text: &str,
        private: bool,
    ) -> Result<(), PkiError> {
        use std::io::Write;
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let io = |source| PkiError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mode = if private { 0o600 } else { 0o644 };
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(path)
            .map_err(io)?;
        // An existing file keeps its mode on open: set it.
        f.set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(io)?;
        f.write_all(text.as_bytes()).map_err(io)
    }

    pub(super) fn read(&self, path: &Path) -> Result<String, PkiError> {
        std::fs::read_to_string(path).map_err(|source| PkiError::Io {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Creates the CA (10 years) and the controller's client certificate (2 years).
    pub fn init(&self) -> Result<(), PkiError> {
        if self.ca_cert().exists() {
            return Err(PkiError::Exists(self.ca_cert()));
        }
        std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
            .create(&self.dir)
            .map_err(|source| PkiError::Io {
                path: self.dir.clone(),
                source,
            })?;
        let key = KeyPair::generate().map_err(cert_err)?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(cert_err)?;
        params.distinguished_name = name(&format!("ordo CA ({})", crate::process::hostname()));
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        validity(&mut params, Duration::from_secs(10 * 365 * 86400));
        let ca = params.self_signed(&key).map_err(cert_err)?;
        self.write_file(&self.ca_key(), &key.serialize_pem(), true)?;
        self.write_file(&self.ca_cert(), &ca.pem(), false)?;
        self.issue_controller_cert()
    }

    pub(super) fn issuer(&self) -> Result<Issuer<'static, KeyPair>, PkiError> {
        let key = KeyPair::from_pem(&self.read(&self.ca_key())?).map_err(cert_err)?;
        Issuer::from_ca_cert_pem(&self.read(&self.ca_cert())?, key).map_err(cert_err)
    }

    /// A new client certificate for the controller (also to renew it).
    pub fn issue_controller_cert(&self) -> Result<(), PkiError> {
        let key = KeyPair::generate().map_err(cert_err)?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(cert_err)?;
        params.distinguished_name = name(CONTROLLER_NAME);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        validity(&mut params, Duration::from_secs(2 * 365 * 86400));
        let cert = params.signed_by(&key, &self.issuer()?).map_err(cert_err)?;
        self.write_file(&self.controller_key(), &key.serialize_pem(), true)?;
        self.write_file(&self.controller_cert(), &cert.pem(), false)
    }

    /// What a signing request asks for.
    pub fn inspect(csr_pem: &str) -> Result<RequestInfo, PkiError> {
        let csr = CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(|e| PkiError::Cert(format!("not a valid signing request: {e}")))?;
        let common_name = csr
            .params
            .distinguished_name
            .get(&DnType::CommonName)
            .map(|v| match v {
                rcgen::DnValue::Utf8String(s) => s.clone(),
                rcgen::DnValue::PrintableString(s) => s.as_str().to_string(),
                other => format!("{other:?}"),
            })
            .unwrap_or_default();
        let mut dns_names = Vec::new();
        let mut other_names = Vec::new();
        for san in &csr.params.subject_alt_names {
            match san {
                rcgen::SanType::DnsName(n) => dns_names.push(n.to_string()),
                rcgen::SanType::IpAddress(ip) => other_names.push(format!("IP {ip}")),
                rcgen::SanType::URI(u) => other_names.push(format!("URI {}", u.as_str())),
                rcgen::SanType::Rfc822Name(m) => other_names.push(format!("mail {}", m.as_str())),
                other => other_names.push(format!("{other:?}")),
            }
        }
        Ok(RequestInfo {
            common_name,
            dns_names,
            other_names,
        })
    }

    /// Signs an agent's request as a server certificate for its name (`days` valid, at
    /// most [`MAX_AGENT_DAYS`]). The request must name the agent in its common name and
    /// in a DNS name; it may ask for no other name than those in `also` (each shown to the
    /// operator first): a certificate never carries a name nobody approved.
    pub fn sign_agent(
        &self,
        csr_pem: &str,
        days: u32,
        also: &[String],
    ) -> Result<String, PkiError> {
        let info = Self::inspect(csr_pem)?;
        Self::check_request(&info, days, also)?;
        let mut csr = CertificateSigningRequestParams::from_pem(csr_pem).map_err(cert_err)?;
        let serial = new_serial();
        csr.params.serial_number = Some(serial.clone().into());
        csr.params.is_ca = IsCa::ExplicitNoCa;
        csr.params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        csr.params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        validity(
            &mut csr.params,
            Duration::from_secs(u64::from(days) * 86400),
        );
        let cert = csr.signed_by(&self.issuer()?).map_err(cert_err)?;
        // Every certificate signed is kept (public), so that it can be revoked by name.
        let issued = self.dir.join("issued");
        std::fs::create_dir_all(&issued).map_err(|source| PkiError::Io {
            path: issued.clone(),
            source,
        })?;
        let name = format!("{}.{}.pem", hex::encode(&serial), info.common_name);
        self.write_file(&issued.join(name), &cert.pem(), false)?;
        Ok(cert.pem())
    }

    /// Whether a request may be signed: see [`Self::sign_agent`].
    pub fn check_request(info: &RequestInfo, days: u32, also: &[String]) -> Result<(), PkiError> {
        if !(1..=MAX_AGENT_DAYS).contains(&days) {
            return Err(PkiError::Cert(format!(
                "--days {days}: from 1 to {MAX_AGENT_DAYS}"
            )));
        }
        let unapproved: Vec<&String> = info
            .dns_names
            .iter()
            .filter(|n| **n != info.common_name && !also.contains(n))
            .chain(info.other_names.iter())
            .collect();
        if !unapproved.is_empty() {
            return Err(PkiError::Cert(format!(
                "the request also asks for {}: refused (approve another DNS name with --also NAME; IP addresses and other names are never signed)",
                unapproved
                    .iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        if info.common_name.is_empty() || !info.dns_names.contains(&info.common_name) {
            return Err(PkiError::Cert(format!(
                "the request's common name `{}` must also be one of its DNS names ({})",
                info.common_name,
                info.dns_names.join(", ")
            )));
        }
        if info.common_name == CONTROLLER_NAME {
            return Err(PkiError::Cert(format!(
                "`{CONTROLLER_NAME}` is the controller's name, not an agent's"
            )));
        }
        Ok(())
    }
}

/// A new certificate serial number: 16 random-enough bytes (UUID v7), positive.
fn new_serial() -> Vec<u8> {
    let mut b = uuid::Uuid::now_v7().as_bytes().to_vec();
    b[0] &= 0x7f;
    b[0] |= 0x01;
    b
}

pub(super) fn name(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn.push(DnType::OrganizationName, "ordo");
    dn
}

pub(super) fn validity(params: &mut CertificateParams, life: Duration) {
    let now = std::time::SystemTime::now();
    // A little slack for clocks that are slightly behind.
    params.not_before = (now - Duration::from_secs(3600)).into();
    params.not_after = (now + life).into();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(cn: &str, sans: Vec<rcgen::SanType>) -> String {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = name(cn);
        params.subject_alt_names = sans;
        params.serialize_request(&key).unwrap().pem().unwrap()
    }

    fn dns(n: &str) -> rcgen::SanType {
        rcgen::SanType::DnsName(n.try_into().unwrap())
    }

    #[test]
    fn only_approved_names_are_signed_and_keys_are_private_from_the_start() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::new(&dir.path().join("pki"));
        pki.init().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.path().join("pki")), 0o700);
        assert_eq!(mode(&pki.ca_key()), 0o600);
        assert_eq!(mode(&pki.controller_key()), 0o600);

        assert!(
            pki.sign_agent(&request("web1", vec![dns("web1")]), 365, &[])
                .is_ok()
        );
        let extra = request("web1", vec![dns("web1"), dns("bank.example.com")]);
        let err = pki.sign_agent(&extra, 365, &[]).unwrap_err().to_string();
        assert!(
            err.contains("`bank.example.com`") && err.contains("--also"),
            "{err}"
        );
        assert!(
            pki.sign_agent(&extra, 365, &["bank.example.com".into()])
                .is_ok()
        );
        let ip = request(
            "web1",
            vec![
                dns("web1"),
                rcgen::SanType::IpAddress("10.0.0.1".parse().unwrap()),
            ],
        );
        let err = pki.sign_agent(&ip, 365, &[]).unwrap_err().to_string();
        assert!(err.contains("IP 10.0.0.1"), "{err}");
        assert!(
            pki.sign_agent(&request("web1", vec![dns("web1")]), 4000, &[])
                .is_err()
        );

        let before = std::fs::read_to_string(pki.controller_cert()).unwrap();
        pki.issue_controller_cert().unwrap();
        assert_ne!(
            std::fs::read_to_string(pki.controller_cert()).unwrap(),
            before
        );
        assert_eq!(mode(&pki.controller_key()), 0o600);
    }
}
