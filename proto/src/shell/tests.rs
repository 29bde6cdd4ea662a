use super::*;

fn sh(cmd: &str) -> std::process::Output {
    std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(cmd)
        .output()
        .unwrap()
}

#[test]
fn quoting_round_trips_through_sh() {
    for s in ["plain", "with space", "it's", "$HOME `x` \"q\"", "", "a\nb"] {
        let out = sh(&format!("printf %s {}", quote(s)));
        assert_eq!(String::from_utf8_lossy(&out.stdout), s);
    }
}

#[test]
fn glob_words_expand_only_wildcards() {
    let dir = tempfile::tempdir().unwrap();
    for f in [
        "fichier_a log.txt",
        "fichier_b_log.txt",
        "x$y.txt",
        "n1.txt",
        "n2.txt",
    ] {
        std::fs::write(dir.path().join(f), "x").unwrap();
    }
    let d = dir.path().display().to_string();
    let list = |pat: &str| {
        let out = sh(&format!(
            "for f in {}; do echo \"$f\"; done",
            glob_word(&format!("{d}/{pat}"))
        ));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.rsplit('/').next().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        list("fichier_*log.txt"),
        vec!["fichier_a log.txt", "fichier_b_log.txt"]
    );
    assert_eq!(list("x$y.txt"), vec!["x$y.txt"]);
    assert_eq!(list("n[12].txt"), vec!["n1.txt", "n2.txt"]);
    assert_eq!(glob_base("/tmp/fichier_*log.txt"), "/tmp/");
    assert_eq!(glob_base("/var/log/app/x.log"), "/var/log/app/");
}

#[test]
fn step_reads_env_from_stdin_and_passes_args() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("s.sh");
    std::fs::write(&script, "#!/bin/sh\necho \"$1|$2|$SECRET|$(pwd)\"\n").unwrap();
    sh(&format!("chmod 755 {}", script.display()));
    let cmd = step_script(
        &script.display().to_string(),
        2,
        Some(&quote(&dir.path().display().to_string())),
    );
    assert!(
        !cmd.contains("a b") && !cmd.contains("it's"),
        "arguments in the text: {cmd}"
    );
    let env = env_block(&[
        ("SECRET".into(), "p@ss 'w$rd".into()),
        (arg_var(1), "a b".into()),
        (arg_var(2), "it's".into()),
    ]);
    let out = super::one_shell_tests::run(&cmd, &env);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.trim(),
        format!("a b|it's|p@ss 'w$rd|{}", dir.path().display())
    );
    assert!(String::from_utf8_lossy(&out.stderr).starts_with(PID_MARKER));
}

#[test]
fn collect_then_cleanup_keeps_tars_status_and_removes_the_folder() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    std::fs::create_dir(&run).unwrap();
    std::fs::write(dir.path().join("a_log.txt"), "aaa").unwrap();
    let pattern = format!("{}/*_log.txt", dir.path().display());
    let script = collect_script(
        std::slice::from_ref(&pattern),
        0,
        Some(&cleanup_command(&run.display().to_string())),
    );
    let out = sh(&script);
    assert!(out.status.success());
    let mut names = Vec::new();
    for e in tar::Archive::new(&out.stdout[..]).entries().unwrap() {
        names.push(e.unwrap().path().unwrap().display().to_string());
    }
    assert_eq!(names.len(), 1);
    assert!(names[0].ends_with("a_log.txt"));
    assert!(!run.exists(), "the run folder is removed");
    // Nothing matches: empty output, success, folder still removed.
    std::fs::create_dir(&run).unwrap();
    let none = sh(&collect_script(
        &[format!("{}/nothing*", dir.path().display())],
        0,
        Some(&cleanup_command(&run.display().to_string())),
    ));
    assert!(none.status.success() && none.stdout.is_empty() && !run.exists());
}

