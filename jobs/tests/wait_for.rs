//! `wait_for` steps and group jobs as job files say them: what is accepted, and each
//! mistake reported at its place with what is wrong.

use std::collections::BTreeMap;
use std::path::Path;

use ordo_jobs::{Context, OnFailure, StepAction, WaitFrom, WaitSource, parse_job};

fn errors(text: &str) -> String {
    match parse_job(text, Path::new("t.yaml"), "t") {
        Ok(_) => String::new(),
        Err(d) => d.to_string(),
    }
}

const GOOD: &str = r#"
targets: all
options:
  ip: { type: ip, required: true }
  delai: { type: integer, default: 15 }
steps:
  - wait_for:
      file: ${node.attr.auth_log}
      pattern: 'client: (?P<ip>${option.ip}), user: (?P<user>\w+)'
      within: ${option.delai}s
  - command: 'echo "${step.1.match.user} from ${step.1.match.ip}: ${step.1.match}"'
  - wait_for: { command: journalctl -f, pattern: ready, within: 1m }
"#;

#[test]
fn a_wait_step_reads_its_file_pattern_and_time() {
    let job = parse_job(GOOD, Path::new("t.yaml"), "t").expect("valid");
    let StepAction::WaitFor(w) = &job.steps[0].action else {
        panic!("a wait step")
    };
    assert!(matches!(&w.source, WaitSource::File(f) if f.source() == "${node.attr.auth_log}"));
    assert_eq!(w.from, WaitFrom::End);
    assert_eq!(w.groups, ["ip", "user"]);
    assert_eq!(job.steps[0].kind(), "wait_for");
    // A value in the pattern is matched as written: its dots are not "any character".
    let opts = BTreeMap::from([
        ("ip".to_string(), "192.0.2.10".to_string()),
        ("delai".to_string(), "15".to_string()),
    ]);
    let cx = Context {
        options: Some(&opts),
        ..Context::default()
    };
    let re = regex::Regex::new(&w.pattern.expand_regex(&cx).unwrap()).unwrap();
    assert!(re.is_match("client: 192.0.2.10, user: bob"));
    assert!(!re.is_match("client: 192x0y2z10, user: bob"));
    assert!(
        matches!(&job.steps[2].action, StepAction::WaitFor(w) if matches!(w.source, WaitSource::Command(_)))
    );
}

#[test]
fn wait_step_mistakes_are_reported_where_they_are() {
    let e = errors(
        "targets: all\nsteps:\n  - wait_for: { file: /var/log/x, pattern: 'a(b', within: 5s }\n",
    );
    assert!(
        e.contains("t.yaml:3:") && e.contains("pattern `a(b` is not a regular expression"),
        "{e}"
    );
    let e = errors("targets: all\nsteps:\n  - wait_for: { file: /var/log/x, pattern: a }\n");
    assert!(
        e.contains("missing `within`") || e.contains("within"),
        "{e}"
    );
    let e = errors(
        "targets: all\nsteps:\n  - wait_for: { file: /var/log/x, pattern: a, within: soon }\n",
    );
    assert!(
        e.contains("t.yaml:3:") && e.contains("`soon` is not a duration"),
        "{e}"
    );
    let e = errors("targets: all\nsteps:\n  - wait_for: { file: x.log, pattern: a, within: 5s }\n");
    assert!(e.contains("file `x.log` must be an absolute path"), "{e}");
    let e = errors(
        "targets: all\nsteps:\n  - wait_for: { command: tail -f x, pattern: a, within: 5s, from: start }\n",
    );
    assert!(e.contains("`from` goes with `file`"), "{e}");
    let e = errors(
        "targets: all\nsteps:\n  - wait_for: { file: /x, pattern: a, within: 5s, from: middle }\n",
    );
    assert!(e.contains("from `middle` is not one of: start, end"), "{e}");
    let e = errors("targets: all\nsteps:\n  - wait_for: { pattern: a, within: 5s }\n");
    assert!(e.contains("needs `file`"), "{e}");
}

#[test]
fn a_step_match_must_name_an_earlier_wait_and_one_of_its_groups() {
    let base =
        "targets: all\nsteps:\n  - wait_for: { file: /x, pattern: '(?P<ip>\\S+)', within: 5s }\n";
    assert_eq!(
        errors(&format!("{base}  - command: echo ${{step.1.match.ip}}\n")),
        ""
    );
    let e = errors(&format!("{base}  - command: echo ${{step.1.match.user}}\n"));
    assert!(
        e.contains("t.yaml:4:") && e.contains("step 1's pattern has no group named `user`"),
        "{e}"
    );
    let e = errors(&format!("{base}  - command: echo ${{step.2.match}}\n"));
    assert!(
        e.contains("step 2 is not a `wait_for` step before this one"),
        "{e}"
    );
    let e = errors(&format!(
        "{base}  - job: other\n  - command: echo ${{step.1.match}}\n"
    ));
    assert!(e.contains("a job step lies between step 1 and here"), "{e}");
    let e = errors(&format!(
        "{base}mail: {{ to: [a@example.com], subject: '${{step.1.match}}' }}\n"
    ));
    assert!(e.contains("known only on each server"), "{e}");
    let e = errors(
        "targets: all\nenv: { A: '${step.1.match}' }\nsteps:\n  - wait_for: { file: /x, pattern: a, within: 5s }\n",
    );
    assert!(
        e.contains("step 1 is not a `wait_for` step before this one"),
        "{e}"
    );
}

#[test]
fn a_group_stops_at_its_first_failed_member_unless_told_to_continue() {
    let group = "options: { ip: {} }\nsteps:\n  - { job: a, import_options: true }\n  - job: b\n";
    let job = parse_job(group, Path::new("t.yaml"), "t").expect("valid");
    assert_eq!(job.members_on_failure, OnFailure::Stop);
    assert_eq!(job.on_failure, OnFailure::Continue);
    assert!(matches!(&job.steps[0].action, StepAction::Job(r) if r.import_options));
    assert!(matches!(&job.steps[1].action, StepAction::Job(r) if !r.import_options));
    let job = parse_job(
        &format!("on_failure: continue\n{group}"),
        Path::new("t.yaml"),
        "t",
    )
    .expect("valid");
    assert_eq!(job.members_on_failure, OnFailure::Continue);
    let e = errors("targets: all\nsteps:\n  - { command: 'true', import_options: true }\n");
    assert!(e.contains("`import_options` goes with `job`"), "{e}");
}
