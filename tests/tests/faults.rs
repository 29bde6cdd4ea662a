//! Faults during a run, as a night shift meets them: a server's sshd killed mid-step, an
//! agent killed mid-step and restarted, the data folder's disk full. Each is reported per
//! server, the run finishes for the others, nothing recorded is lost, and the next run
//! (or `executions retry --failed-only`) completes the work.
//!
//! These tests kill processes and fill a disk: they run one at a time.

use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ordo_tests::agent::AgentProcess;
use ordo_tests::project::Project;
use ordo_tests::sshd::{ClientKey, SshServer};
use ordo_tests::{LOGIN_USER, RUN_AS_USER, processes, summary_row};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Starts `controller run JOB` and returns it running.
fn start_run(p: &Project, job: &str) -> std::process::Child {
    Command::new(ordo_tests::controller_bin())
        .arg("-C")
        .arg(p.path())
        .args(["run", job, "--no-progress", "--no-mail"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run controller")
}

fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn finish(child: std::process::Child) -> (i32, String) {
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn a_server_killed_mid_step_is_reported_and_retried() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let key = ClientKey::new();
    let mut s1 = SshServer::start(&key);
    let s2 = SshServer::start(&key);
    let p = Project::new();
    p.write(
        "ordo.yaml",
        &format!(
            "ssh:\n  user: {LOGIN_USER}\n  identity: [{}]\n  known_hosts: known_hosts\n  connect_timeout: 5s\n",
            key.private.display()
        ),
    );
    p.write(
        "known_hosts",
        &format!("{}{}", s1.known_hosts_line(), s2.known_hosts_line()),
    );
    p.write(
        "inventory.yaml",
        &format!(
            "servers:\n  s1: {{ host: 127.0.0.1, port: {} }}\n  s2: {{ host: 127.0.0.1, port: {} }}\n",
            s1.port, s2.port
        ),
    );
    p.write(
        "jobs/slow.yaml",
        &format!("targets: all\nrun_as: {RUN_AS_USER}\nsteps:\n  - script: |\n      echo started on $ORDO_NODE_NAME\n      if [ $ORDO_NODE_NAME = s1 ]; then sleep 317; else sleep 2; fi\n      echo done\n    timeout: 30s\n"),
    );
    let run = start_run(&p, "slow");
    // Once s1 is in its step, kill its sshd and every session it serves.
    wait_for("the step on s1", || {
        !processes(RUN_AS_USER, "^sleep 317$").is_empty()
    });
    s1.kill_all();
    let _ = Command::new("pkill")
        .args(["-KILL", "-u", RUN_AS_USER, "-f", "^sleep 317$"])
        .status();
    let (code, out) = finish(run);
    assert_eq!(code, 1, "{out}");
    assert!(summary_row(&out, "s1").contains("unreachable"), "{out}");
    assert!(summary_row(&out, "s2").contains("succeeded"), "{out}");
    s1.restart();
    p.write(
        "jobs/slow.yaml",
        &format!("targets: all\nrun_as: {RUN_AS_USER}\nsteps:\n  - script: echo again on $ORDO_NODE_NAME\n"),
    );
    let retry = p.retry_failed();
    assert!(retry.stdout.contains("again on s1"), "{}", retry.stdout);
    assert!(!retry.stdout.contains("again on s2"), "{}", retry.stdout);
}

#[test]
fn an_agent_killed_mid_step_is_reported_and_retried_once_restarted() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let p = Project::new();
    p.controller(&["pki", "init"]).expect_code(0);
    let mut ag = AgentProcess::start(&p, "ag1", &format!("[{RUN_AS_USER}]"));
    p.write(
        "inventory.yaml",
        &format!("servers:\n{}", ag.inventory_line("")),
    );
    p.write(
        "jobs/slow.yaml",
        &format!("targets: all\nrun_as: {RUN_AS_USER}\nsteps:\n  - script: |\n      echo started\n      sleep 3337\n"),
    );
    let run = start_run(&p, "slow");
    wait_for("the step", || {
        !processes(RUN_AS_USER, "^sleep 3337$").is_empty()
    });
    ag.kill();
    let (code, out) = finish(run);
    assert_eq!(code, 1, "{out}");
    assert!(summary_row(&out, "ag1").contains("unreachable"), "{out}");
    // The step outlived the killed agent; the restarted one stops it (`state_dir`).
    let orphaned = !processes(RUN_AS_USER, "^sleep 3337$").is_empty();
    ag.restart();
    let stopped = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        processes(RUN_AS_USER, "^sleep 3337$").is_empty()
    });
    let _ = Command::new("pkill")
        .args(["-KILL", "-u", RUN_AS_USER, "-f", "^sleep 3337$"])
        .status();
    assert!(
        orphaned,
        "the step did not outlive the killed agent: nothing to prove"
    );
    assert!(
        stopped,
        "the restarted agent left the orphaned step running"
    );
    p.write(
        "jobs/slow.yaml",
        &format!("targets: all\nrun_as: {RUN_AS_USER}\nsteps:\n  - command: echo back again\n"),
    );
    let retry = p.retry_failed();
    assert!(retry.stdout.contains("back again"), "{}", retry.stdout);
}

