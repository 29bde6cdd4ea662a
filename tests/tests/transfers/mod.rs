//! Transfer scenarios against real partners, a file per kind of partner: a folder
//! (collision policies, the logs, the status lifecycle up to acknowledged /
//! unacknowledged, file triggers and pacing), a real sshd over SFTP (killed
//! mid-transfer: the upload resumes and nothing is lost; retrieval with the naming
//! template and a record number kept across runs; files on a server over SSH), a real
//! HTTP server failing on demand, and a real SMTP server receiving a compressed file in
//! segments that `transfers join` rebuilds. The fixtures they share are here.

mod folder;
mod http;
mod mail;
mod sftp;

use std::path::{Path, PathBuf};
use std::time::Duration;

use ordo_controller::store::{Store, TransferRow};
use ordo_tests::project::Project;
use ordo_tests::smtp::SmtpServer;
use ordo_tests::sshd::{ClientKey, SshServer};
use ordo_tests::webhook::WebhookServer;
use ordo_tests::{LOGIN_USER, eml_count, sh, temp_dir, wait_until};

pub(super) fn project() -> Project {
    let p = Project::new();
    p.write("inventory.yaml", "servers: {}\n");
    std::fs::create_dir_all(p.path().join("data")).unwrap();
    p
}

pub(super) fn transfers(p: &Project, scenario: &str) -> Vec<TransferRow> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = rt.block_on(Store::open(&p.sqlite_url())).unwrap();
    let mut v = rt
        .block_on(store.transfers(Some(scenario), &[], 100))
        .unwrap();
    v.reverse();
    v
}

/// A log's lines without their date and time.
pub(super) fn log_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| l.splitn(3, ' ').nth(2).unwrap_or("").to_string())
        .collect()
}

pub(super) fn dir(base: &Path, name: &str) -> PathBuf {
    let d = base.join(name);
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub(super) fn set_mtime(p: &Path, when: &str) {
    sh(&format!("touch -d '{when}' {}", p.display()));
}

/// Pseudo-random bytes (gzip cannot shrink them much).
pub(super) fn noise(n: usize, seed: u32) -> Vec<u8> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (x >> 16) as u8
        })
        .collect()
}

pub(super) fn sftp_partner(
    p: &Project,
    sshd: &SshServer,
    key: &ClientKey,
    base: &Path,
    extra: &str,
) -> (PathBuf, PathBuf) {
    let (depot, retour) = (dir(base, "depot"), dir(base, "retour"));
    sh(&format!("chown -R {LOGIN_USER} {}", base.display()));
    p.write("known_hosts", &sshd.known_hosts_line());
    p.write(
        "profiles/partner.yaml",
        &format!(
            "sftp:\n  host: 127.0.0.1\n  port: {port}\n  user: {LOGIN_USER}\n  identity: {key}\n  known_hosts: ../known_hosts\n  remote_dir: {depot}\n  inbox: {retour}\n{extra}retry: {{ attempts: 20, backoff: 300ms, max_backoff: 1s }}\nreceive: {{ name: \"LA[annee][numrec]_[nomprofil]_[name]\" }}\n",
            port = sshd.port,
            key = key.private.display(),
            depot = depot.display(),
            retour = retour.display(),
        ),
    );
    (depot, retour)
}

/// A project whose inventory has `filer`, reached over SSH (`sshd`, `key`), and a
/// profile `nfs` that drops files into `partner`.
pub(super) fn on_filer(p: &Project, sshd: &SshServer, key: &ClientKey, partner: &Path) {
    p.write("known_hosts", &sshd.known_hosts_line());
    p.write(
        "ordo.yaml",
        &format!(
            "ssh: {{ identity: [{}], known_hosts: known_hosts }}\n",
            key.private.display()
        ),
    );
    p.write(
        "inventory.yaml",
        &format!(
            "servers:\n  filer: {{ host: 127.0.0.1, port: {}, user: {LOGIN_USER} }}\n",
            sshd.port
        ),
    );
    p.write(
        "profiles/nfs.yaml",
        &format!("folder: {{ path: {} }}\n", partner.display()),
    );
}