#[test]
fn files_over_the_limit_are_named_and_the_rest_streamed() {
    let dir = tempfile::tempdir().unwrap();
    for (name, size) in [
        ("a big_log.txt", 2000),
        ("b_log.txt", 10),
        ("c big_log.txt", 1025),
        ("d_log.txt", 1024),
    ] {
        std::fs::write(dir.path().join(name), vec![b'x'; size]).unwrap();
    }
    let pattern = format!("{}/*_log.txt", dir.path().display());
    let out = sh(&collect_script(std::slice::from_ref(&pattern), 1024, None));
    assert!(out.status.success(), "{out:?}");
    let mut names = Vec::new();
    for e in tar::Archive::new(&out.stdout[..]).entries().unwrap() {
        let e = e.unwrap();
        names.push(
            e.path()
                .unwrap()
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned(),
        );
    }
    assert_eq!(names, ["b_log.txt", "d_log.txt"]);
    let err = String::from_utf8_lossy(&out.stderr);
    let big: Vec<&str> = err
        .lines()
        .filter_map(|l| l.strip_prefix(TOO_BIG_MARKER))
        .collect();
    assert_eq!(big.len(), 2, "{err}");
    assert!(big[0].ends_with("/a big_log.txt") && big[1].ends_with("/c big_log.txt"));
    // Everything too big: nothing on stdout, still a success.
    let out = sh(&collect_script(std::slice::from_ref(&pattern), 5, None));
    assert!(out.status.success() && out.stdout.is_empty(), "{out:?}");
    // No limit: no `find` at all, everything streamed.
    let script = collect_script(std::slice::from_ref(&pattern), 0, None);
    assert!(!script.contains("find"));
    assert_eq!(
        tar::Archive::new(&sh(&script).stdout[..])
            .entries()
            .unwrap()
            .count(),
        4
    );
}

#[test]
fn a_relative_name_is_never_an_option_of_find() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("-delete"), "x").unwrap();
    std::fs::write(dir.path().join("keep"), "y").unwrap();
    let script = collect_script(&["-delete".to_string()], 1024, None);
    let out = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(&script)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(dir.path().join("keep").exists() && dir.path().join("-delete").exists());
    let entries: Vec<String> = tar::Archive::new(&out.stdout[..])
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert_eq!(entries, ["./-delete"]);
}

#[test]
fn kill_never_targets_everything() {
    assert_eq!(kill_command(0, 1, None), None);
    assert_eq!(kill_command(1, 1, Some("ops")), None);
    let cmd = kill_command(4242, 2, Some("User_DollarU")).unwrap();
    // As the run-as user first (no root needed), then as the login user.
    assert!(
        cmd.starts_with("sudo -n -u User_DollarU /bin/sh -c '"),
        "{cmd}"
    );
    assert!(cmd.contains("kill -TERM -4242 "), "{cmd}");
    assert!(cmd.contains("; /bin/sh -c '"), "{cmd}");
    assert!(!cmd.contains("/usr/bin/kill"));
}

#[test]
fn a_switch_takes_only_a_user_name_and_never_as_an_option() {
    for ok in ["User_DollarU", "ops", "svc-batch.1", "_x", "WS01$", "1abc"] {
        assert!(check_user_name(ok).is_ok(), "{ok}");
    }
    for bad in [
        "",
        "-c",
        "--login",
        "#0",
        "a b",
        "root;id",
        "x\ny",
        "$",
        &"a".repeat(65),
    ] {
        assert!(check_user_name(bad).is_err(), "{bad:?}");
    }
    let r = |method| RunAsSpec {
        user: "dollar".into(),
        method,
    };
    let su = as_user("id", Some(&r(SwitchMethod::Su)));
    assert!(su.ends_with(" -- dollar"), "{su}");
    assert!(su.starts_with("exec su -l -s /bin/sh -c "), "{su}");
    let sudo_su = as_user("id", Some(&r(SwitchMethod::SudoSu)));
    assert!(
        sudo_su.starts_with("exec sudo -n -- su -l ") && sudo_su.ends_with(" -- dollar"),
        "{sudo_su}"
    );
}

#[test]
fn a_recorded_group_is_stopped_only_while_its_pid_is_the_same_process() {
    use std::io::BufRead;
    let mut child = std::process::Command::new("setsid")
        .args(["/bin/sh", "-c", &with_pid_marker("sleep 30")])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let (pid, started) = parse_pid_marker(line.strip_prefix(PID_MARKER).unwrap()).unwrap();
    assert_eq!(pid, child.id());
    let (start, boot) = started.split_once(' ').expect("start time and boot ID");
    assert!(start.bytes().all(|b| b.is_ascii_digit()), "{line}");
    assert_eq!(
        boot,
        std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .unwrap()
            .trim()
    );
    // Another start time (another process with that pid), or another boot: nothing is
    // signalled.
    for stranger in [format!("1 {boot}"), format!("{start} 0000-1111")] {
        let other = kill_command_started(pid, &stranger, 0, None).unwrap();
        assert!(sh(&other).status.success());
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert!(child.try_wait().unwrap().is_none(), "killed for {stranger}");
    }
    // Its own start time: the group is stopped.
    let own = kill_command_started(pid, &started, 1, None).unwrap();
    assert!(sh(&own).status.success());
    let st = child.wait().unwrap();
    assert!(!st.success(), "{st:?}");
    assert_eq!(kill_command_started(pid, "1; rm -rf /", 0, None), None);
    assert_eq!(kill_command_started(pid, "1 2 3", 0, None), None);
    assert_eq!(parse_pid_marker("99999999 1 b"), None);
}