#[test]
fn a_full_disk_under_the_data_folder_is_reported_and_the_next_run_is_fine() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let p = Project::new();
    let data = p.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    ordo_tests::sh(&format!(
        "mount -t tmpfs -o size=4m tmpfs {}",
        data.display()
    ));
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(data.clone());
    let big = ordo_tests::temp_dir("big");
    let file = big.path().join("big_log.txt");
    std::fs::write(&file, vec![b'x'; 6 << 20]).unwrap();
    p.write("inventory.yaml", "servers:\n  here: { transport: local }\n");
    p.write(
        "jobs/small.yaml",
        "targets: all\nsteps:\n  - command: echo small\n",
    );
    p.write(
        "jobs/big.yaml",
        &format!(
            "targets: all\nsteps:\n  - command: echo collecting\ncollect: [\"{}\"]\n",
            file.display()
        ),
    );
    p.controller(&["run", "small", "--no-progress"])
        .expect_code(0);
    let full = p.controller(&["run", "big", "--no-progress"]);
    let said = format!("{}{}", full.stdout, full.stderr);
    assert_ne!(full.code, 0, "{said}");
    assert!(
        said.contains("No space left on device") || said.contains("disk is full"),
        "{said}"
    );
    // Space again: the history is intact and the next run is fine.
    ordo_tests::sh(&format!("rm -rf {}/executions/*", data.display()));
    p.controller(&["run", "small", "--no-progress"])
        .expect_code(0);
    let list = p.controller(&["executions", "list"]).expect_code(0).stdout;
    assert!(list.matches("small").count() >= 2, "{list}");
}

