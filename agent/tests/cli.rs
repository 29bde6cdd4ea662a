//! The `agent` binary's own commands: enrollment files and configuration checks.

use std::process::Command;

fn agent(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_agent"))
        .args(args)
        .output()
        .expect("run agent");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn enroll_makes_a_private_key_and_a_request() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let (code, out, err) = agent(&[
        "enroll",
        "--name",
        "web1",
        "--dir",
        &d,
        "--dns",
        "web1.example.com",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("stays here"), "{out}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join("agent.key"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "the private key is readable by its owner only");
    let csr = std::fs::read_to_string(dir.path().join("agent.csr")).unwrap();
    assert!(
        csr.starts_with("-----BEGIN CERTIFICATE REQUEST-----"),
        "{csr}"
    );
    // Enrolling again keeps the key.
    let key = std::fs::read(dir.path().join("agent.key")).unwrap();
    assert_eq!(agent(&["enroll", "--name", "web1", "--dir", &d]).0, 0);
    assert_eq!(std::fs::read(dir.path().join("agent.key")).unwrap(), key);
}

#[test]
fn check_config_reports_every_problem_with_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("agent.yaml");
    std::fs::write(
        &cfg,
        "name: web1\nlisten: nowhere\ntls: { ca: ca.pem, cert: agent.pem }\nmax_concurent: 4\n",
    )
    .unwrap();
    let (code, _, err) = agent(&["check-config", "-c", &cfg.display().to_string()]);
    assert_eq!(code, 2);
    let f = cfg.display();
    assert!(
        err.contains(&format!(
            "{f}:2:9: listen: `nowhere` is not an address:port"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("{f}:3:12: tls: ca: "))
            && err.contains("ca.pem does not exist (run `agent enroll` first)"),
        "{err}"
    );
    assert!(
        err.contains(&format!("{f}:3:6: tls: missing required key `key`")),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{f}:4:1: agent: unknown key `max_concurent` (did you mean `max_concurrent`?)"
        )),
        "{err}"
    );
}
