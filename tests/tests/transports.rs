//! Scenarios written once and run over every transport (SSH, agent, local): what an
//! operator relies on whatever reaches the server.

use ordo_tests::transports::{Kind, OneServer};
use std::time::{Duration, Instant};

use ordo_tests::{RUN_AS_USER, has_line, on_every_transport, processes};

/// A step that outlives its timeout is stopped with every process it started (a child in
/// the background included), as the run-as user, and the run says which step and why.
fn a_step_timeout_kills_the_whole_process_tree(kind: Kind) {
    let s = OneServer::start(kind);
    let t = kind.tag();
    let marker = format!("ordo-timeout-{t}-{}", std::process::id());
    s.p.write(
        "jobs/hang.yaml",
        &format!(
            "targets: all\nrun_as: {RUN_AS_USER}\nsteps:\n  - name: hang\n    script: |\n      echo started as $(id -un)\n      sh -c 'sleep 3{t}01; echo {marker}' &\n      sleep 3{t}02\n    timeout: 2s\n"
        ),
    );
    let run =
        s.p.controller(&["run", "hang", "--no-progress", "--no-mail"])
            .expect_code(1);
    assert!(
        has_line(&run.stdout, "s1", "|", &format!("started as {RUN_AS_USER}")),
        "{kind:?}: {}",
        run.stdout
    );
    assert!(
        run.stdout.contains("step 1 (hang) timed out after 2s"),
        "{kind:?}: {}",
        run.stdout
    );
    assert_nothing_left(kind, &marker);
}

/// Ctrl-C stops the step on the server (its whole tree) and records the run as aborted;
/// so do SIGTERM and SIGHUP (a shutdown, a closed terminal).
fn ctrl_c_aborts_the_run_and_its_processes(kind: Kind) {
    for signal in ["INT", "TERM", "HUP"] {
        signal_aborts_the_run(kind, signal);
    }
}

fn signal_aborts_the_run(kind: Kind, signal: &str) {
    let s = OneServer::start(kind);
    let t = kind.tag();
    let marker = format!("ordo-abort-{t}-{}", std::process::id());
    s.p.write(
        "jobs/long.yaml",
        &format!(
            "targets: all\nrun_as: {RUN_AS_USER}\nsteps:\n  - script: |\n      echo started\n      sh -c 'sleep 3{t}01; echo {marker}' &\n      sleep 3{t}02\n"
        ),
    );
    let run =
        s.p.controller_interrupted(&["run", "long", "--no-progress", "--no-mail"], || {
            !processes(RUN_AS_USER, &marker).is_empty()
        });
    let stdout = run.expect_code(1).stdout;
    assert!(stdout.contains(" aborted: 0 of 1"), "{kind:?}: {stdout}");
    assert_nothing_left(kind, &marker);
    let show =
        s.p.controller(&["executions", "show", "latest"])
            .expect_code(0)
            .stdout;
    assert!(
        show.contains("status    aborted"),
        "{kind:?} {signal}: {show}"
    );
}