/// A login user whose sudo right is limited to the run-as user (no root) still stops a
/// timed-out step's whole tree: the kill runs as the run-as user.
#[test]
fn a_timeout_kills_the_tree_with_sudo_limited_to_the_run_as_user() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    ordo_tests::ensure_test_users();
    let limited = "ordolimited";
    if Command::new("id")
        .arg(limited)
        .output()
        .map(|o| !o.status.success())
        .unwrap_or(true)
    {
        ordo_tests::sh(&format!("useradd --create-home --shell /bin/sh {limited}"));
    }
    ordo_tests::sh(&format!("usermod -p '*' {limited}"));
    let rule = std::path::Path::new("/etc/sudoers.d/ordo-tests-limited");
    std::fs::write(
        rule,
        format!("{limited} ALL=({RUN_AS_USER}) NOPASSWD: ALL\n"),
    )
    .unwrap();
    ordo_tests::chmod(rule, 0o440);
    // The rule is what it says: no root.
    let root = Command::new("runuser")
        .args(["-u", limited, "--", "sudo", "-n", "true"])
        .output()
        .unwrap();
    assert!(
        !root.status.success(),
        "{limited} may sudo to root: the test proves nothing"
    );

    let key = ClientKey::new();
    let server = SshServer::start(&key);
    let p = Project::new();
    p.write(
        "ordo.yaml",
        &format!(
            "ssh:\n  user: {limited}\n  identity: [{}]\n  known_hosts: known_hosts\n",
            key.private.display()
        ),
    );
    p.write("known_hosts", &server.known_hosts_line());
    p.write(
        "inventory.yaml",
        &format!(
            "servers:\n  s1: {{ host: 127.0.0.1, port: {} }}\n",
            server.port
        ),
    );
    let marker = format!("ordo-limited-{}", std::process::id());
    p.write(
        "jobs/hang.yaml",
        &format!("targets: all\nrun_as: {RUN_AS_USER}\nsteps:\n  - name: hang\n    script: |\n      sh -c 'sleep 3501; echo {marker}' &\n      sleep 3502\n    timeout: 2s\n"),
    );
    let run = p
        .controller(&["run", "hang", "--no-progress", "--no-mail"])
        .expect_code(1);
    assert!(
        run.stdout.contains("step 1 (hang) timed out after 2s"),
        "{}",
        run.stdout
    );
    wait_for("the step's processes to be gone", || {
        processes(RUN_AS_USER, &marker).is_empty()
            && processes(RUN_AS_USER, "^sleep 350[12]$").is_empty()
    });
}

/// The SQLite history locked by another program longer than its busy timeout, or the
/// PostgreSQL server restarted, while a run writes: the run's output is kept and written
/// again once the database is back; the run ends recorded, nothing lost.
fn a_run_outlasts_its_database_going_away(database: Option<&str>, go_away: impl FnOnce(&Project)) {
    let p = Project::new();
    if let Some(url) = database {
        p.write("ordo.yaml", &format!("database: {url}\n"));
    }
    p.write("inventory.yaml", "servers:\n  here: { transport: local }\n");
    p.write(
        "jobs/talk.yaml",
        "targets: all\nsteps:\n  - script: |\n      echo before\n      sleep 4.31\n      for i in 1 2 3; do echo after $i; sleep 0.5; done\n",
    );
    let run = start_run(&p, "talk");
    wait_for("the step", || !processes("root", "^sleep 4.31$").is_empty());
    go_away(&p);
    let (code, out) = finish(run);
    assert_eq!(code, 0, "{out}");
    let show = p
        .controller(&["executions", "show", "latest"])
        .expect_code(0)
        .stdout;
    assert!(show.contains("status    succeeded"), "{show}");
    let log = p
        .controller(&["executions", "log", "latest"])
        .expect_code(0)
        .stdout;
    for line in ["before", "after 1", "after 3"] {
        assert!(log.contains(line), "`{line}` lost:\n{log}");
    }
}

#[test]
fn a_run_outlasts_a_locked_sqlite_history() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    a_run_outlasts_its_database_going_away(None, |p| {
        // Another program holds the write lock for 13 s (the busy timeout is 10 s).
        let db = p.path().join("data/ordo.db");
        let status = Command::new("/usr/bin/python3")
            .arg("-c")
            .arg(format!(
                "import sqlite3, time\nc = sqlite3.connect({db:?}, isolation_level=None)\nc.execute('BEGIN EXCLUSIVE')\ntime.sleep(13)\nc.execute('COMMIT')",
                db = db.display().to_string()
            ))
            .status()
            .unwrap();
        assert!(status.success());
    });
}

#[test]
fn a_run_outlasts_a_postgresql_restart() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let pg = ordo_tests::postgres::Postgres::start();
    let url = pg.database("ordo_restart");
    // Down for 3 s while the run writes its output (a restart for maintenance).
    a_run_outlasts_its_database_going_away(Some(&url), |_| {
        pg.outage(std::time::Duration::from_secs(3))
    });
}
