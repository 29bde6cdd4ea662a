//! The certificates the controller's CA revoked (`tls: { crl: crl.pem }`, copied from the
//! controller's `pki/crl.pem`): a client presenting one gets nothing. The file is read
//! again when it changes, so a new CRL takes effect without a restart.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::SystemTime;

/// The revoked serial numbers, as the CRL file last read gave them.
pub struct Revoked {
    path: Option<PathBuf>,
    /// A plain mutex: held only to compare and swap the cache, never across an await.
    cache: Mutex<(Option<SystemTime>, HashSet<Vec<u8>>)>,
}

impl Revoked {
    pub fn new(path: Option<PathBuf>) -> Revoked {
        Revoked {
            path,
            cache: Mutex::new((None, HashSet::new())),
        }
    }

    /// Whether the serial number (as the certificate holds it) is revoked. A CRL that
    /// cannot be read refuses every client (fail closed), and says why.
    pub fn contains(&self, serial: &[u8]) -> Result<bool, String> {
        let Some(path) = &self.path else {
            return Ok(false);
        };
        let modified = std::fs::metadata(path)
            .and_then(|m| m.modified())
            .map_err(|e| format!("CRL {}: {e}", path.display()))?;
        let mut cache = self.cache.lock().expect("poisoned");
        if cache.0 != Some(modified) {
            let pem = std::fs::read(path).map_err(|e| format!("CRL {}: {e}", path.display()))?;
            let (_, p) = x509_parser::pem::parse_x509_pem(&pem)
                .map_err(|e| format!("CRL {}: {e}", path.display()))?;
            let (_, crl) = x509_parser::parse_x509_crl(&p.contents)
                .map_err(|e| format!("CRL {}: {e}", path.display()))?;
            let serials = crl
                .iter_revoked_certificates()
                .map(|r| r.raw_serial().to_vec())
                .collect();
            *cache = (Some(modified), serials);
        }
        Ok(cache.1.contains(serial))
    }
}
