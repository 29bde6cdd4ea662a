//! Transfer scenarios against real partners: a folder (collision policies, the logs, the
//! status lifecycle up to acknowledged / unacknowledged), a real sshd over SFTP (killed
//! mid-transfer: the upload resumes and nothing is lost; retrieval with the naming
//! template and a record number kept across runs), a real HTTP server failing on demand,
//! and a real SMTP server receiving a compressed file in segments that `transfers join`
//! rebuilds.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ordo_controller::store::{Store, TransferRow};
use ordo_tests::project::Project;
use ordo_tests::smtp::SmtpServer;
use ordo_tests::sshd::{ClientKey, SshServer};
use ordo_tests::webhook::WebhookServer;
use ordo_tests::{LOGIN_USER, eml_count, sh, temp_dir, wait_until};

fn project() -> Project {
    let p = Project::new();
    p.write("inventory.yaml", "servers: {}\n");
    std::fs::create_dir_all(p.path().join("data")).unwrap();
    p
}

fn transfers(p: &Project, scenario: &str) -> Vec<TransferRow> {
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
fn log_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| l.splitn(3, ' ').nth(2).unwrap_or("").to_string())
        .collect()
}

fn dir(base: &Path, name: &str) -> PathBuf {
    let d = base.join(name);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn set_mtime(p: &Path, when: &str) {
    sh(&format!("touch -d '{when}' {}", p.display()));
}

/// Pseudo-random bytes (gzip cannot shrink them much).
fn noise(n: usize, seed: u32) -> Vec<u8> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (x >> 16) as u8
        })
        .collect()
}

