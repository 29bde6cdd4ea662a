//! The `controller` binary on the `local` transport: the README's quickstart, exit codes,
//! errors with positions, timeouts that kill the whole process tree, retries, stop on
//! failure, limits, and secrets kept out of logs and history.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn controller(project: &Path, args: &[&str]) -> Run {
    controller_env(project, args, &[])
}

fn controller_env(project: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_controller"))
        .envs(env.iter().copied())
        .arg("-C")
        .arg(project)
        .args(args)
        .env_remove("ORDO_PROJECT")
        .output()
        .expect("run controller");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn project(inventory: &str, jobs: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("inventory.yaml"), inventory).unwrap();
    std::fs::create_dir_all(dir.path().join("jobs")).unwrap();
    for (name, text) in jobs {
        std::fs::write(dir.path().join("jobs").join(format!("{name}.yaml")), text).unwrap();
    }
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if src.is_dir() {
            if e.file_name() != "data" {
                copy_dir(&src, &dst);
            }
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

fn outbox(project: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(project.join("data/outbox"))
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

#[test]
fn quickstart_runs_end_to_end_and_mails_to_the_outbox() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/quickstart"),
        dir.path(),
    );
    let run = controller(dir.path(), &["run", "vip-collect", "--no-progress"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("succeeded: 1 of 1 server(s)"),
        "{}",
        run.stdout
    );
    let mails = outbox(dir.path());
    assert_eq!(mails.len(), 1);
    let raw = std::fs::read(&mails[0]).unwrap();
    let mail = mail_parser::MessageParser::default().parse(&raw).unwrap();
    assert!(
        mail.subject()
            .unwrap()
            .starts_with("Résultat $U du script (succeeded)")
    );
    let attachment = mail.attachments().next().expect("archive attached");
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(attachment.contents()));
    let mut found = Vec::new();
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().display().to_string();
        let mut text = String::new();
        e.read_to_string(&mut text).unwrap();
        found.push((path, text));
    }
    let (_, text) = found
        .iter()
        .find(|(p, _)| p.contains("/vip/fichier_") && p.ends_with("_log.txt"))
        .unwrap_or_else(|| {
            panic!(
                "no result file in {:?}",
                found.iter().map(|f| &f.0).collect::<Vec<_>>()
            )
        });
    assert!(text.contains("environment: SOC_PRODUCTION"), "{text}");
    assert!(
        found
            .iter()
            .any(|(p, t)| p.ends_with("/summary.txt") && t.contains("succeeded"))
    );
}

