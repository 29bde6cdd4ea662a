//! Mail delivery against a real SMTP server: implicit TLS and STARTTLS with a private CA,
//! credentials from a secret file or the environment, refused credentials, and archives
//! over the attachment limit.

use ordo_tests::eml_count;
use ordo_tests::project::{Project, untar_gz};
use ordo_tests::smtp::{SmtpServer, SmtpTls};

/// A project on the local transport whose job writes one result file per run.
fn project(smtp: &SmtpServer, auth: &str, extra_mail: &str) -> (Project, tempfile::TempDir) {
    let work = ordo_tests::temp_dir("mail-work");
    let p = Project::new();
    let tls = match (smtp.ca_file.is_some(), auth.contains("smtps")) {
        (true, true) => "tls",
        (true, false) => "starttls",
        _ => "none",
    };
    let ca = smtp
        .ca_file
        .as_ref()
        .map(|c| format!(", ca_file: {}", c.display()))
        .unwrap_or_default();
    let auth = auth.replace("smtps", "");
    p.write(
        "ordo.yaml",
        &format!("mail:\n  from: vip@example.com\n  smtp: {{ host: localhost, port: {}, tls: {tls}{ca}{auth} }}\n", smtp.port),
    );
    p.write("inventory.yaml", "servers:\n  vip: { transport: local }\n");
    p.write(
        "jobs/report.yaml",
        &format!(
            "targets: all\nsteps:\n  - script: |\n      head -c ${{SIZE:-100}} /dev/urandom | od -An -tx1 > {w}/result_log.txt\n      echo done\n    \
             \ncollect: [\"{w}/*_log.txt\"]\nmail:\n  to: [ops@example.com]\n  subject: \"report ${{execution.status}}\"\n{extra_mail}",
            w = work.path().display()
        ),
    );
    (p, work)
}

fn attached_files(smtp: &SmtpServer) -> std::collections::BTreeMap<String, String> {
    let mails = smtp.wait_for(1);
    let mail = mails[0].parsed();
    assert_eq!(mail.subject(), Some("report succeeded"));
    untar_gz(mail.attachments().next().expect("an attachment").contents())
}

#[test]
fn implicit_tls_with_a_password_file() {
    let smtp = SmtpServer::start_with(SmtpTls::Tls, Some("ordo:s3cret-file"));
    let secret = ordo_tests::temp_dir("secret");
    let pw = secret.path().join("smtp.pass");
    std::fs::write(&pw, "s3cret-file\n").unwrap();
    let (p, _w) = project(
        &smtp,
        &format!("smtps, username: ordo, password_file: {}", pw.display()),
        "",
    );
    let run = p
        .controller(&["run", "report", "--no-progress"])
        .expect_code(0);
    assert!(
        run.stdout
            .contains(&format!("mail sent: smtp localhost:{}", smtp.port)),
        "{}",
        run.stdout
    );
    let files = attached_files(&smtp);
    assert!(
        files.keys().any(|k| k.ends_with("/vip/result_log.txt")),
        "{:?}",
        files.keys()
    );
}

#[test]
fn starttls_with_a_password_from_the_environment() {
    let smtp = SmtpServer::start_with(SmtpTls::StartTls, Some("ordo:from-env"));
    let (p, _w) = project(
        &smtp,
        ", username: ordo, password_env: ORDO_TEST_SMTP_PW",
        "",
    );
    p.controller_env(
        &["run", "report", "--no-progress"],
        &[("ORDO_TEST_SMTP_PW", "from-env")],
    )
    .expect_code(0);
    let files = attached_files(&smtp);
    assert!(
        files.keys().any(|k| k.ends_with("/summary.txt")),
        "{:?}",
        files.keys()
    );
}

#[test]
fn refused_credentials_are_reported_and_recorded() {
    let smtp = SmtpServer::start_with(SmtpTls::StartTls, Some("ordo:right"));
    let (p, _w) = project(
        &smtp,
        ", username: ordo, password_env: ORDO_TEST_SMTP_PW",
        "",
    );
    let run = p.controller_env(
        &["run", "report", "--no-progress"],
        &[("ORDO_TEST_SMTP_PW", "wrong")],
    );
    // The servers succeeded: the run's code says so; the mail failure is said and kept in
    // history, and the mail waits in the outbox for the relay.
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let said = format!("{}{}", run.stdout, run.stderr);
    assert!(said.contains("mail: SMTP localhost: "), "{said}");
    assert!(said.to_lowercase().contains("authentication"), "{said}");
    assert!(said.contains("outbox/pending/"), "{said}");
    let show = p
        .controller(&["executions", "show", "latest"])
        .expect_code(0)
        .stdout;
    assert!(
        show.contains("mail      not sent now (mail: SMTP localhost"),
        "{show}"
    );
    assert!(smtp.messages().is_empty());
    // A missing variable is named.
    let run = p.controller(&["run", "report", "--no-progress"]);
    let said = format!("{}{}", run.stdout, run.stderr);
    assert!(
        said.contains("environment variable ORDO_TEST_SMTP_PW is not set"),
        "{said}"
    );
}

