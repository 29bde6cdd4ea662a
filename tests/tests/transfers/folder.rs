//! A folder partner: collision policies, the logs and the status lifecycle; file
//! triggers and pacing; the acknowledgement deadline kept by `serve`.

use super::*;

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
