//! Jobs that start jobs (follow-ups by outcome, job steps), notifications by mail and
//! webhook (start, success, failure, late), and retention, through `controller run`.

use mail_parser::MimeHeaders;
use ordo_controller::store::Store;
use ordo_tests::project::Project;
use ordo_tests::webhook::WebhookServer;

fn local_project() -> Project {
    let p = Project::new();
    p.write("inventory.yaml", "servers:\n  vip: { transport: local }\n");
    std::fs::create_dir_all(p.path().join("data")).unwrap();
    p
}

fn store(p: &Project) -> (tokio::runtime::Runtime, Store) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let s = rt.block_on(Store::open(&p.sqlite_url())).unwrap();
    (rt, s)
}

#[test]
fn follow_ups_run_by_outcome_and_job_steps_run_between_server_steps() {
    let p = local_project();
    let out = p.path().join("out.txt");
    let o = out.display();
    p.write(
        "jobs/extract.yaml",
        &format!("targets: all\noptions: {{ day: {{ default: mon }}, fail: {{ default: 'no' }} }}\nsteps:\n  - command: 'echo extract >> {o}; [ ${{option.fail}} = no ]'\nthen:\n  on_success: [{{ job: report, options: {{ from: \"${{execution.id}}-${{option.day}}\" }} }}]\n  on_failure: [cleanup]\n  always: [{{ job: report, options: {{ from: \"always-${{execution.status}}\" }} }}]\n"),
    );
    p.write(
        "jobs/report.yaml",
        &format!("targets: all\noptions: {{ from: {{ required: true }} }}\nsteps:\n  - command: 'echo report ${{option.from}} >> {o}'\n"),
    );
    p.write(
        "jobs/cleanup.yaml",
        &format!("targets: all\nsteps:\n  - command: 'echo cleanup >> {o}'\n"),
    );
    p.write(
        "jobs/nightly.yaml",
        &format!("targets: all\nsteps:\n  - command: 'echo one >> {o}'\n  - job: report\n    options: {{ from: nightly }}\n  - command: 'echo three >> {o}'\n"),
    );

    let run = p
        .controller(&["run", "extract", "--no-progress"])
        .expect_code(0);
    let (rt, db) = store(&p);
    let ex = &rt.block_on(db.list_executions(Some("extract"), 5)).unwrap()[0];
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        format!("extract\nreport {}-mon\nreport always-succeeded\n", ex.id)
    );
    assert!(
        run.stdout.contains("follow-up job report of execution"),
        "{}",
        run.stdout
    );
    let reports = rt.block_on(db.list_executions(Some("report"), 5)).unwrap();
    assert_eq!(reports.len(), 2);
    for r in &reports {
        assert_eq!(r.parent_id.as_deref(), Some(ex.id.as_str()));
        assert_eq!(
            (r.cause.as_str(), r.status.as_str()),
            ("follow-up", "succeeded")
        );
    }

    std::fs::remove_file(&out).unwrap();
    p.controller(&["run", "extract", "-o", "fail=yes", "--no-progress"])
        .expect_code(1);
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "extract\ncleanup\nreport always-failed\n"
    );

    // A job step: every server finishes the steps before it, the job runs once, then
    // the steps after it.
    std::fs::remove_file(&out).unwrap();
    p.controller(&["run", "nightly", "--no-progress"])
        .expect_code(0);
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "one\nreport nightly\nthree\n"
    );
    let nightly = &rt.block_on(db.list_executions(Some("nightly"), 1)).unwrap()[0];
    let child = &rt.block_on(db.list_executions(Some("report"), 1)).unwrap()[0];
    assert_eq!(child.parent_id.as_deref(), Some(nightly.id.as_str()));
    assert_eq!(child.cause, "job-step");
    let node = &rt.block_on(db.nodes(&nightly.id)).unwrap()[0];
    assert_eq!((node.status.as_str(), node.step_reached), ("succeeded", 3));
    let log = p
        .controller(&["executions", "log", &nightly.id])
        .expect_code(0)
        .stdout;
    assert_eq!(log.lines().count(), 0, "the steps print nothing: {log}");

    // A cycle is refused at load time, with its path; running a job of it too.
    p.write(
        "jobs/cleanup.yaml",
        "targets: all\nsteps: [{ command: 'true' }]\nthen: { always: [extract] }\n",
    );
    let check = p.controller(&["check"]).expect_code(2);
    assert!(
        check.stderr.contains(
            "extract.yaml:7:16: jobs start each other in a cycle: extract -> cleanup -> extract"
        ),
        "{}",
        check.stderr
    );
    let refused = p.controller(&["run", "extract"]).expect_code(2);
    assert!(refused.stderr.contains("cycle"), "{}", refused.stderr);
}

