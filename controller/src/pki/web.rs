//! The HTTPS certificate of `controller serve`'s API and console, signed by the PKI's CA
//! (browsers and `curl --cacert ca.pem` trust it once the CA is trusted).

use std::time::Duration;

use rcgen::{CertificateParams, ExtendedKeyUsagePurpose, KeyPair, KeyUsagePurpose, SanType};

use super::{Pki, PkiError, cert_err, name, validity};

impl Pki {
    pub fn api_cert(&self) -> std::path::PathBuf {
        self.dir.join("api.pem")
    }

    pub fn api_key(&self) -> std::path::PathBuf {
        self.dir.join("api.key")
    }

    /// Issues a server certificate (1 year) for these host names and addresses; the PKI is
    /// created first when it does not exist yet.
    pub fn issue_api_cert(&self, names: &[String]) -> Result<(), PkiError> {
        if !self.ca_cert().exists() {
            self.init()?;
            tracing::info!(
                "created the PKI in {} for the API's HTTPS certificate",
                self.dir.display()
            );
        }
        let key = KeyPair::generate().map_err(cert_err)?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(cert_err)?;
        let first = names.first().map_or("localhost", String::as_str);
        params.distinguished_name = name(first);
        for n in names {
            let san = match n.parse::<std::net::IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => {
                    SanType::DnsName(n.clone().try_into().map_err(|e: rcgen::Error| {
                        PkiError::Cert(format!("host name `{n}`: {e}"))
                    })?)
                }
            };
            if !params.subject_alt_names.contains(&san) {
                params.subject_alt_names.push(san);
            }
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        validity(&mut params, Duration::from_secs(365 * 86400));
        let cert = params.signed_by(&key, &self.issuer()?).map_err(cert_err)?;
        self.write_file(&self.api_key(), &key.serialize_pem(), true)?;
        // The chain: the server's certificate, then the CA's.
        let chain = format!("{}{}", cert.pem(), self.read(&self.ca_cert())?);
        self.write_file(&self.api_cert(), &chain, false)
    }
}
