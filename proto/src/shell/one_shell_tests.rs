use super::*;
use std::io::Write;

/// Runs `cmd` as the transports do (`sh -c` with the pid marker) with `stdin` on stdin.
pub(super) fn run(cmd: &str, stdin: &str) -> std::process::Output {
    let mut child = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(with_pid_marker(&as_user(cmd, None)))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn an_inline_sh_step_gets_env_args_workdir_and_a_closed_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let env = env_block(&[
        ("MULTI".into(), "line one\nit's $two\n\nend".into()),
        ("EMPTY".into(), String::new()),
        ("PLAIN".into(), "x".into()),
        (arg_var(1), "a b".into()),
        (arg_var(2), "it's".into()),
    ]);
    assert_eq!(env.lines().count(), 5, "one line per variable: {env}");
    let text = "#!/bin/sh\nprintf '%s|' \"$0\" \"$#\" \"$1\" \"$2\" \"$(pwd)\" \"$PLAIN\" \"[$EMPTY]\" \"${l-unset}\" \"${nl-unset}\"\nprintf '%s' \"$MULTI\" > multi\nwc -c\nexit 7\necho never";
    let cmd = inline_step_script(
        "/bin/sh",
        text,
        2,
        Some(&quote(&dir.path().display().to_string())),
    );
    let out = run(&cmd, &env);
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!(
            "{ARGV0}|2|a b|it's|{}|x|[]|unset|unset|0\n",
            dir.path().display()
        )
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("multi")).unwrap(),
        "line one\nit's $two\n\nend"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(PID_MARKER) && stderr.lines().count() == 1,
        "{stderr}"
    );
}

#[test]
fn a_missing_workdir_fails_the_step_before_it_runs() {
    // The folder's name holds shell syntax: it is printed, never run.
    let cmd = inline_step_script(
        "/bin/sh",
        "echo ran",
        0,
        Some(&quote("/nonexistent/$(touch /tmp/ordo-pwned)")),
    );
    let out = run(&cmd, "");
    assert_eq!(out.status.code(), Some(126));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot change to working directory /nonexistent/$(touch /tmp/ordo-pwned)"),
        "{stderr}"
    );
    assert!(
        !std::path::Path::new("/tmp/ordo-pwned").exists(),
        "the folder's name ran"
    );
}
