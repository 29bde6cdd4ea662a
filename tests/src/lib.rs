//! Fixtures for ordo's end-to-end tests: real OpenSSH servers (each with a private `/tmp`),
//! a real SMTP server, and a project folder to run the `controller` binary in.
//!
//! Every fixture owns its temporary folder and processes and stops them on drop.
//! The tests need root (to start sshd in its own mount namespace and to create the test
//! users) and some programs: `tests/run.sh` installs them all, and a fixture whose
//! program is missing says which package brings it ([`require`]).
//!
//! Fixture folders live under `/var/tmp/ordo-tests`, not in the checkout: a checkout
//! under `/tmp` would be hidden by the private `/tmp` each server mounts, and one under
//! `/root` cannot be entered by the test users that sshd reads `authorized_keys` as.

pub mod agent;
pub mod api;
pub mod browser;
pub mod postgres;
pub mod project;
pub mod smtp;
pub mod sshd;
pub mod transports;
pub mod webhook;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The SSH login user of the test fleet; may `sudo` to anyone without a password.
pub const LOGIN_USER: &str = "ordologin";
/// The user jobs run as (`run_as`).
pub const RUN_AS_USER: &str = "ordorunner";

/// A live output line `<time> <server> <|or!> <text>`, whatever the column width.
pub fn has_line(out: &str, server: &str, sep: &str, text: &str) -> bool {
    out.lines().any(|l| {
        let mut w = l.split_whitespace();
        w.next();
        w.next() == Some(server) && w.next() == Some(sep) && l.trim_end().ends_with(text)
    })
}

/// A server's row of the summary table.
pub fn summary_row(out: &str, server: &str) -> String {
    out.lines()
        .find(|l| l.contains('┆') && l.contains(&format!(" {server} ")))
        .unwrap_or_else(|| panic!("{server} not in:\n{out}"))
        .to_string()
}

/// The processes of `user` whose command line contains `pattern` (pgrep -f), one a line.
pub fn processes(user: &str, pattern: &str) -> Vec<String> {
    let out = Command::new("pgrep")
        .args(["-a", "-u", user, "-f", pattern])
        .output()
        .expect("pgrep");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// How many mails (`*.eml`) are in `dir`; none when it does not exist.
pub fn eml_count(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                .count()
        })
        .unwrap_or(0)
}

/// A free TCP port on 127.0.0.1 (bound then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port")
}

/// Polls until something accepts connections on `port`.
pub fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("{what} did not start listening on port {port} within 20 s");
}

/// Polls `check` until it holds or the deadline passes.
pub fn wait_until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out after {timeout:?} waiting for {what}");
}

/// Where every fixture folder is made: outside `/tmp` (each server mounts its own) and
/// outside the checkout (which may be under `/tmp` or a private `/root`); every user may
/// enter it.
pub fn fixtures_root() -> PathBuf {
    let base = PathBuf::from("/var/tmp/ordo-tests");
    std::fs::create_dir_all(&base).expect("create /var/tmp/ordo-tests");
    chmod(&base, 0o755);
    base
}

/// Panics with the package to install when `program` is missing: a clear first line
/// instead of a server that "did not start listening".
pub fn require(program: &str, package: &str) {
    let found = if program.contains('/') {
        Path::new(program).exists()
    } else {
        Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("command -v {program}"))
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    };
    assert!(
        found,
        "{program} is not installed: `apt-get install {package}`, or run `tests/run.sh`, which installs every prerequisite of the tests"
    );
}

/// Panics with the package to install when Python cannot import `module`.
pub fn require_python(module: &str, package: &str) {
    let ok = Command::new("/usr/bin/python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "Python module {module} is not installed: install {package}, or run `tests/run.sh`, which installs every prerequisite of the tests"
    );
}

/// A temporary folder under [`fixtures_root`], readable by the test users.
pub fn temp_dir(prefix: &str) -> tempfile::TempDir {
    let base = fixtures_root();
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(&base)
        .expect("tempdir");
    chmod(dir.path(), 0o755);
    dir
}

pub fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// Runs a command and returns its stdout; panics with its stderr when it fails.
pub fn sh(cmd: &str) -> String {
    let out = Command::new("/bin/sh")
        .arg("-c")
        .arg(cmd)
        .output()
        .expect("spawn sh");
    assert!(
        out.status.success(),
        "`{cmd}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Makes sure the test users exist and that the login user may sudo (as `.ci/run` does).
pub fn ensure_test_users() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let is_root = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| o.stdout == b"0\n")
            .unwrap_or(false);
        assert!(
            is_root,
            "the end-to-end tests must run as root (they start sshd and create test users)"
        );
        for user in [LOGIN_USER, RUN_AS_USER] {
            let exists = Command::new("id")
                .arg(user)
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false);
            if !exists {
                sh(&format!("useradd --create-home --shell /bin/sh {user}"));
            }
            // No password, but not locked: sshd without PAM refuses locked (`!`) accounts.
            sh(&format!("usermod -p '*' {user}"));
        }
        let rule = format!("{LOGIN_USER} ALL=(ALL) NOPASSWD: ALL\n");
        let path = Path::new("/etc/sudoers.d/ordo-tests");
        if std::fs::read_to_string(path).ok().as_deref() != Some(rule.as_str()) {
            std::fs::write(path, rule).expect("write sudoers rule");
            chmod(path, 0o440);
        }
    });
}

/// The `controller` binary built by `cargo test --workspace`.
pub fn controller_bin() -> PathBuf {
    fresh_bin("controller")
}

/// A workspace binary, refusing one older than the sources it is built from:
/// `cargo test -p ordo-tests` alone does not rebuild binaries.
pub fn fresh_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let bin = dir.join(name);
    assert!(
        bin.exists(),
        "{} is missing: run the tests with `cargo test --workspace` so the binaries are built",
        bin.display()
    );
    let built = std::fs::metadata(&bin)
        .and_then(|m| m.modified())
        .expect("binary mtime");
    if let Some(newer) = newer_input(&bin, built) {
        panic!(
            "{} is older than {}, which it is built from: run `cargo test --workspace` (or `cargo build --workspace` first)",
            bin.display(),
            newer.display()
        );
    }
    bin
}

/// A file the binary is built from that changed after `built`: from cargo's dep-info
/// (`<bin>.d`: the sources the compiler read, templates and assets included, not the
/// test-only modules), else from the crates' `src` folders.
fn newer_input(bin: &Path, built: std::time::SystemTime) -> Option<PathBuf> {
    let changed = |p: &Path| {
        std::fs::metadata(p)
            .and_then(|m| m.modified())
            .is_ok_and(|t| t > built)
    };
    if let Ok(text) = std::fs::read_to_string(bin.with_extension("d")) {
        let deps = text.split_once(": ").map_or("", |(_, d)| d);
        return deps
            .replace("\\ ", "\u{0}")
            .split_whitespace()
            .map(|d| PathBuf::from(d.replace('\u{0}', " ")))
            .find(|d| changed(d));
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let crates: &[&str] = match bin.file_name().and_then(|n| n.to_str()) {
        Some("agent") => &["agent", "proto", "inventory"],
        _ => &["controller", "proto", "inventory", "jobs"],
    };
    crates
        .iter()
        .map(|k| root.join(k).join("src"))
        .find(|src| newest_source(src).is_some_and(|t| t > built))
}

fn newest_source(dir: &Path) -> Option<std::time::SystemTime> {
    let mut newest = None;
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        let t = if p.is_dir() {
            newest_source(&p)
        } else {
            e.metadata().ok().and_then(|m| m.modified().ok())
        };
        newest = newest.max(t);
    }
    newest
}
