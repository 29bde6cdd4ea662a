//! Test campaigns (Rundeck parity): `wait_for` steps on a real sshd while a writer appends
//! to a log, and group jobs (the campaign example's) with their members, failures and
//! retry from the first failed member.

use std::path::Path;
use std::thread;
use std::time::Duration;

use ordo_tests::project::{Outcome, Project};
use ordo_tests::sshd::{ClientKey, SshServer};
use ordo_tests::{LOGIN_USER, has_line};

const IP: &str = "192.0.2.10";

/// A project with the campaign example's jobs, whose mail front is a real sshd.
fn campaign() -> (ClientKey, SshServer, Project) {
    let key = ClientKey::new();
    let server = SshServer::start(&key);
    let p = Project::new();
    p.write(
        "ordo.yaml",
        &format!(
            "ssh:\n  user: {LOGIN_USER}\n  identity: [{}]\n  known_hosts: known_hosts\n  connect_timeout: 5s\n",
            key.private.display()
        ),
    );
    p.write("known_hosts", &server.known_hosts_line());
    p.write(
        "inventory.yaml",
        &format!(
            "servers:\n  front: {{ host: 127.0.0.1, port: {}, tags: [imap-front], attributes: {{ auth_log: /tmp/auth.log }} }}\n",
            server.port
        ),
    );
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/campaign/jobs");
    for rel in [
        "segur-app.yaml",
        "segur-app/auth-imap.yaml",
        "segur-app/auth-smtp.yaml",
    ] {
        let text = std::fs::read_to_string(example.join(rel)).expect("the example's job");
        p.write(&format!("jobs/{rel}"), &text);
    }
    server.exec_inside(": > /tmp/auth.log");
    (key, server, p)
}

/// The client: for `secs` seconds, a noise line and the front's log line for each
/// protocol, every quarter of a second.
fn client(server: &SshServer, protocols: &[&str], secs: u32) {
    let mut lines = String::from("echo \"noise $i\" >> /tmp/auth.log; ");
    for proto in protocols {
        lines.push_str(&format!(
            "echo \"Got header auth-protocol: {proto};, client: {IP}, server: _\" >> /tmp/auth.log; "
        ));
    }
    server.exec_inside(&format!(
        "i=0; while [ $i -lt {} ]; do i=$((i+1)); {lines} sleep 0.25; done",
        secs * 4
    ));
}

/// The execution ID a run printed first.
fn execution_id(out: &Outcome) -> String {
    out.stdout
        .lines()
        .find_map(|l| l.strip_prefix("execution ")?.split(':').next())
        .expect("an execution id")
        .to_string()
}

/// `controller run ARGS` while the client writes.
fn run_with_client(p: &Project, server: &SshServer, args: &[&str], protocols: &[&str]) -> Outcome {
    thread::scope(|s| {
        s.spawn(|| client(server, protocols, 12));
        p.controller(args)
    })
}

/// The group for 192.0.2.10, with a 5-second delay.
const GROUP_RUN: [&str; 7] = [
    "run",
    "segur-app",
    "-o",
    "ip=192.0.2.10",
    "-o",
    "delai=5",
    "--no-progress",
];