#[test]
fn a_folder_partner_collision_policies_logs_and_the_status_lifecycle() {
    let p = project();
    let w = temp_dir("xfer");
    let (src, bak, partner) = (
        dir(w.path(), "in"),
        dir(w.path(), "bak"),
        dir(w.path(), "partner"),
    );
    p.write(
        "profiles/tresor.yaml",
        &format!(
            "description: the treasury's share\nfolder: {{ path: {} }}\nack: {{ mode: consumed, deadline: 3s }}\n",
            partner.display()
        ),
    );
    p.write(
        "jobs/mandats.yaml",
        &format!(
            "kind: transfer\ntransfer: {{ profile: tresor, source: {s}, pattern: \"MANDAT*\", backup: {b}, collision: increment, watch: false }}\n",
            s = src.display(),
            b = bak.display()
        ),
    );
    p.write(
        "jobs/titres.yaml",
        &format!(
            "kind: transfer\ntransfer: {{ profile: tresor, source: {s}, pattern: \"TITRE*\", backup: {b}, collision: skip, watch: false }}\n",
            s = src.display(),
            b = bak.display()
        ),
    );
    std::fs::write(src.join("MANDAT1"), "one").unwrap();
    std::fs::write(src.join("MANDAT2"), "two!").unwrap();
    std::fs::write(src.join("NOTES.txt"), "not mine").unwrap();
    set_mtime(&src.join("MANDAT1"), "2026-01-01 10:00");
    set_mtime(&src.join("MANDAT2"), "2026-01-01 11:00");
    std::fs::write(bak.join("MANDAT1"), "an older MANDAT1").unwrap();
    std::fs::write(src.join("TITRE1"), "new title").unwrap();
    std::fs::write(bak.join("TITRE1"), "old title").unwrap();

    let run = p
        .controller(&["run", "mandats", "--no-progress"])
        .expect_code(0);
    assert!(run.stdout.contains("MANDAT1: delivered"), "{}", run.stdout);
    // Sent in order, backed up with an increment, nothing else touched.
    assert_eq!(
        std::fs::read_to_string(partner.join("MANDAT1")).unwrap(),
        "one"
    );
    assert_eq!(
        std::fs::read_to_string(partner.join("MANDAT2")).unwrap(),
        "two!"
    );
    assert_eq!(
        std::fs::read_to_string(bak.join("MANDAT1")).unwrap(),
        "an older MANDAT1"
    );
    assert_eq!(
        std::fs::read_to_string(bak.join("MANDAT1.1")).unwrap(),
        "one"
    );
    assert!(!src.join("MANDAT1").exists() && src.join("NOTES.txt").exists());
    let rows = transfers(&p, "mandats");
    let id = rows[0].execution_id.clone();
    let last = p.path().join("data/transfers/mandats/last.log");
    assert_eq!(
        log_lines(&last),
        [
            format!(
                "run {id}: scenario mandats sends {}/MANDAT* with profile tresor (folder {})",
                src.display(),
                partner.display()
            ),
            format!(
                "MANDAT1: prepared: moved to {}/MANDAT1.1 (3 bytes, sha256 7692c3ad3540bb80)",
                bak.display()
            ),
            format!("MANDAT1: deposited: {}/MANDAT1", partner.display()),
            "MANDAT1: delivered".to_string(),
            format!(
                "MANDAT2: prepared: moved to {}/MANDAT2 (4 bytes, sha256 a97b629a5b1da759)",
                bak.display()
            ),
            format!("MANDAT2: deposited: {}/MANDAT2", partner.display()),
            "MANDAT2: delivered".to_string(),
            "end: 2 sent, 0 failed, 0 skipped, 0 acknowledged, 0 unacknowledged".to_string(),
        ]
    );
    let st: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r.file_name.as_str(), r.status.as_str()))
        .collect();
    assert_eq!(st, [("MANDAT1", "delivered"), ("MANDAT2", "delivered")]);
    assert!(
        rows.iter()
            .all(|r| r.deposited_at.is_some() && r.delivered_at.is_some())
    );

    // The partner takes MANDAT1: acknowledged at the next run. MANDAT2 stays past the
    // deadline: unacknowledged, the run fails (and alerts).
    std::fs::remove_file(partner.join("MANDAT1")).unwrap();
    let second = p
        .controller(&["run", "mandats", "--no-progress"])
        .expect_code(0);
    assert!(
        second.stdout.contains("MANDAT1: acknowledged"),
        "{}",
        second.stdout
    );
    std::thread::sleep(Duration::from_millis(3200));
    p.controller(&["run", "mandats", "--no-progress"])
        .expect_code(1);
    let st: Vec<String> = transfers(&p, "mandats")
        .iter()
        .map(|r| r.status.clone())
        .collect();
    assert_eq!(st, ["acknowledged", "unacknowledged"]);
    let last = log_lines(&p.path().join("data/transfers/mandats/last.log"));
    assert_eq!(
        last[1],
        "MANDAT2: unacknowledged: no acknowledgement within 3s of the deposit"
    );
    assert_eq!(last[2], "no file to send");
    // The day's log holds the three runs.
    let day = p.path().join(format!(
        "data/transfers/mandats/{}.log",
        sh("date +%Y%m%d").trim()
    ));
    assert_eq!(
        log_lines(&day)
            .iter()
            .filter(|l| l.starts_with("run "))
            .count(),
        3
    );
    let listed = p
        .controller(&["transfers", "list", "--status", "unacknowledged"])
        .expect_code(0)
        .stdout;
    assert!(
        listed.contains("MANDAT2") && !listed.contains("MANDAT1"),
        "{listed}"
    );

    // collision: skip leaves the file where it is, unsent, and says so.
    p.controller(&["run", "titres", "--no-progress"])
        .expect_code(0);
    assert_eq!(
        std::fs::read_to_string(src.join("TITRE1")).unwrap(),
        "new title"
    );
    assert_eq!(
        std::fs::read_to_string(bak.join("TITRE1")).unwrap(),
        "old title"
    );
    assert!(!partner.join("TITRE1").exists());
    let t = &transfers(&p, "titres")[0];
    assert_eq!(t.status, "skipped");
    assert_eq!(
        t.error.as_deref().unwrap(),
        format!(
            "{b} already holds TITRE1 (collision: skip): left in {s}, not sent",
            b = bak.display(),
            s = src.display()
        )
    );
    // collision: overwrite replaces the backup.
    p.write(
        "jobs/titres.yaml",
        &format!(
            "kind: transfer\ntransfer: {{ profile: tresor, source: {s}, pattern: \"TITRE*\", backup: {b}, collision: overwrite, watch: false }}\n",
            s = src.display(),
            b = bak.display()
        ),
    );
    p.controller(&["run", "titres", "--no-progress"])
        .expect_code(0);
    assert_eq!(
        std::fs::read_to_string(bak.join("TITRE1")).unwrap(),
        "new title"
    );
    assert_eq!(
        std::fs::read_to_string(partner.join("TITRE1")).unwrap(),
        "new title"
    );
    assert!(!bak.join("TITRE1.1").exists());
}

