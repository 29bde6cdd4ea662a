//! Encryption keys end to end: certificates made by `openssl req` imported, a key pair
//! made by ordo for its owner, a backup key; the VIP-shaped job with `archive: {encrypt}`
//! mails an encrypted archive that the real `openssl cms` decrypts with each key (and
//! `controller decrypt` with the PKCS#12); a key not among the recipients cannot; bad
//! input named, nothing half-written.

use std::path::{Path, PathBuf};
use std::process::Command;

use ordo_tests::project::{Project, untar_gz};

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

/// An RSA certificate that expired yesterday (Python's cryptography; openssl req cannot).
fn expired_cert(dir: &Path) {
    ok(
        dir,
        r#"python3 - <<'PY'
import datetime
from cryptography import x509
from cryptography.x509.oid import NameOID
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
k = rsa.generate_private_key(public_exponent=65537, key_size=2048)
n = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "old")])
now = datetime.datetime.now(datetime.timezone.utc)
c = (x509.CertificateBuilder().subject_name(n).issuer_name(n).public_key(k.public_key())
     .serial_number(x509.random_serial_number())
     .not_valid_before(now - datetime.timedelta(days=30))
     .not_valid_after(now - datetime.timedelta(days=1)).sign(k, hashes.SHA256()))
open("old.pem", "wb").write(c.public_bytes(serialization.Encoding.PEM))
PY"#,
    );
}

#[test]
fn the_vip_job_mails_an_archive_only_its_keys_open() {
    let p = Project::new();
    let dir = p.path().to_path_buf();
    let marker = format!("/var/tmp/ordo-keys-{}.txt", std::process::id());
    p.write("ordo.yaml", "mail:\n  from: vip@example.com\n");
    p.write("inventory.yaml", "servers:\n  vip: { transport: local }\n");
    p.write(
        "jobs/vip/collect.yaml",
        &format!(
            "targets: all\nsteps:\n  - command: 'echo \"secret result of $ORDO_NODE_NAME\" > {marker}'\ncollect: [\"{marker}\"]\narchive: {{ encrypt: [alice, bob] }}\nmail: {{ to: [ops@example.com] }}\n"
        ),
    );
    ok(
        &dir,
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout alice.key -out alice.pem -days 365 -subj /CN=Alice 2>/dev/null",
    );
    ok(
        &dir,
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout bob.key -out bob.pem -days 20 -subj /CN=Bob 2>/dev/null",
    );
    ok(
        &dir,
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout eve.key -out eve.pem -days 365 -subj /CN=Eve 2>/dev/null",
    );
    keys_are_checked_when_added(&p, &dir);
    let (exec_dir, p7m) = the_run_encrypts_and_mails_the_archive(&p, &dir);
    every_recipient_and_only_them_opens_it(&p, &dir);
    a_changed_file_decrypts_nowhere(&p, &dir);
    assert!(exec_dir.join(&p7m).exists());
    let _ = std::fs::remove_file(&marker);
}

