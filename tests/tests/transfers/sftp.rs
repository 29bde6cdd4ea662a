//! SFTP partners on a real sshd: resumed uploads, retrieval and its naming; files on a
//! server over SSH; a files' server that hangs.

use super::*;

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