#[test]
fn bad_input_exits_2_with_every_error_and_its_position() {
    let dir = project(
        "servers:\n  a: { transport: local, prot: 1 }\n",
        &[
            (
                "broken",
                "targets: group:A and\nsteps:\n  - command: true\n    timeout: soon\n",
            ),
            (
                "ok",
                "targets: all\noptions:\n  n: { type: integer }\nsteps:\n  - command: echo ${option.n}\n",
            ),
        ],
    );
    let check = controller(dir.path(), &["check"]);
    assert_eq!(check.code, 2);
    let inv = dir.path().join("inventory.yaml").display().to_string();
    let job = dir.path().join("jobs/broken.yaml").display().to_string();
    assert!(
        check.stderr.contains(&format!(
            "{inv}:2:26: server `a`: unknown key `prot` (did you mean `port`?)"
        )),
        "{}",
        check.stderr
    );
    assert!(
        check
            .stderr
            .contains(&format!("{job}:1:21: targets: expected a term after this")),
        "{}",
        check.stderr
    );
    assert!(
        check.stderr.contains(&format!(
            "{job}:4:14: step 1: timeout: `soon` is not a duration"
        )),
        "{}",
        check.stderr
    );
    assert!(check.stderr.contains("3 error(s)"), "{}", check.stderr);

    std::fs::write(
        dir.path().join("inventory.yaml"),
        "servers:\n  a: { transport: local }\n",
    )
    .unwrap();
    let run = controller(dir.path(), &["run", "ok", "--opt", "n=ten", "--opt", "m=1"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("option `m`: job `ok` has no such option (its options are: n)"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("option `n`: `ten` is not an integer"),
        "{}",
        run.stderr
    );
    let run = controller(dir.path(), &["run", "ok", "--limit", "group:nothing"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("no server matches"), "{}", run.stderr);
    let run = controller(dir.path(), &["run", "nope"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("no job named `nope`") && run.stderr.contains("known jobs: broken, ok"),
        "{}",
        run.stderr
    );
    assert!(
        !dir.path().join("data/ordo.db").exists()
            || controller(dir.path(), &["executions", "list"])
                .stdout
                .lines()
                .count()
                <= 3
    );
}

#[test]
fn a_step_timeout_kills_the_whole_process_tree() {
    let marker = format!("ordo-timeout-{}", std::process::id());
    let job = format!(
        "targets: all\nsteps:\n  - name: hang\n    script: |\n      sh -c 'sleep 300; echo {marker}' &\n      sleep 301\n    timeout: 1s\n"
    );
    let dir = project(
        "servers:\n  a: { transport: local }\n  b: { transport: local }\n",
        &[("hang", &job)],
    );
    let run = controller(dir.path(), &["run", "hang", "--no-progress"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("timed-out"), "{}", run.stdout);
    assert!(
        run.stdout.contains("step 1 (hang) timed out after 1s"),
        "{}",
        run.stdout
    );
    // Neither the script's shell nor the background child it started survive.
    let left = Command::new("pgrep")
        .args(["-f", &marker])
        .output()
        .unwrap();
    assert!(
        left.stdout.is_empty(),
        "processes left: {}",
        String::from_utf8_lossy(&left.stdout)
    );
    let show = controller(dir.path(), &["executions", "show", "latest"]).stdout;
    assert!(
        show.contains("status    failed") && show.contains("timed-out"),
        "{show}"
    );
}

#[test]
fn retries_stop_on_failure_and_secrets() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path().display();
    let flaky = format!(
        "targets: all\nsteps:\n  - script: |\n      if [ -e {w}/$ORDO_NODE_NAME.once ]; then echo second try; else touch {w}/$ORDO_NODE_NAME.once; exit 4; fi\n    retries: 2\n    retry_delay: 0s\n"
    );
    let stop = "targets: all\nparallelism: 1\non_failure: stop\nsteps:\n  - command: test $ORDO_NODE_NAME != a\n";
    let secret = "targets: all\noptions:\n  password: { secret: true, required: true }\nsteps:\n  - script: echo \"pw=$ORDO_OPTION_PASSWORD arg=$1\"\n    args: [\"${option.password}\"]\n";
    let dir = project(
        "servers:\n  a: { transport: local }\n  b: { transport: local }\n  c: { transport: local }\n",
        &[("flaky", &flaky), ("stop", stop), ("secret", secret)],
    );
    let run = controller(dir.path(), &["run", "flaky", "--no-progress"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(
        run.stdout.matches("exit code 4; retry 1 of 2").count(),
        3,
        "{}",
        run.stdout
    );
    assert_eq!(
        run.stdout.matches("| second try").count(),
        3,
        "{}",
        run.stdout
    );

    let run = controller(dir.path(), &["run", "stop", "--no-progress"]);
    assert_eq!(run.code, 1);
    let rows: Vec<&str> = run.stdout.lines().filter(|l| l.contains("┆")).collect();
    assert!(
        rows.iter()
            .any(|l| l.contains(" a ") && l.contains("failed")),
        "{}",
        run.stdout
    );
    assert!(
        rows.iter()
            .any(|l| l.contains(" b ") && l.contains("skipped")),
        "{}",
        run.stdout
    );
    assert!(
        rows.iter()
            .any(|l| l.contains(" c ") && l.contains("skipped")),
        "{}",
        run.stdout
    );

    // A secret never goes on a command line: `--opt` is refused for it.
    let refused = controller(
        dir.path(),
        &[
            "run",
            "secret",
            "--opt",
            "password=hunter2-xyz",
            "--no-progress",
        ],
    );
    assert_eq!(refused.code, 2, "{}", refused.stdout);
    assert!(
        refused.stderr.contains("--opt-file password=FILE")
            && refused.stderr.contains("ORDO_OPT_PASSWORD"),
        "{}",
        refused.stderr
    );
    let file = dir.path().join("pw.txt");
    std::fs::write(&file, "hunter2-xyz\n").unwrap();
    let from_file = controller(
        dir.path(),
        &[
            "run",
            "secret",
            "--opt-file",
            &format!("password={}", file.display()),
            "--no-progress",
        ],
    );
    assert_eq!(from_file.code, 0, "{}", from_file.stderr);
    assert!(
        from_file.stdout.contains("pw=**** arg=****"),
        "{}",
        from_file.stdout
    );
    let run = controller_env(
        dir.path(),
        &["run", "secret", "--no-progress"],
        &[("ORDO_OPT_PASSWORD", "hunter2-xyz")],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("pw=**** arg=****"), "{}", run.stdout);
    assert!(!run.stdout.contains("hunter2"));
    let show = controller(dir.path(), &["executions", "show", "latest"]).stdout;
    let log = controller(dir.path(), &["executions", "log", "latest"]).stdout;
    assert!(
        show.contains("\"password\":\"****\"") && !show.contains("hunter2"),
        "{show}"
    );
    assert!(log.contains("pw=****") && !log.contains("hunter2"), "{log}");
    let db = std::fs::read(dir.path().join("data/ordo.db")).unwrap();
    let wal = std::fs::read(dir.path().join("data/ordo.db-wal")).unwrap_or_default();
    assert!(
        !String::from_utf8_lossy(&[db, wal].concat()).contains("hunter2"),
        "the secret reached the database"
    );
}

#[test]
fn collect_limits_links_and_per_server_folders() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path().display();
    let job = format!(
        "targets: all\nsteps:\n  - script: |\n      mkdir -p {w}/$ORDO_NODE_NAME && cd {w}/$ORDO_NODE_NAME\n      echo small > result_log.txt\n      head -c 5000 /dev/zero > big_log.txt\n      ln -sf /etc/passwd link_log.txt\ncollect:\n  paths: [\"{w}/${{node.name}}/*_log.txt\"]\n  max_file_size: 1k\n"
    );
    let dir = project(
        "servers:\n  a: { transport: local }\n  b: { transport: local }\n",
        &[("c", &job)],
    );
    let run = controller(dir.path(), &["run", "c", "--no-progress"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("big_log.txt: not collected: larger than the per-file limit (1.0 KiB)"),
        "{}",
        run.stdout
    );
    let execs = dir.path().join("data/executions");
    let exec = std::fs::read_dir(&execs)
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();
    for node in ["a", "b"] {
        assert_eq!(
            std::fs::read_to_string(exec.join(node).join("result_log.txt")).unwrap(),
            "small\n"
        );
        assert!(!exec.join(node).join("big_log.txt").exists());
        assert!(
            !exec.join(node).join("link_log.txt").exists(),
            "links are never followed"
        );
    }
}

#[test]
fn a_closed_stdout_does_not_stop_the_run() {
    // `controller run job | head`: the reader goes away; the run must finish and be recorded.
    let dir = project(
        "servers:\n  a: { transport: local }\n",
        &[(
            "t",
            "targets: all\nsteps:\n  - script: |\n      for i in $(seq 3000); do echo line $i; done\n",
        )],
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_controller"))
        .arg("-C")
        .arg(dir.path())
        .args(["run", "t", "--no-progress"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
    let show = controller(dir.path(), &["executions", "show", "latest"]).stdout;
    assert!(show.contains("status    succeeded"), "{show}");
    let log = controller(dir.path(), &["executions", "log", "latest"]).stdout;
    assert!(log.contains("| line 3000"), "every line is recorded");
}

/// The data folder holds every job's output: private to the controller's user (0700), the
/// history database 0600; an existing folder open to others is closed.
#[test]
fn the_data_folder_and_the_history_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = project(
        "servers:\n  here: { transport: local }\n",
        &[("hello", "targets: all\nsteps:\n  - command: echo hi\n")],
    );
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let run = controller(dir.path(), &["run", "hello", "--no-progress"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("ordo.db")), 0o600);
}

/// A job file that is a link to a device, a FIFO, or a YAML "billion laughs" is refused
/// by name, at once and in little memory, and the other jobs still run.
#[test]
fn hostile_job_files_are_refused_by_name() {
    let laughs = {
        let mut y = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for i in 1..12 {
            let p = i - 1;
            y.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        y.push_str("targets: all\nsteps: *a11\n");
        y
    };
    let dir = project(
        "servers:\n  here: { transport: local }\n",
        &[
            ("hello", "targets: all\nsteps:\n  - command: echo hi\n"),
            ("laughs", &laughs),
        ],
    );
    let jobs = dir.path().join("jobs");
    std::os::unix::fs::symlink("/dev/zero", jobs.join("zero.yaml")).unwrap();
    let fifo = jobs.join("fifo.yaml");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let mut child = Command::new(env!("CARGO_BIN_EXE_controller"))
        .arg("-C")
        .arg(dir.path())
        .arg("check")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("`check` did not end: it reads a device, a FIFO or a YAML bomb for ever");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("zero.yaml") && err.contains("a device"),
        "{err}"
    );
    assert!(err.contains("fifo.yaml") && err.contains("a FIFO"), "{err}");
    assert!(
        err.contains("laughs.yaml") && err.contains("aliases expand to more than"),
        "{err}"
    );
    let run = controller(dir.path(), &["run", "hello", "--no-progress"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
}

/// Regression (security review 2026-12-07): a `run_as` taken from an option reached `su`
/// and `sudo` as given, so `-c…` or `#0` was read as an option or a uid. The expanded
/// user must be a user name, checked before anything runs (on every start: `run` and
/// `plan` here, the API and schedules through the same plan).
#[test]
fn a_run_as_from_an_option_must_be_a_user_name() {
    let dir = project(
        "servers:\n  s1: { transport: local, attributes: { acct: '--session-command=id' } }\n",
        &[
            (
                "as",
                "targets: all\noptions:\n  who: { default: '' }\nrun_as: { user: \"${option.who}\", method: su }\nsteps:\n  - command: touch ran-${option.who}\n",
            ),
            (
                "by-attr",
                "targets: all\nrun_as: \"${node.attr.acct}\"\nsteps:\n  - command: 'true'\n",
            ),
        ],
    );
    for who in ["-c id", "#0", "--login", "a b", "root;id"] {
        let opt = format!("who={who}");
        for verb in ["run", "plan"] {
            let r = controller(dir.path(), &[verb, "as", "--opt", &opt]);
            assert_eq!(r.code, 2, "{verb} {who}: {}{}", r.stdout, r.stderr);
            assert!(
                r.stderr.contains("run_as") && r.stderr.contains("is not a user name"),
                "{verb} {who}: {}",
                r.stderr
            );
        }
    }
    let r = controller(dir.path(), &["run", "by-attr", "--no-progress"]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("server s1: run_as"), "{}", r.stderr);
    // Nothing ran.
    let ran: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("ran-"))
        .collect();
    assert!(ran.is_empty(), "{ran:?}");
    // An empty user is the login user: it runs.
    let r = controller(dir.path(), &["run", "as", "--no-progress"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
}

/// Regression (security review 2026-12-07): a `wait_for` pattern was logged expanded,
/// its values regex-escaped, so a secret with a `.` or `*` in it reached the log in a
/// form the masking did not know.
#[test]
fn a_secret_in_a_wait_pattern_never_reaches_the_log() {
    let dir = project(
        "servers:\n  s1: { transport: local }\n",
        &[(
            "waits",
            "targets: all\noptions:\n  tok: { secret: true, required: true }\nsteps:\n  - wait_for: { command: \"echo 'token a.b*c+d'; echo other\", pattern: 'token ${option.tok}x', within: 1s }\n",
        )],
    );
    let secret = "a.b*c+d";
    let r = controller_env(
        dir.path(),
        &["run", "waits", "--no-progress"],
        &[("ORDO_OPT_TOK", secret)],
    );
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let log = controller(dir.path(), &["executions", "log", "latest"]);
    let all = format!("{}{}{}", r.stdout, r.stderr, log.stdout);
    assert!(
        all.contains("for a line matching /token ${option.tok}x/"),
        "the pattern as written: {all}"
    );
    assert!(
        all.contains("before a line matched /token ${option.tok}x/"),
        "{all}"
    );
    for form in [secret, r"a\.b\*c\+d"] {
        assert!(!all.contains(form), "`{form}` in {all}");
    }
    assert!(all.contains("token ****"), "the line read, masked: {all}");
}

/// `users add` with no terminal to ask the password on (a script, cron, `ssh` without
/// `-t`) and no `--password-stdin` says what to do instead of an OS error.
#[test]
fn users_add_without_a_terminal_says_to_use_password_stdin() {
    let dir = project("servers:\n  s1: { transport: local }\n", &[]);
    let out = Command::new("setsid")
        .arg(env!("CARGO_BIN_EXE_controller"))
        .arg("-C")
        .arg(dir.path())
        .args([
            "users",
            "add",
            "zed",
            "--role",
            "viewer",
            "--email",
            "zed@example.com",
        ])
        .env_remove("ORDO_PROJECT")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("no terminal to ask the password on")
            && stderr.contains("--password-stdin"),
        "{stderr}"
    );
    assert!(!stderr.contains("os error"), "{stderr}");
}

/// `plan` makes the checks a run makes on this machine's files before connecting: a
/// private key that is not there is said by `plan`, after the plan, not first at `run`.
#[test]
fn plan_says_what_a_run_would_refuse() {
    let dir = project(
        "servers:\n  web1: { host: 127.0.0.1 }\n",
        &[("j", "targets: all\nsteps:\n  - command: 'true'\n")],
    );
    std::fs::write(
        dir.path().join("ordo.yaml"),
        "ssh:\n  identity: [/nonexistent/id_ed25519]\n",
    )
    .unwrap();
    let r = controller(dir.path(), &["plan", "j"]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("web1"), "the plan is shown: {}", r.stdout);
    assert!(
        r.stderr.contains("a run would be refused") && r.stderr.contains("ssh"),
        "{}",
        r.stderr
    );
    let r = controller(dir.path(), &["run", "j", "--no-progress"]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
}
