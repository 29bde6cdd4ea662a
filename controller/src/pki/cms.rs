//! Encrypted results: CMS AuthEnvelopedData (RFC 5083, `.p7m`) for the holders of
//! certificates, as `openssl cms -decrypt -inform DER` of OpenSSL 3 reads it: AES-256-GCM
//! content (RFC 5084), so a changed byte fails to decrypt instead of giving altered
//! content; RSA recipients by RSA-OAEP (SHA-256), EC recipients by ECDH key agreement. Also the key
//! pairs the controller makes for their owners (only the certificate is kept).
//! OpenSSL (Debian's libssl) does the cryptography; this file only chooses.

use std::ffi::{c_int, c_uint, c_void};
use std::ptr;

use foreign_types::ForeignType;
use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::cms::CmsContentInfo;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkcs12::Pkcs12;
use openssl::pkey::{Id, PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{BasicConstraints, KeyUsage};
use openssl::x509::{X509, X509KeyUsage, X509NameBuilder};

/// What went wrong, said for the key or file at fault.
#[derive(Debug, thiserror::Error)]
pub enum CmsError {
    #[error("{0}")]
    Bad(String),
    #[error("openssl: {0}")]
    Ssl(#[from] openssl::error::ErrorStack),
}

/// A certificate's facts, as the keys list shows them.
#[derive(Debug, Clone)]
pub struct CertInfo {
    pub cn: String,
    pub issuer: String,
    pub serial: String,
    /// `RSA 3072` or `EC P-256`.
    pub key_type: String,
    /// Unix milliseconds.
    pub not_after: i64,
}

// Functions of libcrypto the `openssl-sys` crate does not declare: adding recipients one
// by one is how a recipient's key-transport parameters (OAEP) are chosen. The only unsafe
// code of the workspace (the lint is `deny` for this), with `encrypt` below.
#[allow(unsafe_code)]
unsafe extern "C" {
    fn CMS_add1_recipient_cert(
        cms: *mut openssl_sys::CMS_ContentInfo,
        recip: *mut openssl_sys::X509,
        flags: c_uint,
    ) -> *mut c_void;
    fn CMS_RecipientInfo_get0_pkey_ctx(ri: *mut c_void) -> *mut openssl_sys::EVP_PKEY_CTX;
    fn EVP_PKEY_CTX_set_ecdh_kdf_md(
        ctx: *mut openssl_sys::EVP_PKEY_CTX,
        md: *const openssl_sys::EVP_MD,
    ) -> c_int;
    fn CMS_final(
        cms: *mut openssl_sys::CMS_ContentInfo,
        data: *mut openssl_sys::BIO,
        dcont: *mut openssl_sys::BIO,
        flags: c_uint,
    ) -> c_int;
}

/// Reads a PEM certificate and checks it can receive encrypted files now.
pub fn read_cert(pem: &[u8], what: &str, now_ms: i64) -> Result<(X509, CertInfo), CmsError> {
    let cert = X509::from_pem(pem).map_err(|_| {
        CmsError::Bad(format!(
            "{what}: not a PEM certificate (-----BEGIN CERTIFICATE-----)"
        ))
    })?;
    let info = cert_info(&cert)?;
    if info.not_after <= now_ms {
        return Err(CmsError::Bad(format!(
            "{what}: the certificate expired on {}",
            gmt(info.not_after)
        )));
    }
    Ok((cert, info))
}

/// A certificate's CN, issuer, serial, key type and expiry; refused when its key cannot
/// receive encrypted files.
pub fn cert_info(cert: &X509) -> Result<CertInfo, CmsError> {
    let key = cert.public_key()?;
    let key_type = match key.id() {
        Id::RSA if key.bits() >= 2048 => format!("RSA {}", key.bits()),
        Id::RSA => {
            return Err(CmsError::Bad(format!(
                "an RSA key of {} bits: at least 2048 are needed",
                key.bits()
            )));
        }
        Id::EC => {
            let curve = key.ec_key()?.group().curve_name();
            match curve {
                Some(Nid::X9_62_PRIME256V1) => "EC P-256".to_string(),
                Some(Nid::SECP384R1) => "EC P-384".to_string(),
                Some(Nid::SECP521R1) => "EC P-521".to_string(),
                _ => {
                    return Err(CmsError::Bad(
                        "an EC key on a curve other than P-256, P-384 or P-521".into(),
                    ));
                }
            }
        }
        other => {
            return Err(CmsError::Bad(format!(
                "a {} key: only RSA and EC keys can receive encrypted files",
                key_name(other)
            )));
        }
    };
    // A certificate that says what its key is for must say it may receive keys: a CA's
    // (keyCertSign), a signing one (digitalSignature) cannot. Without the extension, any
    // use is allowed (as `openssl req -x509` makes them).
    let (needed, needed_name) = if key.id() == Id::RSA {
        (X509KeyUsage::KEY_ENCIPHERMENT, "keyEncipherment")
    } else {
        (X509KeyUsage::KEY_AGREEMENT, "keyAgreement")
    };
    if cert.key_usage().is_some_and(|ku| !ku.contains(needed)) {
        return Err(CmsError::Bad(format!(
            "the certificate's key usage does not include {needed_name}: its key is not for receiving encrypted files (a CA's or a signing certificate?)"
        )));
    }
    let name = |n: &openssl::x509::X509NameRef| {
        n.entries()
            .map(|e| {
                let k = e.object().nid().short_name().unwrap_or("?");
                let v = e.data().to_string().unwrap_or_default();
                format!("{k}={v}")
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let cn = cert
        .subject_name()
        .entries_by_nid(Nid::COMMONNAME)
        .next()
        .and_then(|e| e.data().to_string().ok())
        .unwrap_or_default();
    let epoch = Asn1Time::from_unix(0)?;
    let d = epoch.diff(cert.not_after())?;
    Ok(CertInfo {
        cn,
        issuer: name(cert.issuer_name()),
        serial: cert.serial_number().to_bn()?.to_hex_str()?.to_string(),
        key_type,
        not_after: (i64::from(d.days) * 86_400 + i64::from(d.secs)) * 1000,
    })
}

fn key_name(id: Id) -> &'static str {
    match id {
        Id::ED25519 => "Ed25519",
        Id::ED448 => "Ed448",
        Id::DSA => "DSA",
        Id::DH => "DH",
        _ => "unsupported",
    }
}

/// Unix milliseconds as `2027-12-02 10:30:00 GMT`.
pub fn gmt(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S GMT").to_string())
        .unwrap_or_default()
}

/// The largest content encrypted or decrypted (in memory, through OpenSSL's memory
/// buffers, which stop near 1.5 GiB).
pub const MAX_CONTENT: u64 = 1 << 30;

/// `data` as CMS AuthEnvelopedData (DER, AES-256-GCM) for every certificate in `to`.
#[allow(unsafe_code)]
pub fn encrypt(data: &[u8], to: &[X509]) -> Result<Vec<u8>, CmsError> {
    if to.is_empty() {
        return Err(CmsError::Bad("no recipient".into()));
    }
    if data.len() as u64 > MAX_CONTENT {
        return Err(CmsError::Bad("too large to encrypt (1 GiB at most)".into()));
    }
    // Which recipients take OAEP parameters, known before any OpenSSL object exists.
    let mut oaep = Vec::with_capacity(to.len());
    for cert in to {
        oaep.push(cert.public_key()?.id() == Id::RSA);
    }
    // SAFETY: every pointer comes from OpenSSL or from a live Rust value for the length
    // of the call; the CMS structure is owned by `CmsContentInfo` once made (freed on
    // every return), the recipient infos are borrowed from it, and the input BIO (a
    // read-only view of `data`) is freed on every path after it was made.
    unsafe {
        let input =
            openssl_sys::BIO_new_mem_buf(data.as_ptr() as *const c_void, data.len() as c_int);
        if input.is_null() {
            return Err(openssl::error::ErrorStack::get().into());
        }
        let flags = openssl_sys::CMS_PARTIAL | openssl_sys::CMS_BINARY;
        let raw = openssl_sys::CMS_encrypt(
            ptr::null_mut(),
            input,
            openssl_sys::EVP_aes_256_gcm(),
            flags,
        );
        if raw.is_null() {
            openssl_sys::BIO_free_all(input);
            return Err(openssl::error::ErrorStack::get().into());
        }
        let cms = CmsContentInfo::from_ptr(raw);
        for (cert, rsa) in to.iter().zip(oaep) {
            let ri =
                CMS_add1_recipient_cert(cms.as_ptr(), cert.as_ptr(), openssl_sys::CMS_KEY_PARAM);
            if ri.is_null() {
                openssl_sys::BIO_free_all(input);
                return Err(openssl::error::ErrorStack::get().into());
            }
            let ctx = CMS_RecipientInfo_get0_pkey_ctx(ri);
            if ctx.is_null() {
                openssl_sys::BIO_free_all(input);
                return Err(CmsError::Bad("a recipient without a key context".into()));
            }
            if !rsa {
                // ECDH: the shared secret goes through an X9.63 KDF with SHA-256 (not
                // OpenSSL's default SHA-1).
                if EVP_PKEY_CTX_set_ecdh_kdf_md(ctx, openssl_sys::EVP_sha256()) <= 0 {
                    openssl_sys::BIO_free_all(input);
                    return Err(openssl::error::ErrorStack::get().into());
                }
                continue;
            }
            if openssl_sys::EVP_PKEY_CTX_set_rsa_padding(ctx, openssl_sys::RSA_PKCS1_OAEP_PADDING)
                <= 0
                || openssl_sys::EVP_PKEY_CTX_set_rsa_oaep_md(
                    ctx,
                    openssl_sys::EVP_sha256() as *mut _,
                ) <= 0
            {
                openssl_sys::BIO_free_all(input);
                return Err(openssl::error::ErrorStack::get().into());
            }
        }
        let done = CMS_final(
            cms.as_ptr(),
            input,
            ptr::null_mut(),
            openssl_sys::CMS_BINARY,
        );
        openssl_sys::BIO_free_all(input);
        if done != 1 {
            return Err(openssl::error::ErrorStack::get().into());
        }
        Ok(cms.to_der()?)
    }
}

/// A private key, and its certificate when the file holds one, from a PKCS#12 file (with
/// its passphrase) or a PEM file (the key encrypted with the passphrase, or not).
pub fn read_private_key(
    bytes: &[u8],
    passphrase: &str,
    what: &str,
) -> Result<(PKey<Private>, Option<X509>), CmsError> {
    if passphrase.contains('\0') {
        return Err(CmsError::Bad(format!(
            "{what}: a passphrase cannot hold a NUL character"
        )));
    }
    if bytes.starts_with(b"-----") {
        let key = if passphrase.is_empty() {
            PKey::private_key_from_pem(bytes)
        } else {
            PKey::private_key_from_pem_passphrase(bytes, passphrase.as_bytes())
        };
        let key = key.map_err(|_| {
            CmsError::Bad(format!("{what}: not a private key, or not this passphrase"))
        })?;
        return Ok((key, X509::from_pem(bytes).ok()));
    }
    let p12 = Pkcs12::from_der(bytes)
        .map_err(|_| CmsError::Bad(format!("{what}: neither a PKCS#12 file nor a PEM key")))?;
    let parsed = p12
        .parse2(passphrase)
        .map_err(|_| CmsError::Bad(format!("{what}: wrong passphrase")))?;
    let key = parsed
        .pkey
        .ok_or_else(|| CmsError::Bad(format!("{what}: the PKCS#12 file holds no private key")))?;
    Ok((key, parsed.cert))
}

/// Decrypts a `.p7m` (DER, or PEM) with one recipient's private key; with its
/// certificate, the recipient is found by issuer and serial (without it a wrong RSA key
/// cannot always be told from a right one: OpenSSL then answers with noise, by design).
pub fn decrypt(p7m: &[u8], key: &PKey<Private>, cert: Option<&X509>) -> Result<Vec<u8>, CmsError> {
    if p7m.len() as u64 > MAX_CONTENT + (1 << 20) {
        return Err(CmsError::Bad("too large to decrypt (1 GiB at most)".into()));
    }
    let cms = if p7m.starts_with(b"-----") {
        CmsContentInfo::from_pem(p7m)
    } else {
        CmsContentInfo::from_der(p7m)
    }
    .map_err(|_| CmsError::Bad("not a CMS file (.p7m)".into()))?;
    const CHANGED: &str = "the file was changed after it was encrypted (its authentication tag does not match): nothing of it is trusted";
    match cert {
        Some(c) => cms.decrypt(key, c).map_err(|_| {
            CmsError::Bad(if names_recipient(p7m, c) && same_key(key, c) {
                CHANGED.into()
            } else {
                "this key is not one of the file's recipients".into()
            })
        }),
        None => cms.decrypt_without_cert_check(key).map_err(|_| {
            CmsError::Bad(
                "this key is not one of the file's recipients, or the file was changed after it was encrypted (give the key's certificate too to tell which)".into(),
            )
        }),
    }
}

/// Does the file name `cert` as a recipient (its issuer and serial number, as OpenSSL
/// writes recipients)? Only to word an error: nothing is trusted from it.
fn names_recipient(p7m: &[u8], cert: &X509) -> bool {
    let issuer = cert.issuer_name().to_der().unwrap_or_default();
    let serial = cert
        .serial_number()
        .to_bn()
        .map(|b| b.to_vec())
        .unwrap_or_default();
    let has = |needle: &[u8]| !needle.is_empty() && p7m.windows(needle.len()).any(|w| w == needle);
    has(&issuer) && has(&serial)
}

/// Is `key` the private half of `cert`'s public key?
fn same_key(key: &PKey<Private>, cert: &X509) -> bool {
    cert.public_key().is_ok_and(|p| key.public_eq(&p))
}

/// Which key pair `generate` makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Rsa3072,
    EcP256,
}

/// A new key pair and its self-signed certificate for `cn`, valid `days` days.
pub fn generate(cn: &str, days: u32, kind: KeyKind) -> Result<(PKey<Private>, X509), CmsError> {
    let key = match kind {
        KeyKind::Rsa3072 => PKey::from_rsa(Rsa::generate(3072)?)?,
        KeyKind::EcP256 => {
            let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
            PKey::from_ec_key(EcKey::generate(&group)?)?
        }
    };
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_nid(Nid::COMMONNAME, cn)?;
    let name = name.build();
    let mut b = X509::builder()?;
    b.set_version(2)?;
    let mut serial = BigNum::new()?;
    serial.rand(128, MsbOption::MAYBE_ZERO, false)?;
    let serial = serial.to_asn1_integer()?;
    b.set_serial_number(&serial)?;
    b.set_subject_name(&name)?;
    b.set_issuer_name(&name)?;
    b.set_pubkey(&key)?;
    b.set_not_before(Asn1Time::days_from_now(0)?.as_ref())?;
    b.set_not_after(Asn1Time::days_from_now(days)?.as_ref())?;
    b.append_extension(BasicConstraints::new().critical().build()?)?;
    let usage = match kind {
        KeyKind::Rsa3072 => KeyUsage::new().critical().key_encipherment().build()?,
        KeyKind::EcP256 => KeyUsage::new().critical().key_agreement().build()?,
    };
    b.append_extension(usage)?;
    b.sign(&key, MessageDigest::sha256())?;
    Ok((key, b.build()))
}

/// The key and certificate as a PKCS#12 file protected by `passphrase`.
/// Refuses a passphrase OpenSSL cannot take (a NUL character).
fn check_passphrase(p: &str) -> Result<(), CmsError> {
    if p.contains('\0') {
        return Err(CmsError::Bad(
            "a passphrase cannot hold a NUL character".into(),
        ));
    }
    Ok(())
}

pub fn to_pkcs12(
    name: &str,
    key: &PKey<Private>,
    cert: &X509,
    passphrase: &str,
) -> Result<Vec<u8>, CmsError> {
    check_passphrase(passphrase)?;
    let p12 = Pkcs12::builder()
        .name(name)
        .pkey(key)
        .cert(cert)
        .build2(passphrase)?;
    Ok(p12.to_der()?)
}

/// The key as PKCS#8 PEM encrypted with `passphrase` (AES-256-CBC), and its certificate.
pub fn to_pem(key: &PKey<Private>, cert: &X509, passphrase: &str) -> Result<Vec<u8>, CmsError> {
    check_passphrase(passphrase)?;
    let mut out = key.private_key_to_pem_pkcs8_passphrase(
        openssl::symm::Cipher::aes_256_cbc(),
        passphrase.as_bytes(),
    )?;
    out.extend(cert.to_pem()?);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_are_authenticated_and_a_change_is_told_apart() {
        let (key, cert) = generate("holder", 10, KeyKind::Rsa3072).unwrap();
        let (other_key, other) = generate("other", 10, KeyKind::EcP256).unwrap();
        let der = encrypt(b"hello archive", std::slice::from_ref(&cert)).unwrap();
        // AuthEnvelopedData (RFC 5083), AES-256-GCM (RFC 5084).
        let text = String::from_utf8_lossy(&der).to_string();
        let oid = [
            0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x10, 0x01, 0x17,
        ];
        assert!(der.windows(oid.len()).any(|w| w == oid), "{text}");
        assert_eq!(decrypt(&der, &key, Some(&cert)).unwrap(), b"hello archive");
        for at in [der.len() - 20, der.len() - 40] {
            let mut bad = der.clone();
            bad[at] ^= 1;
            let e = decrypt(&bad, &key, Some(&cert)).unwrap_err().to_string();
            assert!(e.contains("changed after it was encrypted"), "{e}");
        }
        let e = decrypt(&der, &other_key, Some(&other))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not one of the file's recipients"), "{e}");
    }
}