#[test]
fn a_group_of_wait_tests_passes_when_the_client_logs_in_in_time() {
    let (_key, server, p) = campaign();
    p.controller(&["check"]).expect_code(0);
    let opts = [
        "run",
        "segur-app",
        "-o",
        "ip=192.0.2.10",
        "-o",
        "delai=10",
        "--no-progress",
    ];
    let run = run_with_client(&p, &server, &opts, &["imap", "smtp"]).expect_code(0);
    let out = &run.stdout;
    assert!(
        has_line(
            out,
            "front",
            "|",
            "IMAP authentication from 192.0.2.10 seen"
        ),
        "{out}"
    );
    assert!(
        has_line(
            out,
            "front",
            "|",
            "SMTP authentication from 192.0.2.10 seen"
        ),
        "{out}"
    );
    assert_eq!(out.matches("| TEST_OK").count(), 2, "{out}");
    // The matched line is in the log; the noise before it is not.
    assert!(
        out.contains("| Got header auth-protocol: imap;, client: 192.0.2.10"),
        "{out}"
    );
    assert!(!out.contains("noise"), "{out}");

    // One execution for the group, one per member, each with its own log.
    let group = execution_id(&run);
    let show = p
        .controller(&["executions", "show", &group])
        .expect_code(0)
        .stdout;
    let members: Vec<&str> = show.lines().filter(|l| l.contains(" member ")).collect();
    assert_eq!(members.len(), 2, "{show}");
    assert!(
        members[0].contains("segur-app/auth-imap") && members[0].contains("succeeded"),
        "{show}"
    );
    assert!(
        members[1].contains("segur-app/auth-smtp") && members[1].contains("succeeded"),
        "{show}"
    );
    let imap_id = members[0].split('┆').nth(1).unwrap().trim().to_string();
    let log = p
        .controller(&["executions", "log", &imap_id])
        .expect_code(0)
        .stdout;
    assert!(
        log.contains("TEST_OK") && log.contains("IMAP authentication from 192.0.2.10 seen"),
        "{log}"
    );
    assert!(!log.contains("SMTP"), "{log}");
}

#[test]
fn a_failed_test_shows_the_last_lines_and_the_group_resumes_at_it() {
    let (_key, server, p) = campaign();
    // Only SMTP logins: the IMAP test fails when its delay is over, with the last lines
    // it read; the group goes on (on_failure: continue) and fails.
    let run = run_with_client(&p, &server, &GROUP_RUN, &["smtp"]).expect_code(1);
    let out = &run.stdout;
    // The pattern as the job writes it: its values (secrets, maybe) are not logged.
    assert!(out.contains("no line matched /auth-protocol: imap;, client: (?P<ip>${option.ip}),/ in /tmp/auth.log within 5s"), "{out}");
    assert!(
        has_line(
            out,
            "front",
            "!",
            "Got header auth-protocol: smtp;, client: 192.0.2.10, server: _"
        ),
        "the last lines read are shown: {out}"
    );
    assert!(
        out.contains("within 5s; the last 20 line(s) read:"),
        "{out}"
    );
    assert_eq!(out.matches("| TEST_OK").count(), 1, "{out}");
    let table: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("segur-app/auth-"))
        .collect();
    assert!(
        table
            .iter()
            .any(|l| l.contains("auth-imap") && l.contains("failed")),
        "{out}"
    );
    assert!(
        table
            .iter()
            .any(|l| l.contains("auth-smtp") && l.contains("succeeded")),
        "{out}"
    );
    let group = execution_id(&run);

    // Retried from its first failed member, which now passes, and the members after it.
    let retry = thread::scope(|s| {
        s.spawn(|| client(&server, &["imap", "smtp"], 12));
        p.controller(&[
            "executions",
            "retry",
            &group,
            "--failed-only",
            "--no-progress",
        ])
    })
    .expect_code(0);
    assert!(
        retry
            .stdout
            .contains(&format!("retrying execution {group} (failed) from step 1:")),
        "{}",
        retry.stdout
    );
    assert_eq!(
        retry.stdout.matches("| TEST_OK").count(),
        2,
        "{}",
        retry.stdout
    );

    // A strict group (no on_failure: it stops at its first failed member).
    p.write(
        "jobs/strict.yaml",
        "options: { ip: { type: ip, required: true }, delai: { default: 5 } }\nsteps:\n  - { job: segur-app/auth-imap, import_options: true }\n  - { job: segur-app/auth-smtp, import_options: true }\n",
    );
    let strict = run_with_client(
        &p,
        &server,
        &["run", "strict", "-o", "ip=192.0.2.10", "--no-progress"],
        &["smtp"],
    )
    .expect_code(1);
    let out = &strict.stdout;
    assert!(!out.contains("job-step job segur-app/auth-smtp"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.contains("auth-smtp") && l.contains("not run")),
        "{out}"
    );

    // Retrying the strict group resumes at its failed first member: the second then runs.
    let strict_id = execution_id(&strict);
    let again = thread::scope(|s| {
        s.spawn(|| client(&server, &["imap", "smtp"], 12));
        p.controller(&[
            "executions",
            "retry",
            &strict_id,
            "--failed-only",
            "--no-progress",
        ])
    })
    .expect_code(0);
    assert_eq!(
        again.stdout.matches("| TEST_OK").count(),
        2,
        "{}",
        again.stdout
    );
}

