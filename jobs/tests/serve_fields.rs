//! The job fields `controller serve` acts on (schedule, watch, follow-ups, notifications,
//! lateness, retention), and the checks across jobs (unknown references, cycles).

use std::path::Path;
use std::time::Duration;

use ordo_jobs::schedule::Syntax;
use ordo_jobs::{Late, Missed, NotifyEvent, NotifyTarget, Overlap, StepAction, parse_job};

const NIGHTLY: &str = r#"
targets: all
options:
  env: { default: prod, allowed: [prod, test] }
  file: {}
schedule:
  cron: ["0 2 * * 1-5", "30 6 * * 6"]
  timezone: Europe/Paris
  options: { env: test }
  overlap: queue
  missed: catch-up
watch:
  path: /data/in
  pattern: "*.csv"
  option: file
  poll: 10s
steps:
  - command: echo hi
  - job: report
    options: { env: "${option.env}" }
then:
  on_success: [archive]
  on_failure:
    - job: cleanup
      options: { reason: "${execution.status}" }
notify:
  - on: [failure, late]
    mail: { to: ops@example.com, attach_log: true }
  - on: [start, success]
    webhook:
      url: http://127.0.0.1:9/hook
      headers: { X-Token: abc }
late: 1.5x
retention: { max_age: 30d, max_count: 50 }
"#;

#[test]
fn a_scheduled_job_reads_back_as_written() {
    let job = parse_job(NIGHTLY, Path::new("jobs/nightly.yaml"), "nightly").unwrap();
    let s = job.schedule.as_ref().unwrap();
    assert_eq!(s.crons.len(), 2);
    assert_eq!(s.syntax, Syntax::Cron);
    assert_eq!(s.timezone.unwrap().name(), "Europe/Paris");
    assert_eq!(s.options.get("env").unwrap(), "test");
    assert_eq!(s.overlap, Overlap::Queue);
    assert_eq!(s.missed, Missed::CatchUp);
    let w = job.watch.as_ref().unwrap();
    assert!(w.matcher.is_match("a.csv") && !w.matcher.is_match("a.txt"));
    assert_eq!(w.option.as_deref(), Some("file"));
    assert_eq!(w.poll, Some(Duration::from_secs(10)));
    assert!(matches!(&job.steps[1].action, StepAction::Job(r) if r.job == "report"));
    assert_eq!(job.then.on_success[0].job, "archive");
    assert_eq!(job.then.on_failure[0].options[0].0, "reason");
    assert_eq!(job.notify.len(), 2);
    assert_eq!(job.notify[0].on, [NotifyEvent::Failure, NotifyEvent::Late]);
    assert!(matches!(
        &job.notify[0].target,
        NotifyTarget::Mail {
            attach_log: true,
            ..
        }
    ));
    assert!(
        matches!(&job.notify[1].target, NotifyTarget::Webhook { headers, .. } if headers[0].0 == "X-Token")
    );
    assert_eq!(job.late, Some(Late::Factor(1.5)));
    let r = job.retention.unwrap();
    assert_eq!(r.max_age, Some(Duration::from_secs(30 * 86400)));
    assert_eq!(r.max_count, Some(50));
}

#[test]
fn serve_field_errors_are_positioned() {
    let text = r#"targets: all
options: { x: {} }
schedule:
  cron: "61 * * * *"
  timezone: Europe/Pariss
  options: { y: "1" }
  overlap: sometimes
watch: { path: in, option: z }
then: { on_succes: [a] }
notify:
  - on: [failed]
    webhook: ftp://x
late: 0.5x
retention: { max_count: 0 }
steps:
  - command: echo ${node.name}
  - job: other
    options: { a: "${node.name}" }
"#;
    let err = parse_job(text, Path::new("j.yaml"), "j").unwrap_err();
    let got: Vec<String> = err.to_string().lines().map(str::to_string).collect();
    let want = [
        "j.yaml:4:9: schedule: `61 * * * *` is not a valid cron expression:",
        "j.yaml:5:13: schedule: unknown time zone `Europe/Pariss`",
        "j.yaml:6:17: schedule: option `y` is not declared in this job's options",
        "j.yaml:7:12: schedule: overlap `sometimes` is not one of: skip, queue, concurrent",
        "j.yaml:8:16: watch: path `in` must be an absolute path",
        "j.yaml:8:28: watch: option `z` (which receives the file's path) is not declared",
        "j.yaml:9:9: then: unknown key `on_succes` (did you mean `on_success`?)",
        "j.yaml:11:10: notify 1: on: `failed` is not one of: start, success, failure, late",
        "j.yaml:12:14: notify 1: webhook: url `ftp://x` must start with http:// or https://",
        "j.yaml:13:7: late: `0.5x`",
        "j.yaml:14:25: retention: max_count must be at least 1",
        "j.yaml:18:19: step 2: option `a`: `${node.name}` is not known here",
    ];
    assert_eq!(got.len(), want.len(), "{got:#?}");
    for (g, w) in got.iter().zip(want) {
        assert!(g.starts_with(w), "got  {g}\nwant {w}...");
    }
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(format!("{name}.yaml")), text).unwrap();
}

#[test]
fn a_cycle_of_follow_ups_is_refused_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "a",
        "targets: all\nsteps: [{command: 'true'}]\nthen: { on_success: [b] }\n",
    );
    write(d, "b", "steps:\n  - job: c\n");
    write(
        d,
        "c",
        "targets: all\nsteps: [{command: 'true'}]\nthen: { always: [a] }\n",
    );
    write(
        d,
        "d",
        "targets: all\nsteps: [{command: 'true'}]\nthen: { on_failure: [{job: nosuch}, {job: c, options: {q: '1'}}] }\n",
    );
    let err = ordo_jobs::load_all(d).unwrap_err().to_string();
    let a = d.join("a.yaml").display().to_string();
    assert!(
        err.contains(&format!(
            "{a}:3:22: jobs start each other in a cycle: a -> b -> c -> a"
        )),
        "{err}"
    );
    assert!(
        err.contains("b.yaml:2:10: jobs start each other in a cycle: b -> c -> a -> b"),
        "{err}"
    );
    assert!(
        err.contains("d.yaml:3:28: job `nosuch` does not exist"),
        "{err}"
    );
    assert!(
        err.contains("d.yaml:3:43: job `c` has no option `q`"),
        "{err}"
    );
}

#[test]
fn a_job_of_job_steps_needs_no_targets_but_server_steps_do() {
    let ok = parse_job("steps: [{job: a}, {job: b}]\n", Path::new("w.yaml"), "w");
    assert!(ok.is_ok(), "{:?}", ok.err().map(|e| e.to_string()));
    let err = parse_job("steps: [{command: 'true'}]\n", Path::new("w.yaml"), "w")
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing `targets`"), "{err}");
}
