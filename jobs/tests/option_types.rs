//! Option types (Rundeck parity): ip, integer bounds, duration, email, date, several
//! values with a delimiter. Checked by the one function the CLI, the API and the console
//! share; each error names the option and the value.

use std::path::Path;

use ordo_jobs::{parse_job, resolve_options};

const JOB: &str = r#"
targets: all
options:
  ip: { type: ip, required: true }
  delai: { type: integer, min: "1", max: "3600", default: "30" }
  wait: { type: duration }
  to: { type: email, multivalued: true }
  day: { type: date }
  hosts: { multivalued: true, delimiter: ";", allowed: [a, b, c] }
steps: [{ command: true }]
"#;

fn errors(given: &[(&str, &str)]) -> Vec<String> {
    let job = parse_job(JOB, Path::new("t.yaml"), "t").expect("the job");
    let given: Vec<(String, String)> = given
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    match resolve_options(&job, &given) {
        Ok(_) => Vec::new(),
        Err(e) => e.0.into_iter().map(|e| e.message).collect(),
    }
}

#[test]
fn typed_options_accept_what_they_say() {
    assert_eq!(errors(&[("ip", "192.0.2.10")]), Vec::<String>::new());
    assert_eq!(
        errors(&[
            ("ip", "2001:db8::1"),
            ("delai", "3600"),
            ("wait", "1h30m"),
            ("to", "a@example.com,b@example.org"),
            ("day", "2026-12-02"),
            ("hosts", "a;c")
        ]),
        Vec::<String>::new()
    );
}

#[test]
fn each_bad_value_is_named_with_its_option() {
    let cases = [
        (
            ("ip", "192.0.2.300"),
            "option `ip`: `192.0.2.300` is not an IPv4 or IPv6 address",
        ),
        (("delai", "0"), "option `delai`: `0` is below the minimum 1"),
        (
            ("delai", "3601"),
            "option `delai`: `3601` is above the maximum 3600",
        ),
        (
            ("delai", "soon"),
            "option `delai`: `soon` is not an integer",
        ),
        (
            ("wait", "forever"),
            "option `wait`: `forever` is not a duration",
        ),
        (
            ("to", "a@example.com,nobody"),
            "option `to`: `nobody` is not a mail address",
        ),
        (
            ("day", "2026-02-30"),
            "option `day`: `2026-02-30` is not a date (YYYY-MM-DD)",
        ),
        (
            ("hosts", "a;d"),
            "option `hosts`: `d` is not one of the allowed values: a, b, c",
        ),
        (
            ("hosts", "a;;b"),
            "option `hosts`: an empty value between two `;`",
        ),
    ];
    for ((k, v), want) in cases {
        let got = errors(&[("ip", "192.0.2.1"), (k, v)]);
        assert!(got.iter().any(|e| e.starts_with(want)), "{k}={v}: {got:?}");
    }
}

#[test]
fn bounds_and_delimiters_are_checked_where_they_are_written() {
    let bad = "targets: all\noptions:\n  n: { min: \"1\" }\n  m: { type: integer, min: \"9\", max: \"1\" }\n  d: { delimiter: \";\" }\nsteps: [{ command: true }]\n";
    let err = parse_job(bad, Path::new("t.yaml"), "t")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("t.yaml:3:6: option `n`: min and max are for `type: integer`"),
        "{err}"
    );
    assert!(err.contains("option `m`: min 9 is above max 1"), "{err}");
    assert!(
        err.contains("option `d`: delimiter needs multivalued: true"),
        "{err}"
    );
}

/// Allowed values read at each use from a file beside the job, or from a command's output
/// (Rundeck's remote option values); a command that fails or hangs is an error naming it.
#[test]
fn allowed_values_come_from_a_file_or_a_command() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("envs.txt"),
        "# environments\nSOC_PRODUCTION\n\nSOC_RECETTE\n",
    )
    .unwrap();
    let job = |values_from: &str| {
        let text = format!(
            "targets: all\noptions:\n  env: {{ values_from: {values_from} }}\nsteps: [{{ command: true }}]\n"
        );
        parse_job(&text, &dir.path().join("job.yaml"), "job").expect("the job")
    };
    let check = |j: &ordo_jobs::Job, v: &str| {
        resolve_options(j, &[("env".into(), v.into())])
            .map(|_| ())
            .map_err(|e| e.join("; "))
    };

    let from_file = job("{ file: envs.txt }");
    assert_eq!(
        ordo_jobs::option_values(&from_file.options[0]).unwrap(),
        ["SOC_PRODUCTION", "SOC_RECETTE"]
    );
    assert!(check(&from_file, "SOC_RECETTE").is_ok());
    std::fs::write(dir.path().join("envs.txt"), "SOC_TEST\n").unwrap();
    let err = check(&from_file, "SOC_RECETTE").unwrap_err();
    assert!(
        err.contains("not one of the allowed values: SOC_TEST"),
        "read again at each use: {err}"
    );

    let from_command = job(r#"{ command: [/bin/sh, -c, "echo a; echo b"] }"#);
    assert!(check(&from_command, "b").is_ok());
    assert!(check(&from_command, "c").is_err());
    let failing = job(r#"{ command: [/bin/sh, -c, "echo no such list >&2; exit 3"] }"#);
    let err = check(&failing, "a").unwrap_err();
    assert!(
        err.contains("failed") && err.contains("no such list"),
        "{err}"
    );
    let hanging = job(r#"{ command: [/bin/sleep, "30"], timeout: 1s }"#);
    let t = std::time::Instant::now();
    let err = check(&hanging, "a").unwrap_err();
    assert!(err.contains("did not answer within 1s"), "{err}");
    assert!(t.elapsed() < std::time::Duration::from_secs(10));

    let both = "targets: all\noptions:\n  env: { allowed: [a], values_from: { file: x } }\nsteps: [{ command: true }]\n";
    let err = parse_job(both, &dir.path().join("job.yaml"), "job")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("give allowed or values_from, not both"),
        "{err}"
    );
}
