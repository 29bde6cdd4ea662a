//! Revocation: every certificate `pki sign` issued is kept (public) under `issued/`;
//! `pki revoke` lists the revoked serials in `revoked.txt` and signs `crl.pem`, which the
//! controller's agent connections verify against and agents read (`tls: crl`).

use std::path::PathBuf;
use std::time::Duration;

use super::{CONTROLLER_NAME, Pki, PkiError, cert_err};

impl Pki {
    /// The certificate revocation list agents read (`tls: crl`) and the controller checks.
    pub fn crl(&self) -> PathBuf {
        self.dir.join("crl.pem")
    }

    /// Revokes every certificate issued to `who` (an agent's name, `controller`, or a
    /// serial number in hex) and writes the CRL again; returns the serials revoked.
    pub fn revoke(&self, who: &str) -> Result<Vec<String>, PkiError> {
        let mut serials = Vec::new();
        if who == CONTROLLER_NAME || who == "controller" {
            let pem = self.read(&self.controller_cert())?;
            serials.push(cert_serial(&pem)?);
        }
        if let Ok(entries) = std::fs::read_dir(self.dir.join("issued")) {
            for e in entries.flatten() {
                let file = e.file_name().to_string_lossy().into_owned();
                let Some((serial, rest)) = file.split_once('.') else {
                    continue;
                };
                let name = rest.trim_end_matches(".pem");
                if name == who || serial.eq_ignore_ascii_case(who) {
                    serials.push(serial.to_ascii_lowercase());
                }
            }
        }
        if serials.is_empty() {
            return Err(PkiError::Cert(format!(
                "no certificate issued to `{who}` (an agent's name, `controller`, or a serial number)"
            )));
        }
        let list = self.dir.join("revoked.txt");
        let mut known = std::fs::read_to_string(&list).unwrap_or_default();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        for s in &serials {
            if !known
                .lines()
                .any(|l| l.split_whitespace().next() == Some(s.as_str()))
            {
                known.push_str(&format!("{s} {now} {who}\n"));
            }
        }
        self.write_file(&list, &known, false)?;
        self.write_crl(&known)?;
        Ok(serials)
    }

    /// The CRL of every serial in `revoked` (one a line: serial, Unix time, name), valid a
    /// year: `controller pki revoke` writes it again each time.
    fn write_crl(&self, revoked: &str) -> Result<(), PkiError> {
        let now = std::time::SystemTime::now();
        let revoked_certs = revoked
            .lines()
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                let serial = hex::decode(w.next()?).ok()?;
                let at = w.next()?.parse::<u64>().ok()?;
                Some(rcgen::RevokedCertParams {
                    serial_number: serial.into(),
                    revocation_time: (std::time::UNIX_EPOCH + Duration::from_secs(at)).into(),
                    reason_code: None,
                    invalidity_date: None,
                })
            })
            .collect();
        let params = rcgen::CertificateRevocationListParams {
            this_update: (now - Duration::from_secs(3600)).into(),
            next_update: (now + Duration::from_secs(365 * 86400)).into(),
            crl_number: rcgen::SerialNumber::from(
                now.duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(1),
            ),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: rcgen::KeyIdMethod::Sha256,
        };
        let crl = params.signed_by(&self.issuer()?).map_err(cert_err)?;
        self.write_file(&self.crl(), &crl.pem().map_err(cert_err)?, false)
    }
}

/// A PEM certificate's serial number, in lower-case hex.
pub fn cert_serial(pem: &str) -> Result<String, PkiError> {
    let (_, p) = x509_parser::pem::parse_x509_pem(pem.as_bytes())
        .map_err(|e| PkiError::Cert(format!("not a PEM certificate: {e}")))?;
    let cert = p
        .parse_x509()
        .map_err(|e| PkiError::Cert(format!("not an X.509 certificate: {e}")))?;
    Ok(hex::encode(cert.raw_serial()))
}
