//! `controller serve` as operators run it: schedules firing once per fire, overlap
//! policies, missed fires, file triggers, reload, a crash during a run and its retry, and
//! two controllers on one PostgreSQL losing their leader.
//!
//! Schedules here use seconds (`*/2 * * * * *`) so that a few real seconds cover several
//! fires; what is checked is the recorded fires and executions, never timing alone.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use ordo_controller::store::{ExecutionRow, FireRow, Store};
use ordo_tests::postgres::Postgres;
use ordo_tests::project::Project;
use ordo_tests::{free_port, wait_until};

struct Db {
    rt: tokio::runtime::Runtime,
    store: Store,
}

impl Db {
    fn open(url: &str) -> Db {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let store = rt.block_on(Store::open(url)).expect("open the store");
        Db { rt, store }
    }

    fn executions(&self, job: &str) -> Vec<ExecutionRow> {
        let mut v = self
            .rt
            .block_on(self.store.list_executions(Some(job), 1000))
            .unwrap();
        v.reverse();
        v
    }

    fn fires(&self, job: &str) -> Vec<FireRow> {
        let mut v = self.rt.block_on(self.store.fires(Some(job), 1000)).unwrap();
        v.reverse();
        v
    }

    fn finished(&self, job: &str) -> usize {
        self.executions(job)
            .iter()
            .filter(|e| e.status != "running")
            .count()
    }
}

fn local_project(ordo_yaml: &str) -> Project {
    let p = Project::new();
    p.write("ordo.yaml", ordo_yaml);
    p.write("inventory.yaml", "servers:\n  vip: { transport: local }\n");
    std::fs::create_dir_all(p.path().join("data")).unwrap();
    p
}

