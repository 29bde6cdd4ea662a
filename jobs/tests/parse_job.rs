//! Job files: what operators write, and the exact errors they get back.

use std::path::Path;
use std::time::Duration;

use ordo_jobs::{MailWhen, OnFailure, RunAsMethod, StepAction, parse_job, resolve_options};

const GOOD: &str = r#"
description: Collect Dollar Universe results
targets: group:A or group:B
options:
  environment:
    default: SOC_PRODUCTION
    allowed: [SOC_PRODUCTION, SOC_RECETTE]
  delay: { type: integer, default: "5" }
  token: { secret: true, required: true }
  ip: { regex: '\d+\.\d+\.\d+\.\d+' }
run_as: { user: dollaru, method: sudo-su }
env:
  TARGET_ENV: ${option.environment}
timeout: 30m
parallelism: 10
on_failure: stop
steps:
  - name: run supplied script
    script: |
      #!/bin/sh
      echo "$1" > /tmp/fichier_${node.name}_log.txt
    args: ["${option.environment}"]
    timeout: 5m
    retries: 2
  - command: ls -l /tmp
collect:
  paths: ["/tmp/fichier_*log.txt"]
  max_file_size: 1MiB
mail:
  to: ops@example.com
  subject: "Résultat $U du script (${execution.status})"
  when: always
"#;

#[test]
fn a_full_job_reads_back() {
    let job = parse_job(GOOD, Path::new("jobs/vip.yaml"), "vip").unwrap();
    assert_eq!(job.name, "vip");
    assert_eq!(job.targets.as_str(), "group:A or group:B");
    assert_eq!(job.options.len(), 4);
    let run_as = job.run_as.as_ref().unwrap();
    assert_eq!(
        (run_as.user.source(), run_as.method),
        ("dollaru", RunAsMethod::SudoSu)
    );
    assert_eq!(job.timeout, Some(Duration::from_secs(1800)));
    assert_eq!(job.parallelism, 10);
    assert_eq!(job.on_failure, OnFailure::Stop);
    assert_eq!(job.steps.len(), 2);
    assert_eq!(job.steps[0].retries, 2);
    assert!(matches!(job.steps[1].action, StepAction::Command(_)));
    assert_eq!(job.steps[1].name, "step 2");
    let collect = job.collect.as_ref().unwrap();
    assert_eq!(collect.paths[0].source(), "/tmp/fichier_*log.txt");
    assert_eq!(collect.max_file_size, 1 << 20);
    let mail = job.mail.as_ref().unwrap();
    assert_eq!(mail.to[0].source(), "ops@example.com");
    assert_eq!(mail.when, MailWhen::Always);
}

#[test]
fn every_error_comes_with_line_and_column() {
    let text = r#"description: broken
targets: group:A and
options:
  delay: { type: integer, default: soon }
  mode: { allowed: [a, b], default: c, secrte: true }
timeout: forever
steps:
  - script: echo ${option.nope}
    retries: many
  - commnd: ls
  - command: ls
    script: echo
collect:
  paths: [relative/path]
mail:
  subject: hi
colect: []
"#;
    let err = parse_job(text, Path::new("jobs/bad.yaml"), "bad")
        .unwrap_err()
        .to_string();
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(
        lines,
        vec![
            "jobs/bad.yaml:2:21: targets: expected a term after this",
            "jobs/bad.yaml:4:36: option `delay`: default `soon` is not an integer",
            "jobs/bad.yaml:5:37: option `mode`: default `c` is not one of the allowed values: a, b",
            "jobs/bad.yaml:5:40: option `mode`: unknown key `secrte` (did you mean `secret`?)",
            "jobs/bad.yaml:6:10: timeout: `forever` is not a duration (examples: 30s, 5m, 1h 30m, 90)",
            "jobs/bad.yaml:8:18: step 1: script: `${option.nope}` refers to an undeclared option",
            "jobs/bad.yaml:9:14: step 1: retries: expected a whole number, found `many`",
            "jobs/bad.yaml:10:5: step 2: needs one of `script`, `script_file`, `command`, `job` or `wait_for`",
            "jobs/bad.yaml:10:5: step 2: unknown key `commnd` (did you mean `command`?)",
            "jobs/bad.yaml:11:5: step 3: give only one of `script`, `command`",
            "jobs/bad.yaml:14:11: collect: `relative/path` must be an absolute path",
            "jobs/bad.yaml:16:3: mail: needs at least one recipient in `to`",
            "jobs/bad.yaml:17:1: job: unknown key `colect` (did you mean `collect`?)",
        ],
        "{err}"
    );
}

#[test]
fn yaml_syntax_error_is_positioned() {
    let err = parse_job(
        "targets: all\nsteps:\n  - command: [ls\n",
        Path::new("j.yaml"),
        "j",
    )
    .unwrap_err()
    .to_string();
    assert!(err.starts_with("j.yaml:4:1: invalid YAML"), "{err}");
}

#[test]
fn missing_script_file_is_reported() {
    let err = parse_job(
        "targets: all\nsteps:\n  - script_file: nowhere.sh\n",
        Path::new("/nonexistent/j.yaml"),
        "j",
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        err,
        "/nonexistent/j.yaml:3:18: step 1: script_file `/nonexistent/nowhere.sh` does not exist"
    );
}

#[test]
fn option_values_are_checked_and_secrets_masked() {
    let job = parse_job(GOOD, Path::new("jobs/vip.yaml"), "vip").unwrap();
    let given = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>()
    };
    let errs = resolve_options(
        &job,
        &given(&[("delay", "abc"), ("ip", "10.0.0"), ("colour", "red")]),
    )
    .unwrap_err();
    // Each error names its option, as a field the API and the console show it under.
    let options: Vec<&str> = errs.0.iter().map(|e| e.option.as_str()).collect();
    assert_eq!(options, ["colour", "delay", "token", "ip"]);
    let messages: Vec<String> = errs.0.iter().map(|e| e.to_string()).collect();
    assert_eq!(
        messages,
        vec![
            "option `colour`: job `vip` has no such option (its options are: environment, delay, token, ip)",
            "option `delay`: `abc` is not an integer",
            "option `token` is required (give it with --opt token=VALUE)",
            "option `ip`: `10.0.0` does not match the pattern `^(?:\\d+\\.\\d+\\.\\d+\\.\\d+)$`",
        ]
    );
    let ok = resolve_options(
        &job,
        &given(&[("token", "s3cr3t"), ("environment", "SOC_RECETTE")]),
    )
    .unwrap();
    assert_eq!(ok.values["environment"], "SOC_RECETTE");
    assert_eq!(ok.values["delay"], "5");
    assert_eq!(ok.masked()["token"], "****");
    assert_eq!(ok.mask("login with s3cr3t now"), "login with **** now");
}

/// A job's name is a path of the console's and the API's URLs: a file whose name a
/// browser would read another way is refused by name.
#[test]
fn a_job_name_a_browser_would_misread_is_refused() {
    for bad in ["x%2e%2e.yaml", "a\\b.yaml", "q?.yaml", "h#.yaml"] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("team")).unwrap();
        std::fs::write(
            dir.path().join("team").join(bad),
            "targets: all\nsteps: [{ command: true }]\n",
        )
        .unwrap();
        let err = ordo_jobs::job_files(dir.path()).unwrap_err().to_string();
        assert!(err.contains("rename it"), "{bad}: {err}");
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("fine name.yaml"), "targets: all\n").unwrap();
    assert_eq!(ordo_jobs::job_files(dir.path()).unwrap()[0].0, "fine name");
}