/// No process of the step is left: neither the background child (its marker) nor the
/// step's own `sleep`. The kill is sent as the run ends; give the processes a moment.
fn assert_nothing_left(kind: Kind, marker: &str) {
    let sleeps = format!("^sleep 3{}0[12]$", kind.tag());
    let left = || {
        let mut l = processes(RUN_AS_USER, marker);
        l.extend(processes(RUN_AS_USER, &sleeps));
        l
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while !left().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(left().is_empty(), "{kind:?}: processes left: {:?}", left());
}

on_every_transport!(a_step_timeout_kills_the_whole_process_tree);
on_every_transport!(ctrl_c_aborts_the_run_and_its_processes);

/// An execution is aborted by its id from another terminal (`executions abort`) and
/// through the API of `serve`: it ends `aborted` and nothing of it is left on the server.
fn an_abort_by_id_stops_the_run_and_its_processes(kind: Kind) {
    let s = OneServer::start(kind);
    let t = kind.tag();
    let marker = format!("ordo-abort-id-{t}-{}", std::process::id());
    s.p.write(
        "jobs/long.yaml",
        &format!(
            "targets: all\nrun_as: {RUN_AS_USER}\nsteps:\n  - script: |\n      echo started\n      sh -c 'sleep 4{t}01; echo {marker}' &\n      sleep 4{t}02\n"
        ),
    );
    let running = || !processes(RUN_AS_USER, &marker).is_empty();
    let nothing_left = || {
        let sleeps = format!("^sleep 4{t}0[12]$");
        ordo_tests::wait_until("the step's processes gone", Duration::from_secs(15), || {
            processes(RUN_AS_USER, &marker).is_empty() && processes(RUN_AS_USER, &sleeps).is_empty()
        });
    };
    let run = s.p.controller_during(
        &["run", "long", "--no-progress", "--no-mail"],
        running,
        |_| {
            s.p.controller(&["executions", "abort", "latest"])
                .expect_code(0);
        },
    );
    assert!(
        run.stdout.contains(" aborted: 0 of 1"),
        "{kind:?}: {}",
        run.stdout
    );
    nothing_left();

    let port = ordo_tests::free_port();
    let _serve =
        s.p.serve(&[], &["--listen", &format!("http://127.0.0.1:{port}")]);
    ordo_tests::wait_for_port(port, "the API");
    let api = ordo_tests::api::Api::http(port).token(&s.p.admin_token());
    let r = api.post("/api/v1/jobs/long", "{}");
    assert_eq!(r.status, 202, "{}", r.text);
    let id = r.json["execution"].as_str().unwrap().to_string();
    ordo_tests::wait_until("the step under way", Duration::from_secs(20), running);
    let r = api.post(&format!("/api/v1/executions/{id}/abort"), "{}");
    assert_eq!(r.status, 202, "{}", r.text);
    ordo_tests::wait_until("the run aborted", Duration::from_secs(20), || {
        api.get(&format!("/api/v1/executions/{id}")).json["status"] == "aborted"
    });
    nothing_left();
}

on_every_transport!(an_abort_by_id_stops_the_run_and_its_processes);

/// A `wait_for` step reads the file as the run-as user over each transport: the line
/// written while it waits passes it (its group reaches the next step); none fails it with
/// the last lines read, and the process reading the file is stopped either way.
fn a_wait_for_step_sees_the_line_written_while_it_waits(kind: Kind) {
    let s = OneServer::start(kind);
    let t = kind.tag();
    let dir = ordo_tests::temp_dir("wait");
    ordo_tests::chmod(dir.path(), 0o755);
    let log = dir.path().join("app.log");
    std::fs::write(&log, "READY 1 (before the step)\n").unwrap();
    ordo_tests::chmod(&log, 0o644);
    s.p.write(
        "jobs/wait.yaml",
        &format!(
            "targets: all\nrun_as: {RUN_AS_USER}\noptions: {{ within: {{ default: 20s }} }}\nsteps:\n  - wait_for: {{ file: {}, pattern: 'READY (?P<code>\\d+)', within: '${{option.within}}' }}\n  - command: echo \"code ${{step.1.match.code}} as $(id -un)\"\n",
            log.display()
        ),
    );
    let append = |text: &str| {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        writeln!(f, "{text}").unwrap();
    };
    let run = std::thread::scope(|sc| {
        sc.spawn(|| {
            std::thread::sleep(Duration::from_secs(2));
            append("noise");
            append(&format!("READY 4{t}"));
        });
        s.p.controller(&["run", "wait", "--no-progress", "--no-mail"])
    })
    .expect_code(0);
    assert!(
        has_line(
            &run.stdout,
            "s1",
            "|",
            &format!("code 4{t} as {RUN_AS_USER}")
        ),
        "{kind:?}: {}",
        run.stdout
    );
    let miss = std::thread::scope(|sc| {
        sc.spawn(|| {
            std::thread::sleep(Duration::from_millis(1200));
            append("noise");
        });
        s.p.controller(&[
            "run",
            "wait",
            "-o",
            "within=3s",
            "--no-progress",
            "--no-mail",
        ])
    })
    .expect_code(1);
    assert!(
        miss.stdout.contains("no line matched") && has_line(&miss.stdout, "s1", "!", "noise"),
        "{kind:?}: {}",
        miss.stdout
    );
    let path = log.display().to_string();
    ordo_tests::wait_until("tail stopped", Duration::from_secs(10), || {
        processes(RUN_AS_USER, &format!("tail -n 0 -F -- {path}")).is_empty()
    });
}

on_every_transport!(a_wait_for_step_sees_the_line_written_while_it_waits);

/// An option value full of shell syntax reaches the step as that very text, in a
/// command, in a script (quoted or not), as an argument and as the working folder, and
/// nothing in it runs (seed of the rule: a value is data, never code).
fn option_values_are_data_never_code(kind: Kind) {
    let s = OneServer::start(kind);
    let canary = ordo_tests::temp_dir("canary");
    ordo_tests::chmod(canary.path(), 0o777);
    let ran = canary.path().join("ran");
    let value = format!(
        "a'b\"c $(touch {r}) `touch {r}`; touch {r} | x * $HOME",
        r = ran.display()
    );
    let dir = canary.path().join(format!("d $(touch {})", ran.display()));
    std::fs::create_dir_all(&dir).unwrap();
    ordo_tests::chmod(&dir, 0o777);
    s.p.write(
        "jobs/values.yaml",
        &format!(
            "targets: all\nrun_as: {RUN_AS_USER}\noptions:\n  v: {{ required: true }}\n  dir: {{ required: true }}\nworkdir: \"${{option.dir}}\"\nsteps:\n  - command: printf 'cmd=%s\\n' ${{option.v}}\n  - script: |\n      printf 'dq=%s\\n' \"${{option.v}}\"\n      printf 'sq=%s\\n' '${{option.v}}'\n      printf 'arg=%s\\n' \"$1\"\n      printf 'pwd=%s\\n' \"$(pwd)\"\n    args: [\"${{option.v}}\"]\n"
        ),
    );
    let run =
        s.p.controller(&[
            "run",
            "values",
            "--no-progress",
            "--no-mail",
            "--opt",
            &format!("v={value}"),
            "--opt",
            &format!("dir={}", dir.display()),
        ])
        .expect_code(0);
    for prefix in ["cmd", "dq", "sq", "arg"] {
        assert!(
            has_line(&run.stdout, "s1", "|", &format!("{prefix}={value}")),
            "{kind:?}: {prefix} not as given:\n{}",
            run.stdout
        );
    }
    assert!(
        has_line(&run.stdout, "s1", "|", &format!("pwd={}", dir.display())),
        "{kind:?}: {}",
        run.stdout
    );
    assert!(
        !ran.exists(),
        "{kind:?}: a value ran as code:\n{}",
        run.stdout
    );
    // A script in another language reads the value from its environment; a template
    // pasted into it is refused, naming the variable to read instead.
    let python = |job: &str, line: &str| {
        s.p.write(
            &format!("jobs/{job}.yaml"),
            &format!(
                "targets: all\nrun_as: {RUN_AS_USER}\noptions:\n  v: {{ required: true }}\nsteps:\n  - script: |\n      #!/usr/bin/python3\n      import os\n      {line}\n"
            ),
        );
        s.p.controller(&[
            "run",
            job,
            "--no-progress",
            "--no-mail",
            "--opt",
            &format!("v={value}"),
        ])
    };
    let run = python("py_env", "print('py=' + os.environ['ORDO_OPTION_V'])").expect_code(0);
    assert!(
        has_line(&run.stdout, "s1", "|", &format!("py={value}")),
        "{kind:?}: {}",
        run.stdout
    );
    let run = python("py_template", "print('${option.v}')").expect_code(1);
    assert!(
        run.stdout.contains("`${option.v}` in a script that is not a shell script: a value is never pasted into code; read $ORDO_OPTION_V from the environment instead"),
        "{kind:?}: {}",
        run.stdout
    );
    assert!(!ran.exists(), "{kind:?}: a value ran as code");
}

on_every_transport!(option_values_are_data_never_code);

/// A `controller run` killed outright (SIGKILL: no chance to clean up) reads as
/// `interrupted` in the history at once, not `running` for ever; and what it left running
/// is stopped: a local step by its watchdog at once, an agent's by the agent when the
/// connection drops, an SSH server's by the next `run` (regression, security review
/// 2026-12-07: the steps went on).
fn a_killed_run_reads_as_interrupted_and_leaves_nothing_running(kind: Kind) {
    let s = OneServer::start(kind);
    let marker = format!("ordo-killed-{}-{}", kind.tag(), std::process::id());
    s.p.write(
        "jobs/long.yaml",
        &format!("targets: all\nrun_as: {RUN_AS_USER}\nsteps:\n  - script: |\n      sh -c 'sleep 3401; echo {marker}' &\n      sleep 3402\n"),
    );
    s.p.controller_signalled(
        &["run", "long", "--no-progress", "--no-mail"],
        "KILL",
        || !processes(RUN_AS_USER, &marker).is_empty(),
    );
    let show =
        s.p.controller(&["executions", "show", "latest"])
            .expect_code(0)
            .stdout;
    assert!(show.contains("status    interrupted"), "{show}");
    let gone = |when: &str| {
        ordo_tests::wait_until(
            &format!("the killed run's processes to stop ({when})"),
            Duration::from_secs(30),
            || processes(RUN_AS_USER, &marker).is_empty(),
        )
    };
    if kind == Kind::Ssh {
        // sshd does not stop a command whose connection went away: it is still there
        // until a controller stops it.
        std::thread::sleep(Duration::from_millis(500));
        assert!(!processes(RUN_AS_USER, &marker).is_empty());
    } else {
        gone("by the watchdog or the agent");
    }
    // Restarted, the operator completes the work: the interrupted server runs again (and
    // over SSH, that run stops what the killed one left).
    s.p.write(
        "jobs/long.yaml",
        &format!("targets: all\nrun_as: {RUN_AS_USER}\nsteps:\n  - command: echo completed\n"),
    );
    let retry = s.p.retry_failed();
    assert!(
        has_line(&retry.stdout, "s1", "|", "completed"),
        "{}",
        retry.stdout
    );
    gone("by the next run");
}

on_every_transport!(a_killed_run_reads_as_interrupted_and_leaves_nothing_running);

/// A secret option never shows on a command line, on the server or on the controller:
/// every `/proc/*/cmdline` is read while the step runs (it uses the secret in its command,
/// its script, an argument and the environment).
fn a_secret_is_on_no_command_line(kind: Kind) {
    let s = OneServer::start(kind);
    let secret = format!("s3cr3t-{}-{}", kind.tag(), std::process::id());
    s.p.write(
        "jobs/secret.yaml",
        &format!(
            "targets: all\nrun_as: {RUN_AS_USER}\noptions:\n  password: {{ secret: true, required: true }}\nenv: {{ PW: \"${{option.password}}\" }}\nsteps:\n  - command: test -n ${{option.password}} && sleep 1\n  - script: |\n      [ \"$1\" = \"$PW\" ] && [ \"$PW\" = \"${{option.password}}\" ] && echo same\n      sleep 1\n    args: [\"${{option.password}}\"]\n"
        ),
    );
    let mut child = std::process::Command::new(ordo_tests::controller_bin())
        .arg("-C")
        .arg(s.p.path())
        .args(["run", "secret", "--no-progress", "--no-mail"])
        .env("ORDO_OPT_PASSWORD", &secret)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run controller");
    let mut scans = 0;
    while child.try_wait().unwrap().is_none() {
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
                continue;
            };
            let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            assert!(
                !text.contains(&secret),
                "{kind:?}: the secret is on a command line: {text}"
            );
        }
        scans += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{kind:?}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(has_line(&stdout, "s1", "|", "same"), "{kind:?}: {stdout}");
    assert!(!stdout.contains(&secret), "{kind:?}: {stdout}");
    assert!(
        scans > 5,
        "{kind:?}: the run was over before it could be watched"
    );
}

on_every_transport!(a_secret_is_on_no_command_line);
