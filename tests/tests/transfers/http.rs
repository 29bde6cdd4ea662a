//! HTTP partners failing on demand: the file kept, alerts, the next file; a backup never
//! overwritten before delivery.

use super::*;

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