fn sftp_partner(
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

#[test]
fn sftp_upload_resumes_after_the_partner_dies_and_retrieval_numbers_files() {
    let key = ClientKey::new();
    let mut sshd = SshServer::start(&key);
    let p = project();
    let w = temp_dir("xfer-sftp");
    let (src, bak) = (dir(w.path(), "in"), dir(w.path(), "bak"));
    let (depot, retour) = sftp_partner(
        &p,
        &sshd,
        &key,
        &dir(w.path(), "partner"),
        "  bandwidth: 1MiB/s\n",
    );
    p.write(
        "jobs/send.yaml",
        &format!(
            "kind: transfer\ntransfer: {{ profile: partner, source: {}, pattern: \"*.dat\", backup: {}, watch: false }}\n",
            src.display(),
            bak.display()
        ),
    );
    let data = noise(3 << 20, 7);
    std::fs::write(src.join("BIG.dat"), &data).unwrap();
    let child = std::process::Command::new(ordo_tests::controller_bin())
        .args([
            "-C",
            &p.path().display().to_string(),
            "run",
            "send",
            "--no-progress",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let part = depot.join("BIG.dat.part");
    wait_until("a third of the upload", Duration::from_secs(20), || {
        std::fs::metadata(&part)
            .map(|m| m.len() > 1 << 20)
            .unwrap_or(false)
    });
    sshd.kill_all();
    std::thread::sleep(Duration::from_millis(1500));
    sshd.restart();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read(depot.join("BIG.dat")).unwrap(),
        data,
        "the deposited file differs"
    );
    assert!(!part.exists());
    assert_eq!(std::fs::read(bak.join("BIG.dat")).unwrap(), data);
    let log = log_lines(&p.path().join("data/transfers/send/last.log"));
    assert!(
        log.iter()
            .any(|l| l.starts_with("BIG.dat: attempt 1 of 20: ")),
        "{log:#?}"
    );
    let resumed = log
        .iter()
        .find(|l| l.starts_with("BIG.dat: BIG.dat resumed at byte "))
        .unwrap_or_else(|| panic!("no resume in {log:#?}"));
    let at: u64 = resumed.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(at > 1 << 20, "{resumed}");
    let t = &transfers(&p, "send")[0];
    assert_eq!(t.status, "delivered");
    assert!(t.attempts >= 2);

    // A partial upload at the partner that is not this file's beginning (an earlier
    // version, of the right name) is never resumed into it: the file goes again from 0.
    let second = noise(200 << 10, 11);
    std::fs::write(depot.join("NEXT.dat.part"), noise(50 << 10, 12)).unwrap();
    sh(&format!(
        "chown {LOGIN_USER} {}",
        depot.join("NEXT.dat.part").display()
    ));
    std::fs::write(src.join("NEXT.dat"), &second).unwrap();
    p.controller(&["run", "send", "--no-progress"])
        .expect_code(0);
    assert_eq!(
        std::fs::read(depot.join("NEXT.dat")).unwrap(),
        second,
        "a stale partial upload was joined to the file"
    );
    let log = log_lines(&p.path().join("data/transfers/send/last.log"));
    assert!(
        log.iter()
            .any(|l| l.contains("was not this file's beginning")),
        "{log:#?}"
    );

    // Retrieval: files waiting at the partner come home named by the template, numbered
    // across runs, and leave the partner only once stored.
    p.write(
        "jobs/fetch.yaml",
        "kind: transfer\ntransfer: { profile: partner, direction: receive }\n",
    );
    for (n, body) in [("RCT1", "r1"), ("RCT2", "r2")] {
        std::fs::write(retour.join(n), body).unwrap();
    }
    sh(&format!("chown -R {LOGIN_USER} {}", retour.display()));
    p.controller(&["run", "fetch", "--no-progress"])
        .expect_code(0);
    std::fs::write(retour.join("RCT3"), "r3").unwrap();
    sh(&format!("chown -R {LOGIN_USER} {}", retour.display()));
    p.controller(&["run", "fetch", "--no-progress"])
        .expect_code(0);
    let year = sh("date +%Y").trim().to_string();
    let got = p.path().join("data/received/partner");
    let mut names: Vec<String> = std::fs::read_dir(&got)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            format!("LA{year}0001_partner_RCT1"),
            format!("LA{year}0002_partner_RCT2"),
            format!("LA{year}0003_partner_RCT3")
        ]
    );
    assert_eq!(std::fs::read_to_string(got.join(&names[2])).unwrap(), "r3");
    assert_eq!(
        std::fs::read_dir(&retour).unwrap().count(),
        0,
        "fetched files stay at the partner"
    );
    let log = log_lines(&p.path().join("data/transfers/fetch/last.log"));
    assert_eq!(
        log[1],
        format!(
            "RCT3: received as {}/{} (record 3, 2 bytes, removed from the partner)",
            got.display(),
            names[2]
        )
    );
    let rows = transfers(&p, "fetch");
    assert_eq!(rows.len(), 3);
    assert!(
        rows.iter()
            .all(|r| r.status == "received" && r.direction == "receive")
    );
}

