//! The controller's certificate authority for agents: the CA, the controller's own client
//! certificate, and signing the requests agents make (their private keys never leave them).
//!
//! Files in the PKI folder (`<data dir>/pki` by default):
//! `ca.pem` (public: copy it to agents), `ca.key` (0600), `controller.pem`, `controller.key`.

use std::path::{Path, PathBuf};
use std::time::Duration;

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

fn cert_err(e: rcgen::Error) -> PkiError {
    PkiError::Cert(e.to_string())
}

/// The PKI folder.
pub struct Pki {
    dir: PathBuf,
}

/// What a signing request asks for, shown to the operator before signing.
#[derive(Debug, Clone)]
pub struct RequestInfo {
    pub common_name: String,
    pub dns_names: Vec<String>,
}

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

    fn write(&self, path: &Path, text: &str, private: bool) -> Result<(), PkiError> {
        let io = |source| PkiError::Io {
            path: path.to_path_buf(),
            source,
        };
        std::fs::write(path, text).map_err(io)?;
        if private {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
        }
        Ok(())
    }

    fn read(&self, path: &Path) -> Result<String, PkiError> {
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
        std::fs::create_dir_all(&self.dir).map_err(|source| PkiError::Io {
            path: self.dir.clone(),
            source,
        })?;
        let key = KeyPair::generate().map_err(cert_err)?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(cert_err)?;
        params.distinguished_name = name(&format!("ordo CA ({})", crate::project::hostname()));
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        validity(&mut params, Duration::from_secs(10 * 365 * 86400));
        let ca = params.self_signed(&key).map_err(cert_err)?;
        self.write(&self.ca_key(), &key.serialize_pem(), true)?;
        self.write(&self.ca_cert(), &ca.pem(), false)?;
        self.issue_controller_cert()
    }

    fn issuer(&self) -> Result<Issuer<'static, KeyPair>, PkiError> {
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
        self.write(&self.controller_key(), &key.serialize_pem(), true)?;
        self.write(&self.controller_cert(), &cert.pem(), false)
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
        let dns_names = csr
            .params
            .subject_alt_names
            .iter()
            .filter_map(|s| match s {
                rcgen::SanType::DnsName(n) => Some(n.to_string()),
                _ => None,
            })
            .collect();
        Ok(RequestInfo {
            common_name,
            dns_names,
        })
    }

    /// Signs an agent's request as a server certificate for its name (`days` valid).
    /// The request must name the agent in its common name and in a DNS name.
    pub fn sign_agent(&self, csr_pem: &str, days: u32) -> Result<String, PkiError> {
        let info = Self::inspect(csr_pem)?;
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
        let mut csr = CertificateSigningRequestParams::from_pem(csr_pem).map_err(cert_err)?;
        csr.params.is_ca = IsCa::ExplicitNoCa;
        csr.params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        csr.params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        validity(
            &mut csr.params,
            Duration::from_secs(u64::from(days.max(1)) * 86400),
        );
        let cert = csr.signed_by(&self.issuer()?).map_err(cert_err)?;
        Ok(cert.pem())
    }
}

fn name(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn.push(DnType::OrganizationName, "ordo");
    dn
}

fn validity(params: &mut CertificateParams, life: Duration) {
    let now = std::time::SystemTime::now();
    // A little slack for clocks that are slightly behind.
    params.not_before = (now - Duration::from_secs(3600)).into();
    params.not_after = (now + life).into();
}