#[test]
fn notifications_by_mail_and_webhook_per_event() {
    let hook = WebhookServer::start();
    let p = local_project();
    p.write(
        "jobs/broken.yaml",
        &format!(
            "description: nightly extract\ntargets: all\noptions: {{ token: {{ secret: true, default: hunter22 }} }}\nsteps:\n  - command: 'echo boom-output ${{option.token}}; echo on-stderr >&2; exit 3'\nnotify:\n  - on: failure\n    mail: {{ to: ops@example.com, attach_log: true }}\n  - on: [start, success, failure]\n    webhook: {{ url: \"{}\", headers: {{ X-Token: abc }} }}\n",
            hook.url("/hooks/ordo")
        ),
    );
    p.controller(&["run", "broken", "--no-progress"])
        .expect_code(1);
    let (rt, db) = store(&p);
    let id = rt.block_on(db.list_executions(Some("broken"), 1)).unwrap()[0]
        .id
        .clone();

    let got = hook.received();
    assert_eq!(got.len(), 2, "{got:#?}");
    assert_eq!(got[0]["path"], "/hooks/ordo");
    assert_eq!(got[0]["headers"]["x-token"], "abc");
    assert_eq!(got[0]["body"]["event"], "start");
    assert_eq!(got[0]["body"]["status"], "running");
    assert_eq!(got[1]["body"]["event"], "failure");
    assert_eq!(got[1]["body"]["execution"], id.as_str());
    assert_eq!(got[1]["body"]["status"], "failed");
    assert_eq!(got[1]["body"]["servers"]["failed"], 1);
    assert_eq!(got[1]["body"]["options"]["token"], "****");

    let mails: Vec<_> = std::fs::read_dir(p.path().join("data/outbox"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(mails.len(), 1);
    let raw = std::fs::read(mails[0].path()).unwrap();
    let mail = mail_parser::MessageParser::default().parse(&raw).unwrap();
    assert_eq!(
        mail.subject(),
        Some(format!("[ordo] broken failure: execution {id} failed").as_str())
    );
    let body = mail.body_text(0).unwrap();
    assert!(body.contains("Job broken (nightly extract)"), "{body}");
    assert!(body.contains("token = ****"), "{body}");
    let log = mail.attachments().next().expect("the log attached");
    assert_eq!(
        log.attachment_name(),
        Some(format!("broken-{id}.log.txt").as_str())
    );
    let text = String::from_utf8_lossy(log.contents());
    assert!(text.contains("vip [stdout] boom-output ****"), "{text}");
    assert!(text.contains("vip [stderr] on-stderr"), "{text}");
    assert!(!text.contains("hunter22"));

    let sent = rt.block_on(db.notifications(&id)).unwrap();
    let what: Vec<(String, String, bool)> = sent
        .iter()
        .map(|n| (n.event.clone(), n.channel.clone(), n.ok))
        .collect();
    assert_eq!(
        what,
        [
            ("start".into(), "webhook".into(), true),
            ("failure".into(), "mail".into(), true),
            ("failure".into(), "webhook".into(), true)
        ]
    );
}

#[test]
fn a_late_run_is_announced_and_a_failing_webhook_never_fails_the_run() {
    let hook = WebhookServer::start();
    let p = local_project();
    p.write(
        "jobs/slow.yaml",
        &format!(
            "targets: all\nsteps: [{{ command: sleep 2 }}]\nlate: 1s\nnotify:\n  - on: [late, success]\n    webhook: \"{}\"\n",
            hook.url("/late")
        ),
    );
    p.controller(&["run", "slow", "--no-progress"])
        .expect_code(0);
    let events: Vec<String> = hook
        .received()
        .iter()
        .map(|r| {
            format!(
                "{} {}",
                r["body"]["event"].as_str().unwrap(),
                r["body"]["status"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(events, ["late running", "success succeeded"]);

    hook.answer(500);
    p.controller(&["run", "slow", "--no-progress"])
        .expect_code(0);
    let (rt, db) = store(&p);
    let id = rt.block_on(db.list_executions(Some("slow"), 1)).unwrap()[0]
        .id
        .clone();
    let sent = rt.block_on(db.notifications(&id)).unwrap();
    assert_eq!(sent.len(), 2);
    assert!(sent.iter().all(|n| !n.ok));
    assert_eq!(
        sent[1].detail.as_deref(),
        Some("HTTP 500 Internal Server Error (after 3 attempts)")
    );
}

#[test]
fn retention_purges_the_oldest_executions_and_their_files() {
    let p = local_project();
    p.write(
        "jobs/daily.yaml",
        "targets: all\nsteps: [{ command: echo hi }]\nretention: { max_count: 2 }\n",
    );
    for _ in 0..4 {
        p.controller(&["run", "daily", "--no-progress"])
            .expect_code(0);
    }
    let (rt, db) = store(&p);
    let all: Vec<String> = rt
        .block_on(db.list_executions(Some("daily"), 10))
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(all.len(), 4);
    let dry = p
        .controller(&["executions", "purge", "--dry-run"])
        .expect_code(0)
        .stdout;
    assert!(dry.contains("would purge 2 execution(s)"), "{dry}");
    assert!(dry.contains(&all[2]) && dry.contains(&all[3]), "{dry}");
    let done = p.controller(&["executions", "purge"]).expect_code(0).stdout;
    assert!(done.contains("purged 2 execution(s)"), "{done}");
    let left: Vec<String> = rt
        .block_on(db.list_executions(Some("daily"), 10))
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(left, all[..2]);
    for (i, id) in all.iter().enumerate() {
        let dir = p.path().join("data/executions").join(id);
        assert_eq!(dir.exists(), i < 2, "{}", dir.display());
    }
    assert!(rt.block_on(db.logs(&all[3], None)).unwrap().is_empty());
}

/// Shell steps run inline (no upload, no run folder); other interpreters are uploaded
/// and the run folder is removed afterwards. Both see their arguments.
#[test]
fn shell_steps_run_inline_and_other_interpreters_from_the_run_folder() {
    let p = local_project();
    let remote = ordo_tests::temp_dir("remote");
    p.write(
        "jobs/mixed.yaml",
        &format!(
            "targets: all\nremote_dir: {}\nsteps:\n  - script: |\n      #!/usr/bin/python3\n      import sys\n      print('py', sys.argv[1], sys.argv[0].rsplit('/', 1)[-1])\n    args: [one]\n  - script: |\n      echo \"sh $1 $0\"\n    args: [two]\n",
            remote.path().display()
        ),
    );
    let run = p
        .controller(&["run", "mixed", "--no-progress"])
        .expect_code(0);
    assert!(
        ordo_tests::has_line(&run.stdout, "vip", "|", "py one step-1"),
        "{}",
        run.stdout
    );
    assert!(
        ordo_tests::has_line(&run.stdout, "vip", "|", "sh two ordo"),
        "{}",
        run.stdout
    );
    assert_eq!(
        std::fs::read_dir(remote.path()).unwrap().count(),
        0,
        "the run folder is left behind"
    );
}
