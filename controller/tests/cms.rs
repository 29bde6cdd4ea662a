//! Encrypted results read by the real `openssl cms` (and the reverse): RSA (OAEP) and EC
//! (ECDH) recipients from certificates made by `openssl req`, a key pair made by ordo as
//! PKCS#12, a recipient that is not one, and each bad input said for what it is.

use std::path::Path;
use std::process::Command;

use ordo_controller::pki::cms::{self, KeyKind};

fn sh(dir: &Path, cmd: &str) -> std::process::Output {
    Command::new("/bin/sh")
        .arg("-c")
        .arg(cmd)
        .current_dir(dir)
        .output()
        .expect("sh")
}

fn ok(dir: &Path, cmd: &str) {
    let o = sh(dir, cmd);
    assert!(
        o.status.success(),
        "`{cmd}`: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

const NOW: i64 = 1_796_000_000_000;

#[test]
fn openssl_decrypts_what_ordo_encrypts_for_rsa_and_ec_recipients() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    ok(
        dir,
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout rsa.key -out rsa.pem -days 30 -subj /CN=alice 2>/dev/null",
    );
    ok(
        dir,
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ec.key -out ec.pem -days 30 -subj /CN=bob 2>/dev/null",
    );
    ok(
        dir,
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout other.key -out other.pem -days 30 -subj /CN=eve 2>/dev/null",
    );
    let now = chrono::Utc::now().timestamp_millis();
    let (rsa, info) =
        cms::read_cert(&std::fs::read(dir.join("rsa.pem")).unwrap(), "alice", now).unwrap();
    assert_eq!(
        (info.cn.as_str(), info.key_type.as_str()),
        ("alice", "RSA 2048")
    );
    assert!(info.issuer.contains("CN=alice"));
    let (ec, info) =
        cms::read_cert(&std::fs::read(dir.join("ec.pem")).unwrap(), "bob", now).unwrap();
    assert_eq!(info.key_type, "EC P-256");
    // ordo's own pair, handed to its owner as PKCS#12.
    let (key, cert) = cms::generate("backup", 30, KeyKind::Rsa3072).unwrap();
    std::fs::write(
        dir.join("backup.p12"),
        cms::to_pkcs12("backup", &key, &cert, "s3cret pass").unwrap(),
    )
    .unwrap();

    let data: Vec<u8> = (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect();
    std::fs::write(dir.join("plain.bin"), &data).unwrap();
    let p7m = cms::encrypt(&data, &[rsa, ec, cert]).unwrap();
    std::fs::write(dir.join("f.p7m"), &p7m).unwrap();
    // The structure says OAEP for the RSA recipient and key agreement for the EC one.
    let print = sh(dir, "openssl cms -cmsout -print -inform DER -in f.p7m");
    let text = String::from_utf8_lossy(&print.stdout);
    assert!(
        text.contains("rsaesOaep") && text.contains("aes-256-gcm"),
        "{text}"
    );
    assert!(
        text.contains("kari") || text.contains("originator"),
        "{text}"
    );
    assert!(
        text.contains("sha256kdf"),
        "ECDH with a SHA-256 KDF: {text}"
    );
    for key in ["rsa.key", "ec.key"] {
        ok(
            dir,
            &format!("openssl cms -decrypt -inform DER -in f.p7m -inkey {key} -out out.bin"),
        );
        assert_eq!(std::fs::read(dir.join("out.bin")).unwrap(), data, "{key}");
    }
    ok(
        dir,
        "openssl pkcs12 -in backup.p12 -nocerts -nodes -passin 'pass:s3cret pass' -out backup.key 2>/dev/null",
    );
    ok(
        dir,
        "openssl cms -decrypt -inform DER -in f.p7m -inkey backup.key -out out.bin",
    );
    assert_eq!(std::fs::read(dir.join("out.bin")).unwrap(), data);
    let refused = sh(
        dir,
        "openssl cms -decrypt -inform DER -in f.p7m -inkey other.key -out no.bin",
    );
    assert!(
        !refused.status.success(),
        "a key not among the recipients decrypted it"
    );

    // And ordo reads it back with each private key.
    let p12 = std::fs::read(dir.join("backup.p12")).unwrap();
    let (k, c) = cms::read_private_key(&p12, "s3cret pass", "backup.p12").unwrap();
    assert!(c.is_some(), "the PKCS#12 holds the certificate");
    assert_eq!(cms::decrypt(&p7m, &k, c.as_ref()).unwrap(), data);
    let k =
        cms::read_private_key(&std::fs::read(dir.join("ec.key")).unwrap(), "", "ec.key").unwrap();
    assert_eq!(cms::decrypt(&p7m, &k.0, None).unwrap(), data);
    let k = cms::read_private_key(
        &std::fs::read(dir.join("other.key")).unwrap(),
        "",
        "other.key",
    )
    .unwrap();
    // With its certificate, a key that is not a recipient is told apart for sure.
    let (other, _) =
        cms::read_cert(&std::fs::read(dir.join("other.pem")).unwrap(), "eve", now).unwrap();
    assert!(
        cms::decrypt(&p7m, &k.0, Some(&other))
            .unwrap_err()
            .to_string()
            .contains("not one of the file's recipients")
    );

    // What openssl encrypts, ordo decrypts.
    ok(
        dir,
        "openssl cms -encrypt -binary -aes256 -outform DER -in plain.bin -out o.p7m rsa.pem",
    );
    let k =
        cms::read_private_key(&std::fs::read(dir.join("rsa.key")).unwrap(), "", "rsa.key").unwrap();
    assert_eq!(
        cms::decrypt(&std::fs::read(dir.join("o.p7m")).unwrap(), &k.0, None).unwrap(),
        data
    );
}

#[test]
fn bad_keys_and_files_are_named() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let e = cms::read_cert(
        b"-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n",
        "alice",
        NOW,
    )
    .unwrap_err();
    assert!(
        e.to_string().starts_with("alice: not a PEM certificate"),
        "{e}"
    );
    ok(
        dir,
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout old.key -out old.pem -days 1 -subj /CN=old 2>/dev/null",
    );
    let far = NOW + 400 * 86_400_000_000;
    let e = cms::read_cert(&std::fs::read(dir.join("old.pem")).unwrap(), "old", far).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("old: the certificate expired on ")
            && e.to_string().ends_with(" GMT"),
        "{e}"
    );
    ok(
        dir,
        "openssl req -x509 -newkey ed25519 -nodes -keyout ed.key -out ed.pem -days 30 -subj /CN=ed 2>/dev/null",
    );
    let now = chrono::Utc::now().timestamp_millis();
    let e = cms::read_cert(&std::fs::read(dir.join("ed.pem")).unwrap(), "ed", now).unwrap_err();
    assert!(
        e.to_string().contains("Ed25519 key: only RSA and EC keys"),
        "{e}"
    );
    // A certificate whose key usage leaves out receiving keys: a signing one, a CA's.
    for (name, key, usage, good) in [
        ("sign", "rsa:2048", "digitalSignature", false),
        ("ca", "rsa:2048", "keyCertSign,cRLSign", false),
        ("enc", "rsa:2048", "digitalSignature,keyEncipherment", true),
        (
            "ecsign",
            "ec -pkeyopt ec_paramgen_curve:P-256",
            "digitalSignature",
            false,
        ),
        (
            "ecdh",
            "ec -pkeyopt ec_paramgen_curve:P-256",
            "keyAgreement",
            true,
        ),
    ] {
        ok(
            dir,
            &format!(
                "openssl req -x509 -newkey {key} -nodes -keyout {name}.key -out {name}.pem -days 30 -subj /CN={name} -addext 'keyUsage=critical,{usage}' 2>/dev/null"
            ),
        );
        let got = cms::read_cert(
            &std::fs::read(dir.join(format!("{name}.pem"))).unwrap(),
            name,
            now,
        );
        match (got, good) {
            (Ok(_), true) => {}
            (Err(e), false) => assert!(
                e.to_string().contains("key usage does not include")
                    && e.to_string().contains("not for receiving encrypted files"),
                "{name}: {e}"
            ),
            (got, _) => panic!("{name}: {:?}", got.map(|_| ()).map_err(|e| e.to_string())),
        }
    }
    let (key, cert) = cms::generate("k", 30, KeyKind::EcP256).unwrap();
    let p12 = cms::to_pkcs12("k", &key, &cert, "right").unwrap();
    let e = cms::read_private_key(&p12, "wrong", "k.p12").unwrap_err();
    assert_eq!(e.to_string(), "k.p12: wrong passphrase");
    let e = cms::decrypt(b"garbage", &key, None).unwrap_err();
    assert_eq!(e.to_string(), "not a CMS file (.p7m)");
}