#[test]
fn an_http_partner_failing_keeps_the_file_and_alerts_then_takes_the_next() {
    let http = WebhookServer::start();
    let p = project();
    let w = temp_dir("xfer-http");
    let (src, bak) = (dir(w.path(), "in"), dir(w.path(), "bak"));
    p.write(
        "profiles/portal.yaml",
        &format!(
            "http:\n  url: {}\n  field: fichier\n  success_body: File received\nretry: {{ attempts: 3, backoff: 100ms }}\n",
            http.url("/depot-xt")
        ),
    );
    p.write(
        "jobs/etatcivil.yaml",
        &format!(
            "kind: transfer\ntransfer: {{ profile: portal, source: {}, backup: {}, watch: false }}\nnotify: [{{ on: failure, mail: {{ to: ops@example.com }} }}]\n",
            src.display(),
            bak.display()
        ),
    );
    std::fs::write(src.join("wecivil1.038"), "naissances").unwrap();
    http.answer(500);
    p.controller(&["run", "etatcivil", "--no-progress"])
        .expect_code(1);
    let t = &transfers(&p, "etatcivil")[0];
    assert_eq!((t.status.as_str(), t.attempts), ("failed", 3));
    assert_eq!(
        t.error.as_deref(),
        Some("HTTP 500 Internal Server Error: Server error")
    );
    assert_eq!(
        std::fs::read_to_string(bak.join("wecivil1.038")).unwrap(),
        "naissances"
    );
    let log = log_lines(&p.path().join("data/transfers/etatcivil/last.log"));
    assert_eq!(
        log[2..5],
        [
            "wecivil1.038: attempt 1 of 3: HTTP 500 Internal Server Error: Server error; next in 100ms".to_string(),
            "wecivil1.038: attempt 2 of 3: HTTP 500 Internal Server Error: Server error; next in 200ms".to_string(),
            format!("wecivil1.038: failed after 3 attempt(s): HTTP 500 Internal Server Error: Server error; the file stays in {}/wecivil1.038", bak.display()),
        ]
    );
    let alerts: Vec<_> = std::fs::read_dir(p.path().join("data/outbox"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(alerts.len(), 1, "one failure alert");

    // The partner is back: the next run sends the failed file again from the backup
    // folder, first, then the new one.
    http.answer(200);
    std::fs::write(src.join("wecivil2.038"), "mariages").unwrap();
    p.controller(&["run", "etatcivil", "--no-progress"])
        .expect_code(0);
    let uploads = http.uploads();
    assert_eq!(
        uploads.get("wecivil1.038").map(|b| b.as_slice()),
        Some(&b"naissances"[..])
    );
    assert_eq!(
        uploads.get("wecivil2.038").map(|b| b.as_slice()),
        Some(&b"mariages"[..])
    );
    let st: Vec<String> = transfers(&p, "etatcivil")
        .iter()
        .map(|r| r.status.clone())
        .collect();
    assert_eq!(st, ["delivered", "delivered"]);
    let log = log_lines(&p.path().join("data/transfers/etatcivil/last.log"));
    assert!(
        log.iter()
            .any(|l| l.starts_with("wecivil1.038: resumed from ")),
        "{log:?}"
    );
}

/// With `collision: overwrite`, a new file never replaces an earlier one of the same name
/// that is not delivered yet (the only copy): it waits in the source folder until the
/// earlier one is delivered.
#[test]
fn an_undelivered_backup_is_never_overwritten() {
    let http = WebhookServer::start();
    let p = project();
    let w = temp_dir("xfer-overwrite");
    let (src, bak) = (dir(w.path(), "in"), dir(w.path(), "bak"));
    p.write(
        "profiles/portal.yaml",
        &format!(
            "http:\n  url: {}\n  field: fichier\n  success_body: File received\nretry: {{ attempts: 1 }}\n",
            http.url("/depot")
        ),
    );
    p.write(
        "jobs/rolls.yaml",
        &format!(
            "kind: transfer\ntransfer: {{ profile: portal, source: {}, backup: {}, collision: overwrite, watch: false }}\n",
            src.display(),
            bak.display()
        ),
    );
    http.answer(500);
    std::fs::write(src.join("roll.csv"), "v1").unwrap();
    p.controller(&["run", "rolls", "--no-progress"])
        .expect_code(1);
    std::fs::write(src.join("roll.csv"), "v2").unwrap();
    p.controller(&["run", "rolls", "--no-progress"])
        .expect_code(1);
    assert_eq!(std::fs::read_to_string(bak.join("roll.csv")).unwrap(), "v1");
    assert_eq!(std::fs::read_to_string(src.join("roll.csv")).unwrap(), "v2");
    let log = log_lines(&p.path().join("data/transfers/rolls/last.log"));
    assert!(
        log.iter()
            .any(|l| l.starts_with("roll.csv: waits: ") && l.contains("never overwritten")),
        "{log:?}"
    );
    http.answer(200);
    p.controller(&["run", "rolls", "--no-progress"])
        .expect_code(0);
    assert_eq!(std::fs::read_to_string(bak.join("roll.csv")).unwrap(), "v2");
    assert!(!src.join("roll.csv").exists());
    let st: Vec<String> = transfers(&p, "rolls")
        .iter()
        .map(|r| r.status.clone())
        .collect();
    assert_eq!(st, ["delivered", "delivered"]);

    // The partner lost it: send a delivered file again, by its transfer ID.
    let nothing = p
        .controller(&["transfers", "resend", "--failed"])
        .expect_code(0);
    assert!(
        nothing.stdout.contains("no failed transfer"),
        "{}",
        nothing.stdout
    );
    let last = transfers(&p, "rolls").pop().unwrap();
    let again = p
        .controller(&["transfers", "resend", &last.id[..13]])
        .expect_code(0);
    assert!(
        again.stdout.contains("sending again roll.csv"),
        "{}",
        again.stdout
    );
    let log = log_lines(&p.path().join("data/transfers/rolls/last.log"));
    assert!(
        log.iter().any(|l| l.starts_with("roll.csv: resumed from ")),
        "{log:?}"
    );
    let st: Vec<String> = transfers(&p, "rolls")
        .iter()
        .map(|r| r.status.clone())
        .collect();
    assert_eq!(st, ["delivered", "delivered"]);
}

#[test]
fn a_compressed_file_in_segments_by_mail_is_joined_back() {
    let smtp = SmtpServer::start();
    let p = project();
    p.write(
        "ordo.yaml",
        &format!(
            "mail:\n  from: ordo@example.com\n  smtp: {{ host: localhost, port: {}, tls: none }}\n",
            smtp.port
        ),
    );
    let w = temp_dir("xfer-mail");
    let (src, bak, inbox) = (
        dir(w.path(), "in"),
        dir(w.path(), "bak"),
        dir(w.path(), "recu"),
    );
    p.write(
        "profiles/pecoto.yaml",
        "smtp: { to: [recensement@example.com], subject: \"[scenario] [name] part [part]\" }\n",
    );
    p.write(
        "jobs/recensement.yaml",
        &format!(
            "kind: transfer\ntransfer: {{ profile: pecoto, source: {}, backup: {}, compress: true, segment_size: 40KiB, watch: false }}\n",
            src.display(),
            bak.display()
        ),
    );
    let data = noise(100_000, 3);
    std::fs::write(src.join("RECENS.csv"), &data).unwrap();
    p.controller(&["run", "recensement", "--no-progress"])
        .expect_code(0);
    let mails = smtp.wait_for(4);
    let mut subjects = Vec::new();
    for m in &mails {
        let parsed = m.parsed();
        subjects.push(parsed.subject().unwrap_or("").to_string());
        let a = parsed.attachments().next().expect("an attachment");
        use mail_parser::MimeHeaders;
        std::fs::write(inbox.join(a.attachment_name().unwrap()), a.contents()).unwrap();
    }
    subjects.sort();
    assert_eq!(
        subjects,
        [
            "recensement RECENS.csv part 1/4",
            "recensement RECENS.csv part 2/4",
            "recensement RECENS.csv part 3/4",
            "recensement RECENS.csv part 4/4"
        ]
    );
    let joined = p
        .controller(&[
            "transfer",
            "join",
            &inbox.join("RECENS.csv.gz.manifest").display().to_string(),
        ])
        .expect_code(0);
    assert!(joined.stdout.contains("joined:"), "{}", joined.stdout);
    assert_eq!(std::fs::read(inbox.join("RECENS.csv")).unwrap(), data);
    let t = &transfers(&p, "recensement")[0];
    assert_eq!((t.status.as_str(), t.segments), ("delivered", 4));
    // A missing segment is named.
    std::fs::remove_file(inbox.join("RECENS.csv.gz.002")).unwrap();
    let err = p
        .controller(&[
            "transfer",
            "join",
            &inbox.join("RECENS.csv.gz.manifest").display().to_string(),
            "-o",
            &w.path().join("x").display().to_string(),
        ])
        .expect_code(2);
    assert!(err.stderr.contains("RECENS.csv.gz.002"), "{}", err.stderr);
}

/// Under `controller serve`, a file dropped in a scenario's source folder starts it;
/// files go one after the other with the profile's pause; another scenario with another
/// profile goes on meanwhile.
#[test]
fn scenarios_fire_on_file_arrival_pace_their_files_and_do_not_wait_for_each_other() {
    let p = project();
    let w = temp_dir("xfer-serve");
    let (in_a, in_b, bak) = (
        dir(w.path(), "in-a"),
        dir(w.path(), "in-b"),
        dir(w.path(), "bak"),
    );
    let (out_a, out_b) = (dir(w.path(), "dgfip"), dir(w.path(), "insee"));
    p.write(
        "profiles/dgfip.yaml",
        &format!("folder: {{ path: {} }}\ndelay: 5s\n", out_a.display()),
    );
    p.write(
        "profiles/insee.yaml",
        &format!("folder: {{ path: {} }}\n", out_b.display()),
    );
    p.write(
        "jobs/mandats.yaml",
        &format!(
            "kind: transfer\ntransfer: {{ profile: dgfip, source: {}, backup: {} }}\n",
            in_a.display(),
            bak.display()
        ),
    );
    p.write(
        "jobs/elections.yaml",
        &format!(
            "kind: transfer\ntransfer: {{ profile: insee, source: {}, backup: {} }}\n",
            in_b.display(),
            bak.display()
        ),
    );
    let listed = p.controller(&["schedules"]).expect_code(0).stdout;
    assert!(
        listed.contains(&format!("watch {}/*", in_a.display())),
        "{listed}"
    );
    let mut serve = p.serve(&[], &[]);
    serve.wait_log("watching", Duration::from_secs(20));
    std::fs::write(in_a.join("M1"), "1").unwrap();
    std::fs::write(in_a.join("M2"), "2").unwrap();
    wait_until("M1 delivered", Duration::from_secs(20), || {
        out_a.join("M1").exists()
    });
    std::fs::write(in_b.join("E1"), "e").unwrap();
    wait_until("E1 delivered", Duration::from_secs(20), || {
        out_b.join("E1").exists()
    });
    assert!(
        !out_a.join("M2").exists(),
        "elections waited for mandats' pause"
    );
    wait_until("M2 delivered", Duration::from_secs(30), || {
        out_a.join("M2").exists()
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = rt.block_on(Store::open(&p.sqlite_url())).unwrap();
    wait_until("the mandats run recorded", Duration::from_secs(20), || {
        rt.block_on(store.list_executions(Some("mandats"), 10))
            .unwrap()
            .iter()
            .any(|e| e.status == "succeeded")
    });
    serve.stop();
    let a = transfers(&p, "mandats");
    let b = transfers(&p, "elections");
    assert_eq!(a.len(), 2, "{a:#?}");
    let (m1, m2) = (a[0].delivered_at.unwrap(), a[1].delivered_at.unwrap());
    assert!(m2 - m1 >= 5000, "the 5s pause between files: {m1} {m2}");
    assert_eq!(b[0].status, "delivered");
    let log = log_lines(&p.path().join("data/transfers/mandats/last.log"));
    assert!(
        log.contains(&"waiting 5s before the next file".to_string()),
        "{log:#?}"
    );
    let execs = rt
        .block_on(store.list_executions(Some("mandats"), 10))
        .unwrap();
    assert!(execs.iter().all(|e| e.cause == "watch"), "{execs:#?}");
    assert!(execs.iter().any(|e| e.status == "succeeded"));
}

/// A project whose inventory has `filer`, reached over SSH (`sshd`, `key`), and a
/// profile `nfs` that drops files into `partner`.
fn on_filer(p: &Project, sshd: &SshServer, key: &ClientKey, partner: &Path) {
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

/// The files are on a server of the inventory (`on: filer`): listed, backed up (with the
/// collision policy) and read there over SSH; only the sending happens here.
#[test]
fn a_scenario_takes_its_files_on_a_server_over_ssh() {
    let key = ClientKey::new();
    let sshd = SshServer::start(&key);
    let p = project();
    let w = temp_dir("xfer-on");
    let (src, bak, partner) = (
        dir(w.path(), "in"),
        dir(w.path(), "bak"),
        dir(w.path(), "partner"),
    );
    std::fs::write(src.join("F1"), "first").unwrap();
    std::fs::write(src.join("F2"), "second").unwrap();
    std::fs::write(bak.join("F1"), "older").unwrap();
    set_mtime(&src.join("F1"), "2026-01-01 10:00");
    set_mtime(&src.join("F2"), "2026-01-01 11:00");
    sh(&format!(
        "chown -R {LOGIN_USER} {} {}",
        src.display(),
        bak.display()
    ));
    on_filer(&p, &sshd, &key, &partner);
    let job = format!(
        "kind: transfer\ntransfer: {{ on: filer, profile: nfs, source: {}, backup: {} }}\n",
        src.display(),
        bak.display()
    );
    p.write("jobs/filer.yaml", &job);
    p.controller(&["run", "filer", "--no-progress"])
        .expect_code(0);
    assert_eq!(
        std::fs::read_to_string(partner.join("F1")).unwrap(),
        "first"
    );
    assert_eq!(
        std::fs::read_to_string(partner.join("F2")).unwrap(),
        "second"
    );
    assert_eq!(std::fs::read_dir(&src).unwrap().count(), 0);
    assert_eq!(std::fs::read_to_string(bak.join("F1")).unwrap(), "older");
    assert_eq!(std::fs::read_to_string(bak.join("F1.1")).unwrap(), "first");
    let log = log_lines(&p.path().join("data/transfers/filer/last.log"));
    assert_eq!(
        log[1],
        format!(
            "F1: prepared: moved to filer:{}/F1.1 (5 bytes, sha256 a7937b64b8caa58f)",
            bak.display()
        )
    );
    assert_eq!(
        transfers(&p, "filer")[0].stored_path,
        format!("filer:{}/F1.1", bak.display())
    );
    assert!(sshd.accepted_logins() >= 1);
    // A folder on another server cannot be watched from here.
    p.write(
        "jobs/filer.yaml",
        &job.replace("backup:", "watch: true, backup:"),
    );
    let check = p.controller(&["check"]).expect_code(2);
    assert!(
        check
            .stderr
            .contains("the folder is on filer, which the controller cannot watch: use a schedule"),
        "{}",
        check.stderr
    );
}

/// The acknowledgement deadline is kept by `controller serve` on its own clock: once a
/// deposit passes it without an acknowledgement, serve checks, marks it unacknowledged
/// and alerts, without waiting for the scenario's next run.
#[test]
fn serve_keeps_the_acknowledgement_deadline() {
    let p = project();
    let w = temp_dir("xfer-deadline");
    let (src, bak, partner) = (
        dir(w.path(), "in"),
        dir(w.path(), "bak"),
        dir(w.path(), "partner"),
    );
    p.write("ordo.yaml", "serve:\n  ack_check: 1s\n");
    p.write(
        "profiles/tresor.yaml",
        &format!(
            "folder: {{ path: {} }}\nack: {{ mode: consumed, deadline: 2s }}\n",
            partner.display()
        ),
    );
    p.write(
        "jobs/mandats.yaml",
        &format!(
            "kind: transfer\ntransfer: {{ profile: tresor, source: {}, backup: {}, watch: false }}\nnotify: [{{ on: failure, mail: {{ to: ops@example.com }} }}]\n",
            src.display(),
            bak.display()
        ),
    );
    std::fs::write(src.join("MANDAT9"), "nine").unwrap();
    p.controller(&["run", "mandats", "--no-progress"])
        .expect_code(0);
    assert_eq!(transfers(&p, "mandats")[0].status, "delivered");
    let mut serve = std::process::Command::new(ordo_tests::controller_bin())
        .arg("-C")
        .arg(p.path())
        .arg("serve")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let outbox = p.path().join("data/outbox");
    let alerts = || eml_count(&outbox);
    wait_until(
        "serve to mark the deposit unacknowledged",
        Duration::from_secs(20),
        || transfers(&p, "mandats")[0].status == "unacknowledged" && alerts() >= 1,
    );
    let _ = serve.kill();
    let _ = serve.wait();
    let t = &transfers(&p, "mandats")[0];
    assert!(
        t.error
            .as_deref()
            .unwrap_or("")
            .contains("no acknowledgement within 2s"),
        "{:?}",
        t.error
    );
    // Only the acknowledgements were checked: no new file was taken, no second row.
    assert_eq!(transfers(&p, "mandats").len(), 1);
}

/// A files' server that hangs (here every command it is given sleeps, as on a hung mount)
/// is stopped at the scenario's `timeout`, not after the 10-minute bound of each command:
/// the run ends timed out, the log names the server, and the file is still in its source
/// folder for the next run.
#[test]
fn a_files_server_that_hangs_is_stopped_at_the_scenarios_timeout() {
    let key = ClientKey::new();
    let mut sshd = SshServer::start(&key);
    sshd.reconfigure("ForceCommand exec sleep 47");
    let p = project();
    let w = temp_dir("xfer-hung");
    let (src, bak, partner) = (
        dir(w.path(), "in"),
        dir(w.path(), "bak"),
        dir(w.path(), "partner"),
    );
    std::fs::write(src.join("F1"), "first").unwrap();
    on_filer(&p, &sshd, &key, &partner);
    p.write(
        "jobs/hung.yaml",
        &format!(
            "kind: transfer\ntimeout: 3s\ntransfer: {{ on: filer, profile: nfs, source: {}, backup: {} }}\n",
            src.display(),
            bak.display()
        ),
    );
    let started = std::time::Instant::now();
    let run = p.controller(&["run", "hung", "--no-progress"]);
    let took = started.elapsed();
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(
        all.contains("transfer timed out after 3s (the scenario's timeout) and was stopped"),
        "{all}"
    );
    // Far from the 10-minute bound of one command: the timeout stopped it.
    assert!(took < Duration::from_secs(60), "{took:?}");
    let log = std::fs::read_to_string(p.path().join("data/transfers/hung/last.log")).unwrap();
    assert!(
        log.contains(&format!(
            "cannot read filer:{}: stopped while the files' server was working",
            src.display()
        )),
        "{log}"
    );
    let list = p.controller(&["executions", "list"]).expect_code(0);
    assert!(list.stdout.contains("timed-out"), "{}", list.stdout);
    assert_eq!(std::fs::read_to_string(src.join("F1")).unwrap(), "first");
    assert_eq!(std::fs::read_dir(&partner).unwrap().count(), 0);
}