#[test]
fn an_archive_over_the_limit_is_not_attached_and_the_mail_says_where() {
    let smtp = SmtpServer::start();
    let (p, _w) = project(&smtp, "", "  max_attachment_size: 2k\n");
    let run = p.controller_env(&["run", "report", "--no-progress"], &[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    // The script writes 100 random bytes by default: raise it through the job's env.
    let job = p
        .read("jobs/report.yaml")
        .replace("targets: all\n", "targets: all\nenv: { SIZE: \"20000\" }\n");
    p.write("jobs/report.yaml", &job);
    p.controller(&["run", "report", "--no-progress"])
        .expect_code(0);
    let mails = smtp.wait_for(2);
    // Maildir names do not sort in arrival order: tell the two mails apart by content.
    let (small, big): (Vec<_>, Vec<_>) = mails
        .iter()
        .map(|m| m.parsed())
        .partition(|m| m.attachments().count() == 1);
    assert_eq!(small.len(), 1, "a small archive is attached");
    assert_eq!(big.len(), 1, "an archive over 2 KiB is not attached");
    let big = &big[0];
    let body = big.body_text(0).expect("body").into_owned();
    assert!(
        body.contains("is over the mail limit (2.0 KiB) and is not attached: it is at "),
        "{body}"
    );
    let path = body
        .split("it is at ")
        .nth(1)
        .unwrap()
        .split(" on ")
        .next()
        .unwrap();
    assert!(std::path::Path::new(path).is_file(), "{path}");
}

#[test]
fn a_silent_smtp_server_is_given_up_after_the_timeout() {
    // Accepts connections and never says a word.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let _hold = std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().flatten() {
            held.push(s);
        }
    });
    let p = Project::new();
    p.write(
        "ordo.yaml",
        &format!("mail:\n  smtp: {{ host: 127.0.0.1, port: {port}, tls: none, timeout: 2s }}\n"),
    );
    p.write("inventory.yaml", "servers:\n  vip: { transport: local }\n");
    p.write(
        "jobs/j.yaml",
        "targets: all\nsteps:\n  - command: echo hi\nmail: { to: [ops@example.com] }\n",
    );
    let started = std::time::Instant::now();
    let run = p.controller(&["run", "j", "--no-progress"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let said = format!("{}{}", run.stdout, run.stderr);
    assert!(
        said.contains("mail: SMTP 127.0.0.1: no answer within 2s"),
        "{said}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
}

/// The SMTP relay is down when the run ends: the mail is kept in the outbox, and
/// `controller serve` sends it once the relay is back. Nothing is lost.
#[test]
fn a_mail_the_relay_refused_waits_in_the_outbox_and_serve_sends_it() {
    let port = ordo_tests::free_port();
    let p = Project::new();
    p.write(
        "ordo.yaml",
        &format!(
            "mail:\n  smtp: {{ host: 127.0.0.1, port: {port}, tls: none, timeout: 2s }}\nserve:\n  mail_retry: 1s\n"
        ),
    );
    p.write("inventory.yaml", "servers:\n  vip: { transport: local }\n");
    p.write(
        "jobs/j.yaml",
        "targets: all\nsteps:\n  - command: echo hi\nmail: { to: [ops@example.com], subject: kept for later }\n",
    );
    let run = p.controller(&["run", "j", "--no-progress"]).expect_code(0);
    assert!(run.stdout.contains("mail not sent now"), "{}", run.stdout);
    let pending = p.path().join("data/outbox/pending");
    let count = || eml_count(&pending);
    assert_eq!(count(), 1);

    let smtp = SmtpServer::start_on(port);
    let mut serve = std::process::Command::new(ordo_tests::controller_bin())
        .arg("-C")
        .arg(p.path())
        .arg("serve")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mails = smtp.wait_for(1);
    let _ = serve.kill();
    let _ = serve.wait();
    assert!(
        String::from_utf8_lossy(&mails[0].raw).contains("kept for later"),
        "{}",
        String::from_utf8_lossy(&mails[0].raw)
    );
    assert_eq!(count(), 0, "the pending mail is removed once sent");
}