/// Each fire is decided once and runs once: consecutive 2-second slots, no gap, one
/// execution each, with the schedule's options.
#[test]
fn a_schedule_fires_every_slot_once_with_its_options() {
    let p = local_project("serve: { lease_ttl: 3s }\n");
    p.write(
        "jobs/tick.yaml",
        "targets: all\noptions: { tag: { default: manual } }\nschedule:\n  cron: \"*/2 * * * * *\"\n  overlap: concurrent\n  timezone: UTC\n  options: { tag: scheduled }\nsteps:\n  - command: echo tick ${option.tag}\n",
    );
    let listed = p.controller(&["schedules"]).expect_code(0).stdout;
    assert!(
        listed.contains("tick") && listed.contains("*/2 * * * * *"),
        "{listed}"
    );
    assert!(
        listed.contains("UTC") && listed.contains("concurrent / skip"),
        "{listed}"
    );
    let next_fires = listed
        .lines()
        .filter(|l| l.matches(" UTC").count() >= 1 && l.matches(':').count() >= 2)
        .count();
    assert!(next_fires >= 3, "three next fire times: {listed}");

    let mut serve = p.serve(&[], &[]);
    let db = Db::open(&p.sqlite_url());
    wait_until("4 scheduled runs", Duration::from_secs(30), || {
        db.finished("tick") >= 4
    });
    assert_eq!(serve.stop(), 0, "{}", serve.log());

    let fires = db.fires("tick");
    let execs = db.executions("tick");
    assert!(fires.len() >= 4, "{fires:?}");
    for w in fires.windows(2) {
        assert_eq!(
            w[1].due_at - w[0].due_at,
            2000,
            "a gap or a double: {fires:?}"
        );
    }
    for f in &fires {
        assert_eq!(f.decision, "ran", "{f:?}");
        assert_eq!(f.due_at % 2000, 0);
        let runs: Vec<_> = execs
            .iter()
            .filter(|e| e.fire_key.as_deref() == Some(&f.fire_key))
            .collect();
        assert_eq!(
            runs.len(),
            1,
            "fire {} ran {} times",
            f.fire_key,
            runs.len()
        );
        assert_eq!(Some(&runs[0].id), f.execution_id.as_ref());
    }
    for e in execs.iter().filter(|e| e.status != "aborted") {
        assert_eq!(
            (e.status.as_str(), e.cause.as_str()),
            ("succeeded", "schedule"),
            "{e:?}"
        );
        assert_eq!(e.options, r#"{"tag":"scheduled"}"#);
    }
    let log = p
        .controller(&["executions", "log", &execs[0].id])
        .expect_code(0)
        .stdout;
    assert!(log.contains("tick scheduled"), "{log}");
    let listed = p.controller(&["schedules"]).expect_code(0).stdout;
    assert!(listed.contains(" ran "), "the last fire is shown: {listed}");
}

fn no_overlap(execs: &[ExecutionRow]) {
    for w in execs.windows(2) {
        let end = w[0].finished_at.expect("finished");
        assert!(
            w[1].started_at >= end,
            "{} started before {} ended",
            w[1].id,
            w[0].id
        );
    }
}

/// skip: a fire during a run is recorded as skipped; queue: it runs after, in order.
#[test]
fn overlapping_fires_are_skipped_or_queued_as_the_job_says() {
    let p = local_project("");
    for (name, overlap) in [("skipper", "skip"), ("queuer", "queue")] {
        p.write(
            &format!("jobs/{name}.yaml"),
            &format!("targets: all\nschedule: {{ cron: \"* * * * * *\", overlap: {overlap} }}\nsteps:\n  - command: sleep 2.2\n"),
        );
    }
    let mut serve = p.serve(&[], &[]);
    let db = Db::open(&p.sqlite_url());
    wait_until("3 runs of each", Duration::from_secs(40), || {
        db.finished("skipper") >= 3 && db.finished("queuer") >= 3
    });
    serve.stop();

    let skipped = db.fires("skipper");
    let execs = db.executions("skipper");
    no_overlap(&execs[..execs.len() - 1]);
    let n_skipped = skipped.iter().filter(|f| f.decision == "skipped").count();
    assert!(n_skipped >= 4, "{skipped:?}");
    assert!(
        skipped.iter().filter(|f| f.decision == "skipped").all(|f| f
            .note
            .as_deref()
            .unwrap_or("")
            .contains("still going"))
    );
    assert_eq!(
        skipped.iter().filter(|f| f.decision == "ran").count(),
        execs.len()
    );

    let queued = db.fires("queuer");
    let execs = db.executions("queuer");
    no_overlap(&execs[..execs.len() - 1]);
    // Every fire either ran (in fire order) or is still waiting: none is skipped.
    assert!(
        queued
            .iter()
            .all(|f| f.decision == "ran" || f.decision == "queued"),
        "{queued:?}"
    );
    assert!(queued.iter().any(|f| f.decision == "queued"), "{queued:?}");
    let ran: Vec<&FireRow> = queued.iter().filter(|f| f.decision == "ran").collect();
    let by_id: HashMap<&str, &ExecutionRow> = execs.iter().map(|e| (e.id.as_str(), e)).collect();
    let starts: Vec<i64> = ran
        .iter()
        .map(|f| by_id[f.execution_id.as_deref().unwrap()].started_at)
        .collect();
    assert!(
        starts.windows(2).all(|w| w[0] < w[1]),
        "queued fires ran out of order"
    );
    // A queued fire starts well after its time: when the run before it ended.
    assert!(ran.iter().zip(&starts).any(|(f, s)| s - f.due_at > 1500));
}

/// Fires missed while no controller ran: `catch-up` runs once for the latest, `skip`
/// records them as missed.
#[test]
fn missed_fires_are_caught_up_once_or_recorded_as_missed() {
    let p = local_project("serve: { misfire_grace: 1s }\n");
    for (name, missed) in [("catcher", "catch-up"), ("skipper", "skip")] {
        p.write(
            &format!("jobs/{name}.yaml"),
            &format!("targets: all\nschedule: {{ cron: \"0 0 1 1 *\", missed: {missed} }}\nsteps:\n  - command: echo ran\n"),
        );
    }
    // The schedules were known since 2020: every first of January since was missed.
    let db = Db::open(&p.sqlite_url());
    for job in ["catcher", "skipper"] {
        db.rt
            .block_on(db.store.schedule_since(job, 1_577_000_000_000))
            .unwrap();
    }
    let mut serve = p.serve(&[], &[]);
    wait_until("the catch-up run", Duration::from_secs(20), || {
        db.finished("catcher") == 1 && db.fires("skipper").len() == 1
    });
    std::thread::sleep(Duration::from_secs(1));
    serve.stop();
    let year = chrono_year();
    let c = db.fires("catcher");
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!(c[0].decision, "ran");
    let note = c[0].note.clone().unwrap();
    assert!(note.starts_with("catch-up: "), "{note}");
    assert!(note.contains(&format!("fire(s) missed while no controller fired schedules, the latest at {year}-01-01 00:00:00")), "{note}");
    assert_eq!(db.executions("catcher")[0].status, "succeeded");
    let s = db.fires("skipper");
    assert_eq!((s.len(), s[0].decision.as_str()), (1, "missed"), "{s:?}");
    assert!(db.executions("skipper").is_empty());
    assert!(
        serve.log().contains("skipped (missed: skip)"),
        "{}",
        serve.log()
    );
}

fn chrono_year() -> String {
    ordo_tests::sh("date -u +%Y").trim().to_string()
}

/// A file appearing in the watched folder fires the job once, with its path as option;
/// other names are ignored; a restart does not fire it again; a new version does.
#[test]
fn a_file_dropped_in_the_watched_folder_fires_the_job_once() {
    let p = local_project("");
    let inbox = p.path().join("inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    let out = p.path().join("out.txt");
    p.write(
        "jobs/ingest.yaml",
        &format!(
            "targets: all\noptions: {{ file: {{ required: true }} }}\nwatch: {{ path: {}, pattern: \"*.csv\", option: file, settle: 500ms }}\nsteps:\n  - command: 'echo \"got ${{option.file}} $(cat ${{option.file}})\" >> {}'\n",
            inbox.display(),
            out.display()
        ),
    );
    // The same by polling (network filesystems), on another folder.
    let share = p.path().join("share");
    std::fs::create_dir_all(&share).unwrap();
    p.write(
        "jobs/polled.yaml",
        &format!(
            "targets: all\noptions: {{ file: {{}} }}\nwatch: {{ path: {}, pattern: \"IN_*\", option: file, poll: 300ms, settle: 300ms }}\nsteps:\n  - command: 'mv ${{option.file}} ${{option.file}}.done'\n",
            share.display()
        ),
    );
    let mut serve = p.serve(&[], &[]);
    serve.wait_log("watching", Duration::from_secs(20));
    std::fs::write(share.join("IN_1"), "x").unwrap();
    std::fs::write(inbox.join("a.csv"), "v1").unwrap();
    std::fs::write(inbox.join("notes.txt"), "ignored").unwrap();
    let db = Db::open(&p.sqlite_url());
    wait_until("the run for a.csv", Duration::from_secs(20), || {
        db.finished("ingest") == 1
    });
    let e = &db.executions("ingest")[0];
    assert_eq!(e.cause, "watch");
    wait_until("the polled run", Duration::from_secs(20), || {
        db.finished("polled") == 1
    });
    assert!(share.join("IN_1.done").exists());
    let a = inbox.join("a.csv").display().to_string();
    assert_eq!(e.options, format!(r#"{{"file":"{a}"}}"#));
    serve.stop();

    let mut serve = p.serve(&[], &[]);
    serve.wait_log("watching", Duration::from_secs(20));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        db.executions("ingest").len(),
        1,
        "a.csv fired again after a restart"
    );
    std::fs::write(inbox.join("a.csv"), "v2-longer").unwrap();
    wait_until("the run for the new a.csv", Duration::from_secs(20), || {
        db.finished("ingest") == 2
    });
    serve.stop();
    let lines = std::fs::read_to_string(&out).unwrap();
    assert_eq!(lines, format!("got {a} v1\ngot {a} v2-longer\n"));
}

/// The API of a `serve` on `port` (plain HTTP on loopback) with an administrator's token.
fn api(p: &Project, port: u16) -> ordo_tests::api::Api {
    ordo_tests::api::Api::http(port).token(&p.admin_token())
}

/// SIGHUP and the API reload jobs; an invalid set is refused whole and the old one stays.
#[test]
fn reload_takes_a_valid_set_and_refuses_an_invalid_one() {
    let port = free_port();
    let p = local_project("");
    p.write(
        "jobs/one.yaml",
        "targets: all\nschedule: \"*/2 * * * * *\"\nsteps: [{ command: echo one }]\n",
    );
    let mut serve = p.serve(&[], &["--listen", &format!("http://127.0.0.1:{port}")]);
    let api = api(&p, port);
    ordo_tests::wait_for_port(port, "the API");
    let db = Db::open(&p.sqlite_url());
    wait_until("a run of one", Duration::from_secs(20), || {
        db.finished("one") >= 1
    });

    // A broken second job: the reload is refused, `one` goes on firing.
    p.write(
        "jobs/two.yaml",
        "targets: all\nschedule: \"61 * * * *\"\nsteps: [{ command: echo two }]\n",
    );
    serve.signal("HUP");
    serve.wait_log("reload refused", Duration::from_secs(10));
    assert!(
        serve
            .log()
            .contains("two.yaml:2:11: schedule: `61 * * * *` is not a valid cron expression"),
        "{}",
        serve.log()
    );
    let r = api.post("/api/v1/reload", "{}");
    assert_eq!(r.status, 422, "{}", r.text);
    assert!(r.text.contains("two.yaml:2:11"), "{}", r.text);
    let before = db.finished("one");
    wait_until("one still firing", Duration::from_secs(20), || {
        db.finished("one") > before
    });

    // Fixed: reloaded; `two` fires and the API lists both schedules.
    p.write(
        "jobs/two.yaml",
        "targets: all\nschedule: \"*/2 * * * * *\"\nsteps: [{ command: echo two }]\n",
    );
    let r = api.post("/api/v1/reload", "{}");
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.text.contains("2 jobs (2 scheduled"), "{}", r.text);
    wait_until("a run of two", Duration::from_secs(20), || {
        db.finished("two") >= 1
    });
    let v = api.get("/api/v1/schedules").json;
    let jobs: Vec<&str> = v["schedules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["job"].as_str().unwrap())
        .collect();
    assert_eq!(jobs, ["one", "two"]);
    serve.stop();
}

/// The controller dies during a run: on restart the run is interrupted (with the step
/// each server reached), and `executions retry --failed-only` runs it again.
#[test]
fn a_run_cut_by_a_crash_is_marked_interrupted_and_can_be_retried() {
    let port = free_port();
    let hook = ordo_tests::webhook::WebhookServer::start();
    let p = local_project("");
    let flag = p.path().join("slow");
    std::fs::write(&flag, "").unwrap();
    p.write(
        "jobs/long.yaml",
        &format!(
            "targets: all\noptions: {{ who: {{ default: nobody }} }}\nsteps:\n  - command: echo first\n  - command: 'if [ -f {f} ]; then sleep 15; fi; echo second ${{option.who}}'\nnotify: [{{ on: failure, webhook: \"{u}\" }}]\n",
            f = flag.display(),
            u = hook.url("/alerts")
        ),
    );
    let mut serve = p.serve(&[], &["--listen", &format!("http://127.0.0.1:{port}")]);
    let api = api(&p, port);
    ordo_tests::wait_for_port(port, "the API");
    let r = api.post("/api/v1/jobs/long", r#"{"options": {"who": "ops"}}"#);
    assert_eq!(r.status, 202, "{}", r.text);
    let id = r.json["execution"].as_str().unwrap().to_string();
    let db = Db::open(&p.sqlite_url());
    wait_until("step 2 under way", Duration::from_secs(20), || {
        db.rt
            .block_on(db.store.nodes(&id))
            .map(|n| n.first().is_some_and(|n| n.step_reached == 2))
            .unwrap_or(false)
    });
    serve.kill();
    assert_eq!(
        db.rt.block_on(db.store.find_execution(&id)).unwrap().status,
        "running"
    );

    let mut again = p.serve(&[], &[]);
    wait_until(
        "the run marked interrupted",
        Duration::from_secs(20),
        || db.rt.block_on(db.store.find_execution(&id)).unwrap().status == "interrupted",
    );
    again.stop();
    let e = db.rt.block_on(db.store.find_execution(&id)).unwrap();
    assert!(e.error.unwrap().contains("stopped during the run"));
    let n = &db.rt.block_on(db.store.nodes(&id)).unwrap()[0];
    assert_eq!((n.status.as_str(), n.step_reached), ("interrupted", 2));
    assert_eq!(n.error.as_deref(), Some("interrupted during step 2"));
    let shown = p
        .controller(&["executions", "show", &id])
        .expect_code(0)
        .stdout;
    assert!(shown.contains("interrupted during step 2"), "{shown}");

    std::fs::remove_file(&flag).unwrap();
    let retry = p
        .controller(&["executions", "retry", &id, "--failed-only", "--no-progress"])
        .expect_code(0);
    assert!(
        retry.stdout.contains("retrying execution"),
        "{}",
        retry.stdout
    );
    assert!(
        ordo_tests::has_line(&retry.stdout, "vip", "|", "second ops"),
        "{}",
        retry.stdout
    );
    let last = db.executions("long").pop().unwrap();
    assert_eq!(last.retry_of.as_deref(), Some(id.as_str()));
    assert_eq!(
        (last.status.as_str(), last.cause.as_str()),
        ("succeeded", "retry")
    );
    // Nothing left to retry once every server succeeded.
    let none = p
        .controller(&["executions", "retry", &last.id, "--failed-only"])
        .expect_code(2);
    assert!(
        none.stderr.contains("every server succeeded"),
        "{}",
        none.stderr
    );
}

/// Two controllers on one PostgreSQL: one fires; killed, the other takes over within the
/// lease time, and every 2-second fire in the whole window ran exactly once.
#[test]
fn failover_between_two_controllers_loses_and_doubles_no_fire() {
    let pg = Postgres::start();
    let url = pg.database("ordo");
    let p = local_project("serve: { lease_ttl: 2s, dead_after: 4s, misfire_grace: 30s }\n");
    p.write(
        "jobs/beat.yaml",
        // Concurrent: a slow run (the machine is busy with other tests) must not turn a
        // fire into a skip; this test is about fires, not overlap.
        "targets: all\nschedule: { cron: \"*/2 * * * * *\", overlap: concurrent }\nsteps: [{ command: echo beat }]\n",
    );
    let db = Db::open(&url);
    let mut a = p.serve(&["--database", &url], &[]);
    a.wait_log(
        "this controller is the scheduler now",
        Duration::from_secs(20),
    );
    let mut b = p.serve(&["--database", &url], &[]);
    b.wait_log("controller serve started", Duration::from_secs(20));
    wait_until(
        "3 fires by the first leader",
        Duration::from_secs(30),
        || db.finished("beat") >= 3,
    );
    // Kill the leader just before a fire is due (xx:xx:x1.8).
    wait_until("just before a fire", Duration::from_secs(5), || {
        let ms = chrono_ms() % 2000;
        (1750..1900).contains(&ms)
    });
    a.kill();
    let killed_at = chrono_ms();
    b.wait_log(
        "this controller is the scheduler now",
        Duration::from_secs(20),
    );
    wait_until("fires by the new leader", Duration::from_secs(30), || {
        db.fires("beat")
            .iter()
            .filter(|f| f.decided_by.contains(":serve") && f.due_at > killed_at + 4000)
            .count()
            >= 2
    });
    b.stop();

    let fires = db.fires("beat");
    let execs = db.executions("beat");
    for w in fires.windows(2) {
        assert_eq!(
            w[1].due_at - w[0].due_at,
            2000,
            "a fire lost or doubled around {}: {fires:#?}",
            w[0].due_at
        );
    }
    let mut runs: BTreeMap<String, usize> = BTreeMap::new();
    for e in &execs {
        *runs.entry(e.fire_key.clone().unwrap()).or_default() += 1;
    }
    for f in &fires {
        assert_eq!(f.decision, "ran", "{f:?}");
        assert_eq!(
            runs.get(&f.fire_key),
            Some(&1),
            "fire {} ran {:?} times",
            f.fire_key,
            runs.get(&f.fire_key)
        );
    }
    let deciders: std::collections::BTreeSet<&str> =
        fires.iter().map(|f| f.decided_by.as_str()).collect();
    assert_eq!(deciders.len(), 2, "both controllers fired: {deciders:?}");
    // The fire due while nobody led ran late, by the new leader.
    assert!(
        fires
            .iter()
            .any(|f| f.due_at > killed_at && f.decided_at - f.due_at > 500),
        "{fires:#?}"
    );
}

fn chrono_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// An operator switches a schedule off through the API: it stops firing, `schedules`
/// says who switched it off; switched on, it fires again without catching up the fires
/// it skipped. A viewer may not switch it.
#[test]
fn a_schedule_switched_off_through_the_api_stays_off_until_switched_on() {
    let port = free_port();
    let p = local_project("serve: { lease_ttl: 3s }\n");
    p.write(
        "jobs/ops/tick.yaml",
        "targets: all\nschedule: { cron: \"*/2 * * * * *\", missed: catch-up }\nsteps: [{ command: echo tick }]\n",
    );
    p.add_user("olga", "operator", &["--projects", "ops"]);
    p.add_user("vic", "viewer", &["--projects", "ops"]);
    let olga = ordo_tests::api::Api::http(port).token(&p.token("olga"));
    let vic = ordo_tests::api::Api::http(port).token(&p.token("vic"));
    let _serve = p.serve(&[], &["--listen", &format!("http://127.0.0.1:{port}")]);
    ordo_tests::wait_for_port(port, "the API");
    let db = Db::open(&p.sqlite_url());
    wait_until("a first tick", Duration::from_secs(20), || {
        db.finished("ops/tick") >= 1
    });

    let off = r#"{"enabled": false}"#;
    assert_eq!(
        vic.call("PUT", "/api/v1/schedules/ops/tick", Some(off))
            .status,
        403
    );
    let r = olga.call("PUT", "/api/v1/schedules/ops/tick", Some(off));
    assert_eq!(r.status, 200, "{}", r.text);
    let listed = olga.get("/api/v1/schedules").json;
    assert_eq!(listed["schedules"][0]["enabled"], false, "{listed}");
    assert!(
        listed["schedules"][0]["switched_off_by"]["by"]
            .as_str()
            .unwrap()
            .starts_with("olga")
    );
    let shown = p.controller(&["schedules"]).expect_code(0).stdout;
    assert!(shown.contains("switched off by olga"), "{shown}");
    // A tick already decided may still start; then nothing for 6 s (3 slots).
    std::thread::sleep(Duration::from_secs(3));
    let during = db.executions("ops/tick").len();
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(
        db.executions("ops/tick").len(),
        during,
        "fired while switched off"
    );

    let r = olga.call(
        "PUT",
        "/api/v1/schedules/ops/tick",
        Some(r#"{"enabled": true}"#),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    wait_until("a tick after switching on", Duration::from_secs(20), || {
        db.executions("ops/tick").len() > during
    });
    std::thread::sleep(Duration::from_secs(1));
    let caught_up: Vec<_> = db
        .executions("ops/tick")
        .into_iter()
        .filter(|e| {
            e.cause.contains("catch") || e.error.as_deref().is_some_and(|x| x.contains("catch-up"))
        })
        .collect();
    assert!(
        caught_up.is_empty(),
        "the skipped fires were caught up: {caught_up:?}"
    );
    let n = db.executions("ops/tick").len();
    assert!(
        n <= during + 2,
        "{n} runs right after switching on (from {during})"
    );
}

/// `executions abort` stops a `controller run` from another process; the API of one
/// controller of a pair stops a run the other one runs. Either way the run ends `aborted`
/// and its remote process is killed.
#[test]
fn an_execution_is_aborted_from_the_cli_or_through_another_controller() {
    let pg = Postgres::start();
    let url = pg.database("ordo");
    let p = local_project(&format!("database: {url}\n"));
    p.write(
        "jobs/long.yaml",
        "targets: all\nsteps:\n  - command: 'echo started; sleep 300; echo ordo-abort-marker'\n",
    );
    let db = Db::open(&url);
    let sleeping =
        || !ordo_tests::processes("root", "sleep 300; echo ordo-abort-marker").is_empty();

    // 1. A foreground run, aborted from another terminal.
    let out = p.controller_during(&["run", "long"], sleeping, |_| {
        let a = p.controller(&["executions", "abort", "latest"]);
        assert_eq!(a.code, 0, "{}{}", a.stdout, a.stderr);
        assert!(a.stdout.contains("aborted"), "{}", a.stdout);
    });
    assert_ne!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(db.executions("long").last().unwrap().status, "aborted");
    wait_until("the remote sleep killed", Duration::from_secs(10), || {
        !sleeping()
    });

    // 2. Started on controller A, aborted through controller B's API.
    let token = p.admin_token();
    let (pa, pb) = (free_port(), free_port());
    let _a = p.serve(&[], &["--listen", &format!("http://127.0.0.1:{pa}")]);
    let _b = p.serve(&[], &["--listen", &format!("http://127.0.0.1:{pb}")]);
    ordo_tests::wait_for_port(pa, "controller A");
    ordo_tests::wait_for_port(pb, "controller B");
    let a = ordo_tests::api::Api::http(pa).token(&token);
    let b = ordo_tests::api::Api::http(pb).token(&token);
    let r = a.post("/api/v1/jobs/long", "{}");
    assert_eq!(r.status, 202, "{}", r.text);
    let id = r.json["execution"].as_str().unwrap().to_string();
    wait_until("the run under way", Duration::from_secs(20), sleeping);
    let r = b.post(&format!("/api/v1/executions/{id}/abort"), "{}");
    assert_eq!(r.status, 202, "{}", r.text);
    wait_until("the run aborted", Duration::from_secs(15), || {
        b.get(&format!("/api/v1/executions/{id}")).json["status"] == "aborted"
    });
    wait_until("the remote sleep killed", Duration::from_secs(10), || {
        !sleeping()
    });
    let r = b.post(&format!("/api/v1/executions/{id}/abort"), "{}");
    assert_eq!(r.status, 409, "aborting an ended run: {}", r.text);
    let audit = b.get("/api/v1/audit?action=abort");
    assert!(audit.text.contains(&id), "{}", audit.text);
}