#[test]
fn a_group_resumed_from_a_later_member_skips_those_that_passed() {
    let (_key, server, p) = campaign();
    // IMAP passes, SMTP does not: the retry runs only the SMTP test.
    let run = run_with_client(&p, &server, &GROUP_RUN, &["imap"]).expect_code(1);
    let group = execution_id(&run);
    let retry = thread::scope(|s| {
        s.spawn(|| client(&server, &["smtp"], 12));
        p.controller(&[
            "executions",
            "retry",
            &group,
            "--failed-only",
            "--no-progress",
        ])
    })
    .expect_code(0);
    let out = &retry.stdout;
    assert!(
        out.contains(&format!("retrying execution {group} (failed) from step 2:")),
        "{out}"
    );
    assert!(
        out.contains(&format!("succeeded in execution {group}, not run again")),
        "{out}"
    );
    assert!(!out.contains("job-step job segur-app/auth-imap"), "{out}");
    assert_eq!(out.matches("| TEST_OK").count(), 1, "{out}");
    let retry_id = execution_id(&retry);
    let show = p
        .controller(&["executions", "show", &retry_id])
        .expect_code(0)
        .stdout;
    let members: Vec<&str> = show.lines().filter(|l| l.contains(" member ")).collect();
    assert_eq!(members.len(), 1, "{show}");
    assert!(members[0].contains("segur-app/auth-smtp"), "{show}");
    assert!(show.contains("resumed   at step 2"), "{show}");
    // Nothing failed in the resumed run: nothing more to retry.
    let none = p
        .controller(&["executions", "retry", &retry_id, "--failed-only"])
        .expect_code(2);
    assert!(
        none.stderr.contains("every member succeeded"),
        "{}",
        none.stderr
    );
}

#[test]
fn a_wait_follows_the_file_across_rotation_and_reads_only_new_lines() {
    let (_key, server, p) = campaign();
    p.write(
        "jobs/ready.yaml",
        "targets: all\nsteps:\n  - wait_for: { file: /tmp/app.log, pattern: 'READY (?P<code>\\d+)', within: 20s }\n  - command: echo \"code=${step.1.match.code} line=${step.1.match}\"\n",
    );
    // A line from before the step started does not count (from: end).
    server.exec_inside("echo 'READY 1' > /tmp/app.log");
    let run = thread::scope(|s| {
        s.spawn(|| {
            thread::sleep(Duration::from_secs(2));
            server.exec_inside(
                "echo starting >> /tmp/app.log; sleep 1; mv /tmp/app.log /tmp/app.log.1; sleep 1.5; echo 'noise' > /tmp/app.log; echo 'READY 42' >> /tmp/app.log",
            );
        });
        p.controller(&["run", "ready", "--no-progress"])
    })
    .expect_code(0);
    let out = &run.stdout;
    assert!(
        has_line(out, "front", "|", "code=42 line=READY 42"),
        "{out}"
    );
    assert!(!out.contains("code=1 "), "{out}");
}