/// Keys added, generated and refused; `check` names what a job needs.
fn keys_are_checked_when_added(p: &Project, dir: &Path) {
    // Before any key exists, check names the job's missing key at its place.
    let check = p.controller(&["check"]).expect_code(2);
    assert!(
        check.stderr.contains("collect.yaml:5:")
            && check.stderr.contains("key `alice` does not exist"),
        "{}",
        check.stderr
    );

    p.controller(&[
        "keys",
        "add",
        "alice",
        "--cert",
        dir.join("alice.pem").to_str().unwrap(),
    ])
    .expect_code(0);
    p.controller(&[
        "keys",
        "add",
        "bob",
        "--cert",
        dir.join("bob.pem").to_str().unwrap(),
    ])
    .expect_code(0);
    p.controller(&[
        "keys",
        "add",
        "eve",
        "--cert",
        dir.join("eve.pem").to_str().unwrap(),
    ])
    .expect_code(0);
    let check = p.controller(&["check"]).expect_code(0);
    assert!(check.stderr.contains("no backup key"), "{}", check.stderr);
    assert!(
        check.stderr.contains("key `bob` expires on"),
        "within 30 days: {}",
        check.stderr
    );
    let made = p.controller_stdin(
        &[
            "keys",
            "generate",
            "safe",
            "--cn",
            "Backup VIP",
            "--backup",
            "--out",
            dir.join("safe.p12").to_str().unwrap(),
            "--passphrase-stdin",
        ],
        "correct horse battery\n",
    );
    assert_eq!(made.code, 0, "{}{}", made.stdout, made.stderr);
    let mode = std::fs::metadata(dir.join("safe.p12")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
        0o600
    );
    let list = p.controller(&["keys", "list"]).expect_code(0).stdout;
    for want in [
        "alice",
        "Alice",
        "RSA 2048",
        "EC P-256",
        "(soon)",
        "Backup VIP",
        "RSA 3072",
        "every encryption",
        "vip/collect",
    ] {
        assert!(list.contains(want), "`{want}` in {list}");
    }

    // Bad input: each named, nothing added.
    expired_cert(dir);
    let old = p
        .controller(&[
            "keys",
            "add",
            "old",
            "--cert",
            dir.join("old.pem").to_str().unwrap(),
        ])
        .expect_code(2);
    assert!(
        old.stderr.contains("key `old`")
            && old.stderr.contains("expired on")
            && old.stderr.contains("GMT"),
        "{}",
        old.stderr
    );
    std::fs::write(
        dir.join("bad.pem"),
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let bad = p
        .controller(&[
            "keys",
            "add",
            "bad",
            "--cert",
            dir.join("bad.pem").to_str().unwrap(),
        ])
        .expect_code(2);
    assert!(
        bad.stderr.contains("not a PEM certificate"),
        "{}",
        bad.stderr
    );
    ok(
        dir,
        "openssl req -x509 -newkey ed25519 -nodes -keyout ed.key -out ed.pem -days 30 -subj /CN=ed 2>/dev/null",
    );
    let ed = p
        .controller(&[
            "keys",
            "add",
            "ed",
            "--cert",
            dir.join("ed.pem").to_str().unwrap(),
        ])
        .expect_code(2);
    assert!(
        ed.stderr.contains("Ed25519 key: only RSA and EC keys"),
        "{}",
        ed.stderr
    );
    let dup = p
        .controller(&[
            "keys",
            "add",
            "alice",
            "--cert",
            dir.join("eve.pem").to_str().unwrap(),
        ])
        .expect_code(2);
    assert!(dup.stderr.contains("a key named `alice`"), "{}", dup.stderr);
    let list = p.controller(&["keys", "list"]).expect_code(0).stdout;
    assert!(
        !list.contains(" old ") && !list.contains(" bad ") && !list.contains(" ed "),
        "{list}"
    );
    let inuse = p.controller(&["keys", "delete", "alice"]).expect_code(2);
    assert!(
        inuse.stderr.contains("used by vip/collect"),
        "{}",
        inuse.stderr
    );
}

/// The run: the archive is encrypted to alice, bob and the backup key, and mailed; the
/// mailed attachment is written to `mailed.p7m`. The execution's folder and the archive's
/// name.
fn the_run_encrypts_and_mails_the_archive(p: &Project, dir: &Path) -> (PathBuf, String) {
    let run = p
        .controller(&["run", "vip/collect", "--no-progress"])
        .expect_code(0);
    let id = run
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("execution ")?.split(':').next())
        .unwrap()
        .to_string();
    let exec_dir = dir.join("data/executions").join(&id);
    let names: Vec<String> = std::fs::read_dir(&exec_dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let p7m = names
        .iter()
        .find(|n| n.ends_with(".tar.gz.p7m"))
        .unwrap_or_else(|| panic!("{names:?}"));
    assert!(
        !names.iter().any(|n| n.ends_with(".tar.gz")),
        "no plain archive left: {names:?}"
    );
    assert!(
        !exec_dir.join("vip").exists(),
        "nor the collected files in clear: {names:?}"
    );
    let mails: Vec<_> = std::fs::read_dir(dir.join("data/outbox"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
        .collect();
    assert_eq!(mails.len(), 1);
    let raw = std::fs::read(mails[0].path()).unwrap();
    let mail = mail_parser::MessageParser::default().parse(&raw).unwrap();
    let att = mail.attachments().next().expect("the attachment");
    let att_bytes = att.contents().to_vec();
    assert_eq!(
        att_bytes,
        std::fs::read(exec_dir.join(p7m)).unwrap(),
        "the mailed file is the encrypted archive"
    );
    std::fs::write(dir.join("mailed.p7m"), &att_bytes).unwrap();
    (exec_dir.clone(), p7m.clone())
}

/// alice, bob and the backup key open the same archive (OpenSSL, `controller decrypt`);
/// eve, and a wrong passphrase, do not.
fn every_recipient_and_only_them_opens_it(p: &Project, dir: &Path) {
    let mut plains = Vec::new();
    for key in ["alice.key", "bob.key"] {
        ok(
            dir,
            &format!("openssl cms -decrypt -inform DER -in mailed.p7m -inkey {key} -out {key}.tgz"),
        );
        plains.push(std::fs::read(dir.join(format!("{key}.tgz"))).unwrap());
    }
    let refused = sh(
        dir,
        "openssl cms -decrypt -inform DER -in mailed.p7m -inkey eve.key -out eve.tgz",
    );
    assert!(!refused.status.success(), "eve is not a recipient");
    let dec = p.controller_stdin(
        &[
            "decrypt",
            dir.join("mailed.p7m").to_str().unwrap(),
            "--key",
            dir.join("safe.p12").to_str().unwrap(),
            "--out",
            dir.join("safe.tgz").to_str().unwrap(),
            "--passphrase-stdin",
        ],
        "correct horse battery\n",
    );
    assert_eq!(dec.code, 0, "{}{}", dec.stdout, dec.stderr);
    plains.push(std::fs::read(dir.join("safe.tgz")).unwrap());
    assert!(
        plains.windows(2).all(|w| w[0] == w[1]),
        "every key opens the same archive"
    );
    let files = untar_gz(&plains[0]);
    assert!(
        files.values().any(|v| v.contains("secret result of vip")),
        "{:?}",
        files.keys()
    );
    let wrong = p.controller_stdin(
        &[
            "decrypt",
            dir.join("mailed.p7m").to_str().unwrap(),
            "--key",
            dir.join("safe.p12").to_str().unwrap(),
            "--out",
            dir.join("x.tgz").to_str().unwrap(),
            "--passphrase-stdin",
        ],
        "wrong\n",
    );
    assert_eq!(wrong.code, 2);
    assert!(
        wrong.stderr.contains("safe.p12: wrong passphrase"),
        "{}",
        wrong.stderr
    );
    assert!(!dir.join("x.tgz").exists(), "nothing half-written");
}

/// Tamper-evident (AuthEnvelopedData, AES-256-GCM): one byte changed in the encrypted
/// content, and neither OpenSSL nor ordo gives anything out.
fn a_changed_file_decrypts_nowhere(p: &Project, dir: &Path) {
    let att_bytes = std::fs::read(dir.join("mailed.p7m")).unwrap();
    let asn1 = sh(dir, "openssl asn1parse -inform DER -in mailed.p7m");
    assert!(
        String::from_utf8_lossy(&asn1.stdout).contains("id-smime-ct-authEnvelopedData"),
        "{}",
        String::from_utf8_lossy(&asn1.stdout)
    );
    let mut changed = att_bytes.clone();
    let at = changed.len() - 40;
    changed[at] ^= 0x01;
    std::fs::write(dir.join("changed.p7m"), &changed).unwrap();
    let refused = sh(
        dir,
        "openssl cms -decrypt -inform DER -in changed.p7m -inkey alice.key -recip alice.pem -out changed.tgz",
    );
    assert!(!refused.status.success(), "openssl refuses a changed file");
    let pem_with_cert = format!(
        "{}{}",
        std::fs::read_to_string(dir.join("alice.key")).unwrap(),
        std::fs::read_to_string(dir.join("alice.pem")).unwrap()
    );
    std::fs::write(dir.join("alice-both.pem"), pem_with_cert).unwrap();
    let tampered = p.controller(&[
        "decrypt",
        dir.join("changed.p7m").to_str().unwrap(),
        "--key",
        dir.join("alice-both.pem").to_str().unwrap(),
        "--out",
        dir.join("changed-ordo.tgz").to_str().unwrap(),
    ]);
    assert_eq!(tampered.code, 2, "{}{}", tampered.stdout, tampered.stderr);
    assert!(
        tampered.stderr.contains("changed after it was encrypted"),
        "{}",
        tampered.stderr
    );
    assert!(!dir.join("changed-ordo.tgz").exists(), "nothing written");
}

/// The same through the API, for administrators only: the list, a certificate imported,
/// a key pair whose private key is in the one answer, rename and backup, delete refused
/// while a job uses the key.
#[test]
fn keys_through_the_api() {
    use base64::Engine;
    let p = Project::new();
    let dir = p.path().to_path_buf();
    p.write("inventory.yaml", "servers:\n  vip: { transport: local }\n");
    p.write(
        "jobs/vip/collect.yaml",
        "targets: all\nsteps: [{ command: 'true' }]\narchive: { encrypt: [alice] }\n",
    );
    let admin = p.admin_token();
    p.add_user("olga", "operator", &["--projects", "vip"]);
    let olga = p.token("olga");
    let port = ordo_tests::free_port();
    let _serve = p.serve(&[], &["--listen", &format!("http://127.0.0.1:{port}")]);
    ordo_tests::wait_for_port(port, "serve");
    let api = ordo_tests::api::Api::http(port).token(&admin);
    let op = ordo_tests::api::Api::http(port).token(&olga);
    assert_eq!(op.get("/api/v1/keys").status, 403);

    ok(
        &dir,
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout alice.key -out alice.pem -days 365 -subj /CN=Alice 2>/dev/null",
    );
    let pem = std::fs::read_to_string(dir.join("alice.pem")).unwrap();
    let body = serde_json::json!({"name": "alice", "cert": pem}).to_string();
    let r = api.post("/api/v1/keys", &body);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["cn"], "Alice");
    assert_eq!(r.json["used_by"], serde_json::json!(["vip/collect"]));
    let bad = api.post("/api/v1/keys", r#"{"name": "x", "cert": "nope"}"#);
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json["error"]["field"], "cert", "{}", bad.text);

    let r = api.post(
        "/api/v1/keys/generate",
        r#"{"name": "safe", "cn": "Backup", "type": "ec", "backup": true, "passphrase": "long enough"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["type"], "EC P-256");
    let p12 = base64::engine::general_purpose::STANDARD
        .decode(r.json["private_key"].as_str().unwrap())
        .unwrap();
    std::fs::write(dir.join("safe.p12"), p12).unwrap();
    ok(
        &dir,
        "openssl pkcs12 -in safe.p12 -nodes -passin 'pass:long enough' -out safe.pem 2>/dev/null",
    );
    let list = api.get("/api/v1/keys");
    assert_eq!(
        list.json["keys"].as_array().unwrap().len(),
        2,
        "{}",
        list.text
    );
    assert!(
        !list.text.contains("PRIVATE KEY") && !list.text.contains("private_key"),
        "never shown again: {}",
        list.text
    );
    let nul = api.post(
        "/api/v1/keys/generate",
        r#"{"name": "k3", "cn": "K", "type": "ec", "passphrase": "long enough\u0000x"}"#,
    );
    assert_eq!(nul.json["error"]["field"], "passphrase", "{}", nul.text);
    assert!(
        !nul.text.contains("long enough"),
        "the passphrase is never echoed: {}",
        nul.text
    );
    let short = api.post(
        "/api/v1/keys/generate",
        r#"{"name": "k2", "cn": "K", "passphrase": "short"}"#,
    );
    assert_eq!(short.json["error"]["field"], "passphrase", "{}", short.text);

    let r = api.call(
        "PATCH",
        "/api/v1/keys/safe",
        Some(r#"{"name": "vault", "backup": false}"#),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        (r.json["name"].as_str(), r.json["backup"].as_bool()),
        (Some("vault"), Some(false))
    );
    let r = api.call("PATCH", "/api/v1/keys/alice", Some(r#"{"name": "alicia"}"#));
    // In use: a conflict, as deleting it is (400 before the actions layer).
    assert_eq!(r.status, 409, "renaming a key a job names: {}", r.text);
    let r = api.call("DELETE", "/api/v1/keys/alice", None);
    assert_eq!(r.status, 409, "{}", r.text);
    let r = api.call("DELETE", "/api/v1/keys/alice?force=true", None);
    assert_eq!(r.status, 200, "{}", r.text);
    let r = api.call("DELETE", "/api/v1/keys/nobody", None);
    assert_eq!(r.status, 404, "{}", r.text);
    let audit = api.get("/api/v1/audit?action=key%20generate");
    assert!(audit.text.contains("safe"), "{}", audit.text);
}

/// A transfer profile with `encrypt:`: the partner receives `<name>.gz.p7m`, which the
/// key's holder (and the backup key's) decrypt and unzip to the very file sent.
#[test]
fn a_profile_encrypts_the_payload_it_deposits() {
    let p = Project::new();
    let dir = p.path().to_path_buf();
    p.write("inventory.yaml", "servers: {}\n");
    for d in ["in", "bak", "partner"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    p.write(
        "profiles/tresor.yaml",
        &format!(
            "folder: {{ path: {} }}\nencrypt: [dgfip]\n",
            dir.join("partner").display()
        ),
    );
    p.write(
        "jobs/mandats.yaml",
        &format!(
            "kind: transfer\ntransfer: {{ profile: tresor, source: {}, pattern: \"M*\", backup: {}, compress: true, watch: false }}\n",
            dir.join("in").display(),
            dir.join("bak").display()
        ),
    );
    let check = p.controller(&["check"]).expect_code(2);
    assert!(
        check.stderr.contains("tresor.yaml:2:")
            && check.stderr.contains("encrypt: key `dgfip` does not exist"),
        "{}",
        check.stderr
    );
    ok(
        &dir,
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes -keyout dgfip.key -out dgfip.pem -days 365 -subj /CN=DGFiP 2>/dev/null",
    );
    ok(
        &dir,
        "openssl req -x509 -newkey rsa:3072 -nodes -keyout safe.key -out safe.pem -days 365 -subj /CN=Backup 2>/dev/null",
    );
    p.controller(&[
        "keys",
        "add",
        "dgfip",
        "--cert",
        dir.join("dgfip.pem").to_str().unwrap(),
    ])
    .expect_code(0);
    p.controller(&[
        "keys",
        "add",
        "safe",
        "--cert",
        dir.join("safe.pem").to_str().unwrap(),
        "--backup",
    ])
    .expect_code(0);
    p.controller(&["check"]).expect_code(0);
    let content: String = (0..5000).map(|i| format!("mandat line {i}\n")).collect();
    std::fs::write(dir.join("in/M0001.xml"), &content).unwrap();
    p.controller(&["run", "mandats", "--no-progress"])
        .expect_code(0);
    let sent = dir.join("partner/M0001.xml.gz.p7m");
    assert!(
        sent.is_file(),
        "{:?}",
        std::fs::read_dir(dir.join("partner"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect::<Vec<_>>()
    );
    assert!(!dir.join("partner/M0001.xml").exists() && !dir.join("partner/M0001.xml.gz").exists());
    for key in ["dgfip.key", "safe.key"] {
        ok(
            &dir,
            &format!(
                "openssl cms -decrypt -inform DER -in partner/M0001.xml.gz.p7m -inkey {key} -out {key}.gz && gunzip -f {key}.gz"
            ),
        );
        assert_eq!(
            std::fs::read_to_string(dir.join(key)).unwrap(),
            content,
            "{key}"
        );
    }
    let list = p.controller(&["keys", "list"]).expect_code(0).stdout;
    assert!(
        list.lines()
            .any(|l| l.contains("dgfip") && l.contains("profile tresor")),
        "{list}"
    );
    let refused = p.controller(&["keys", "delete", "dgfip"]).expect_code(2);
    assert!(
        refused.stderr.contains("used by profile tresor"),
        "{}",
        refused.stderr
    );
}

/// `serve` tells the top administrators by mail which keys expire within 30 days.
#[test]
fn serve_mails_the_administrators_about_keys_expiring_soon() {
    let smtp = ordo_tests::smtp::SmtpServer::start();
    let p = Project::new();
    let dir = p.path().to_path_buf();
    p.write(
        "ordo.yaml",
        &format!(
            "mail:\n  from: ordo@example.com\n  smtp: {{ host: 127.0.0.1, port: {}, tls: none }}\n",
            smtp.port
        ),
    );
    p.write("inventory.yaml", "servers: {}\n");
    p.add_user("ada", "admin", &[]);
    ok(
        &dir,
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout k.key -out soon.pem -days 10 -subj /CN=Soon 2>/dev/null",
    );
    ok(
        &dir,
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout k2.key -out later.pem -days 300 -subj /CN=Later 2>/dev/null",
    );
    p.controller(&[
        "keys",
        "add",
        "soon",
        "--cert",
        dir.join("soon.pem").to_str().unwrap(),
    ])
    .expect_code(0);
    p.controller(&[
        "keys",
        "add",
        "later",
        "--cert",
        dir.join("later.pem").to_str().unwrap(),
    ])
    .expect_code(0);
    let port = ordo_tests::free_port();
    let _serve = p.serve(&[], &["--listen", &format!("http://127.0.0.1:{port}")]);
    let mails = smtp.wait_for(1);
    let m = mails[0].parsed();
    assert_eq!(m.subject(), Some("[ordo] 1 encryption key(s) expire soon"));
    let body = m.body_text(0).unwrap_or_default().to_string();
    assert!(
        body.contains("key soon (CN=Soon) expires on") && !body.contains("later"),
        "{body}"
    );
    let to = m
        .to()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .unwrap_or_default()
        .to_string();
    assert_eq!(to, "ada@example.com");
}