/// The group through the API: its members are listed in the execution with their own
/// ids, and the API's retry of failed parts resumes at the first failed member.
#[test]
fn the_api_lists_a_groups_members_and_retries_from_the_failed_one() {
    let (_key, server, p) = campaign();
    let port = ordo_tests::free_port();
    let _serve = p.serve(&[], &["--listen", &format!("http://127.0.0.1:{port}")]);
    ordo_tests::wait_for_port(port, "the API");
    let api = ordo_tests::api::Api::http(port).token(&p.admin_token());
    let finished = |id: &str| {
        let mut last = serde_json::Value::Null;
        ordo_tests::wait_until("the group to end", Duration::from_secs(60), || {
            last = api.get(&format!("/api/v1/executions/{id}")).json;
            last["status"] != "running"
        });
        last
    };
    let body = r#"{"options": {"ip": "192.0.2.10", "delai": "5"}}"#;
    let e = thread::scope(|s| {
        s.spawn(|| client(&server, &["imap"], 12));
        let r = api.post("/api/v1/jobs/segur-app", body);
        assert_eq!(r.status, 202, "{}", r.text);
        finished(r.json["execution"].as_str().unwrap())
    });
    assert_eq!(e["status"], "failed", "{e}");
    let children = e["children"].as_array().expect("children");
    assert_eq!(children.len(), 2, "{e}");
    assert_eq!(children[0]["job"], "segur-app/auth-imap");
    assert_eq!(children[0]["status"], "succeeded");
    assert_eq!(children[1]["job"], "segur-app/auth-smtp");
    assert_eq!(children[1]["status"], "failed");
    assert_eq!(children[1]["parent_id"], e["id"]);
    let smtp_log = api.get(&format!(
        "/api/v1/executions/{}/log",
        children[1]["id"].as_str().unwrap()
    ));
    assert!(
        smtp_log.text.contains("no line matched"),
        "{}",
        smtp_log.text
    );

    let again = thread::scope(|s| {
        s.spawn(|| client(&server, &["smtp"], 12));
        let r = api.post(
            &format!("/api/v1/executions/{}/retry", e["id"].as_str().unwrap()),
            r#"{"failed_only": true}"#,
        );
        assert_eq!(r.status, 202, "{}", r.text);
        finished(r.json["execution"].as_str().unwrap())
    });
    assert_eq!(again["status"], "succeeded", "{again}");
    let children = again["children"].as_array().unwrap();
    assert_eq!(
        children.len(),
        1,
        "only the failed member ran again: {again}"
    );
    assert_eq!(children[0]["job"], "segur-app/auth-smtp");
    assert_eq!(again["retry_of"], e["id"]);
    assert_eq!(again["resumed_at_step"], 2);
}

/// Rundeck job definitions, imported, run on a real sshd with Rundeck's results: options
/// (a default, a required one), an `exec`, a `script` with args, a `jobref` importing the
/// options, a tag node filter.
#[test]
fn imported_rundeck_jobs_run_on_real_servers_with_the_same_results() {
    let (_key, _server, p) = campaign();
    let rd = p.write(
        "rd.yaml",
        r#"- name: imap_auth
  group: tests/imap
  description: IMAP authentication test
  options:
    - name: ip
      required: true
      regex: '[0-9.]+'
    - name: delai
      value: '5'
  nodefilters:
    filter: 'tags: imap-front'
  sequence:
    keepgoing: false
    strategy: node-first
    commands:
      - exec: echo "checking ${option.ip} for ${option.delai}s"
      - script: |
          #!/bin/sh
          echo "args: $1 $2"
          echo TEST_OK
        args: one two
      - jobref:
          group: tests
          name: report
          importOptions: true
- name: report
  group: tests
  options:
    - name: ip
  nodefilters:
    filter: 'tags: imap-front'
  sequence:
    commands:
      - exec: echo "report for ${option.ip}"
"#,
    );
    p.controller(&["import", "rundeck", rd.to_str().unwrap()])
        .expect_code(0);
    p.controller(&["check"]).expect_code(0);
    let run = p
        .controller(&[
            "run",
            "tests/imap/imap_auth",
            "-o",
            "ip=192.0.2.10",
            "--no-progress",
        ])
        .expect_code(0);
    let out = &run.stdout;
    for line in [
        "checking 192.0.2.10 for 5s",
        "args: one two",
        "TEST_OK",
        "report for 192.0.2.10",
    ] {
        assert!(has_line(out, "front", "|", line), "`{line}` in {out}");
    }
    // Rundeck's regex still guards the option.
    let bad = p
        .controller(&[
            "run",
            "tests/imap/imap_auth",
            "-o",
            "ip=x; id",
            "--no-progress",
        ])
        .expect_code(2);
    assert!(bad.stderr.contains("ip"), "{}", bad.stderr);
}
