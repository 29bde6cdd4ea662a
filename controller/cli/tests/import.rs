//! `controller import rundeck`: a Rundeck YAML export (the documented job format) becomes
//! ordo job files that `controller check` accepts, with every feature that did not come
//! across named per job; one of the imported jobs then runs.

use std::process::Command;

const EXPORT: &str = r#"
- name: imap auth test
  group: tests/imap
  description: Waits for a login from the client's address
  loglevel: INFO
  uuid: 9c8c1f9e-0000-4000-8000-000000000001
  nodeKeepgoing: false
  nodeThreadcount: 4
  timeout: 30m
  retry: '2'
  nodefilters:
    filter: 'tags: mail+prod !name: mx3'
  options:
  - name: delai
    description: seconds to listen
    value: '30'
    required: true
    regex: '[0-9]+'
  - name: ip
    required: true
  - name: env
    value: PROD
    values: [PROD, TEST]
    enforced: true
  - name: token
    secure: true
    valueExposed: false
  - name: hint
    values: [a, b]
  sequence:
    keepgoing: true
    strategy: node-first
    commands:
    - exec: echo "listening for ${option.delai}s"
      description: announce
    - script: |-
        #!/bin/sh
        echo TEST_OK
      args: one two
    - scriptfile: SCRIPTFILE
    - jobref:
        group: tests
        name: cleanup
        importOptions: true
        args: -env PROD -quiet
    - type: copyfile
      nodeStep: true
      configuration: { source: /a, destination: /b }
  schedule:
    time: { hour: '06', minute: '30', seconds: '0' }
    month: '*'
    weekday: { day: 'MON-FRI' }
    year: '*'
  scheduleEnabled: true
  notification:
    onfailure:
      email: { recipients: 'ops@example.com,lead@example.com', attachLog: true }
      urls: https://hooks.example.com/rundeck
    onsuccess:
      plugin: { type: slack }
- name: cleanup
  group: tests
  options:
  - name: env
  - name: quiet
  sequence:
    commands:
    - exec: echo cleaning ${option.env}
  nodefilters:
    filter: 'name: web1'
"#;

fn controller(dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_controller"))
        .env("ORDO_OPT_TOKEN", "s3cret")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env_remove("ORDO_PROJECT")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_rundeck_export_becomes_jobs_that_check_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::write(
        p.join("inventory.yaml"),
        "servers:\n  web1: { transport: local }\n  mx1: { transport: local, tags: [mail, prod] }\n  mx3: { transport: local, tags: [mail, prod] }\n",
    )
    .unwrap();
    std::fs::create_dir_all(p.join("jobs")).unwrap();
    let script = p.join("check.sh");
    std::fs::write(&script, "#!/bin/sh\necho checked\n").unwrap();
    let export = EXPORT.replace("SCRIPTFILE", &script.display().to_string());
    std::fs::write(p.join("export.yaml"), export).unwrap();
    let export = p.join("export.yaml").display().to_string();
    let (code, out, err) = controller(p, &["import", "rundeck", &export]);
    assert_eq!(code, 0, "{out}{err}");
    for note in [
        "nodeKeepgoing: false",
        "step 3: script file",
        "option `hint`: its values are suggestions",
        "step 5: type, nodeStep, configuration has no ordo equivalent",
        "notification onsuccess: `plugin` has no ordo equivalent",
    ] {
        assert!(out.contains(note), "`{note}` in {out}");
    }
    let job = std::fs::read_to_string(p.join("jobs/tests/imap/imap_auth_test.yaml")).unwrap();
    for want in [
        "targets: \"tag:mail and tag:prod and not name:mx3\"",
        "parallelism: 4",
        "allowed: [\"PROD\", \"TEST\"]",
        "secret: true",
        "on_failure: continue",
        "job: \"tests/cleanup\", import_options: true, options: { \"env\": \"PROD\", \"quiet\": \"\" }",
        "cron: \"0 30 06 ? * MON-FRI *\", syntax: quartz",
        "webhook: \"https://hooks.example.com/rundeck\"",
        "retries: 2",
    ] {
        assert!(job.contains(want), "`{want}` in\n{job}");
    }
    let (code, out, err) = controller(p, &["check"]);
    assert_eq!(code, 0, "the imported jobs pass check: {out}{err}");
    // The plan of the imported job selects what Rundeck's filter selected.
    let (code, out, err) = controller(
        p,
        &["plan", "tests/imap/imap_auth_test", "--opt", "ip=192.0.2.1"],
    );
    assert_eq!(code, 0, "{out}{err}");
    let server = |name: &str| {
        out.lines()
            .any(|l| l.trim_start().starts_with(&format!("{name} ")))
    };
    assert!(server("mx1") && !server("mx3") && !server("web1"), "{out}");
    // Importing again would overwrite: refused without --force, nothing written.
    let (code, _, err) = controller(p, &["import", "rundeck", &export]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("exists: nothing was written"), "{err}");
}

/// A Rundeck node source becomes an inventory: host and port, user, tags, the other
/// attributes; the filters of imported jobs select the same nodes.
#[test]
fn a_rundeck_node_source_becomes_an_inventory() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::create_dir_all(p.join("jobs")).unwrap();
    let src = p.join("resources.yaml");
    std::fs::write(
        &src,
        "mx1:\n  nodename: mx1\n  hostname: 192.0.2.11:2222\n  username: deploy\n  tags: 'mail, prod'\n  osFamily: unix\n  dc: paris\n\
         web1:\n  nodename: web1\n  hostname: 2001:db8::5\n  username: ${option.user}\n  tags: web\n",
    )
    .unwrap();
    let src = src.display().to_string();
    let (code, out, err) = controller(p, &["import", "rundeck-nodes", &src]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("2 server(s) written"), "{out}");
    assert!(
        out.contains("web1: username with a Rundeck variable"),
        "{out}"
    );
    let inv = std::fs::read_to_string(p.join("inventory.yaml")).unwrap();
    assert!(inv.contains(r#""mx1": { host: "192.0.2.11", port: 2222, user: "deploy", tags: ["mail", "prod"], attributes: { "osFamily": "unix", "dc": "paris" } }"#), "{inv}");
    assert!(inv.contains(r#"host: "2001:db8::5""#), "{inv}");
    std::fs::write(
        p.join("jobs/t.yaml"),
        "targets: \"tag:mail and attr.dc=paris\"\nsteps: [{ command: true }]\n",
    )
    .unwrap();
    // A key for the SSH servers: `plan` checks what a run would read on this machine.
    let key = p.join("id_ed25519");
    let made = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen (openssh-client)");
    assert!(made.success());
    std::fs::write(
        p.join("ordo.yaml"),
        format!("ssh:\n  identity: [{}]\n", key.display()),
    )
    .unwrap();
    let (code, out, err) = controller(p, &["plan", "t"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("mx1") && !out.lines().any(|l| l.trim_start().starts_with("web1 ")),
        "{out}"
    );
    let (code, _, err) = controller(p, &["import", "rundeck-nodes", &src]);
    assert_eq!(code, 2, "an existing inventory is not replaced: {err}");
}

/// Leaving is as easy as arriving: the imported jobs exported back to Rundeck's format
/// and imported again into another project give the same jobs.
#[test]
fn jobs_exported_to_rundeck_import_back_the_same() {
    let a = tempfile::tempdir().unwrap();
    let pa = a.path();
    std::fs::write(
        pa.join("inventory.yaml"),
        "servers:\n  web1: { transport: local, tags: [mail, prod] }\n",
    )
    .unwrap();
    std::fs::create_dir_all(pa.join("jobs/ops")).unwrap();
    std::fs::write(
        pa.join("jobs/ops/collect.yaml"),
        "description: the VIP job\ntargets: tag:mail and tag:prod and not name:mx3\nparallelism: 8\non_failure: continue\n\
         options:\n  env: { default: PROD, allowed: [PROD, TEST] }\n  token: { secret: true }\n\
         steps:\n  - { name: say, command: 'echo ${option.env}' }\n  - { script: \"#!/bin/sh\\necho done\\n\", args: [a, b] }\n\
         schedule: { cron: \"30 6 * * 1-5\" }\nnotify:\n  - { on: failure, mail: { to: [ops@example.com] } }\n  - { on: failure, webhook: \"https://hooks.example.com/x\" }\n",
    )
    .unwrap();
    let out = pa.join("export.yaml").display().to_string();
    let (code, so, err) = controller(pa, &["export", "rundeck", "--out", &out]);
    assert_eq!(code, 0, "{so}{err}");
    assert!(err.contains("numeric weekdays shifted"), "{err}");
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.contains("crontab: \"0 30 6 ? * 2-6 *\""), "{text}");
    assert!(
        text.contains("filter: \"tags: mail+prod !name: mx3\""),
        "{text}"
    );

    let b = tempfile::tempdir().unwrap();
    let pb = b.path();
    std::fs::copy(pa.join("inventory.yaml"), pb.join("inventory.yaml")).unwrap();
    std::fs::create_dir_all(pb.join("jobs")).unwrap();
    let (code, so, err) = controller(pb, &["import", "rundeck", &out]);
    assert_eq!(code, 0, "{so}{err}");
    let (code, so, err) = controller(pb, &["check"]);
    assert_eq!(code, 0, "{so}{err}");
    let back = std::fs::read_to_string(pb.join("jobs/ops/collect.yaml")).unwrap();
    for want in [
        "targets: \"tag:mail and tag:prod and not name:mx3\"",
        "parallelism: 8",
        "allowed: [\"PROD\", \"TEST\"]",
        "secret: true",
        "on_failure: continue",
        "command: \"echo ${option.env}\"",
        "args: [\"a\", \"b\"]",
        "mail: { to: [\"ops@example.com\"]",
        "webhook: \"https://hooks.example.com/x\"",
    ] {
        assert!(back.contains(want), "`{want}` in\n{back}");
    }
}

/// Rundeck's XML format gives the same jobs as its YAML.
#[test]
fn a_rundeck_xml_export_imports_like_the_yaml_one() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::write(
        p.join("inventory.yaml"),
        "servers:\n  mx1: { transport: local, tags: [mail, prod] }\n",
    )
    .unwrap();
    std::fs::create_dir_all(p.join("jobs")).unwrap();
    let xml = r#"<joblist>
  <job>
    <name>imap auth test</name>
    <group>tests/imap</group>
    <description>Waits for a login &amp; prints TEST_OK</description>
    <context>
      <options preserveOrder="true">
        <option name="delai" value="30" required="true" regex="[0-9]+"><description>seconds</description></option>
        <option name="env" value="PROD" values="PROD,TEST" enforcedvalues="true"/>
        <option name="token" secure="true" valueExposed="false"/>
      </options>
    </context>
    <dispatch><threadcount>4</threadcount><keepgoing>true</keepgoing></dispatch>
    <nodefilters><filter>tags: mail+prod</filter></nodefilters>
    <sequence keepgoing="true" strategy="node-first">
      <command><exec>echo "waiting ${option.delai}s"</exec><description>announce</description></command>
      <command><script><![CDATA[#!/bin/sh
echo TEST_OK]]></script><scriptargs>one two</scriptargs></command>
      <command><jobref name="cleanup" group="tests" importOptions="true"><arg line="-env PROD"/></jobref></command>
      <command><node-step-plugin type="copyfile"/></command>
    </sequence>
    <schedule><time hour="06" minute="30" seconds="0"/><month month="*"/><weekday day="MON-FRI"/><year year="*"/></schedule>
    <notification><onfailure><email recipients="ops@example.com" attachLog="true"/><webhook urls="https://hooks.example.com/x"/></onfailure></notification>
    <timeout>30m</timeout>
    <retry>1</retry>
  </job>
  <job><name>cleanup</name><group>tests</group><context><options><option name="env"/></options></context>
    <sequence><command><exec>echo cleaning</exec></command></sequence><nodefilters><filter>name: mx1</filter></nodefilters></job>
</joblist>
"#;
    let src = p.join("export.xml");
    std::fs::write(&src, xml).unwrap();
    let (code, out, err) = controller(p, &["import", "rundeck", &src.display().to_string()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("step 4: type has no ordo equivalent"), "{out}");
    let job = std::fs::read_to_string(p.join("jobs/tests/imap/imap_auth_test.yaml")).unwrap();
    for want in [
        "description: \"Waits for a login & prints TEST_OK\"",
        "targets: \"tag:mail and tag:prod\"",
        "parallelism: 4",
        "\"delai\": { description: \"seconds\", default: \"30\", required: true, regex: \"[0-9]+\" }",
        "allowed: [\"PROD\", \"TEST\"]",
        "secret: true",
        "script: \"#!/bin/sh\\necho TEST_OK\"",
        "args: [\"one\", \"two\"]",
        "job: \"tests/cleanup\", import_options: true, options: { \"env\": \"PROD\" }",
        "cron: \"0 30 06 ? * MON-FRI *\", syntax: quartz",
        "mail: { to: [\"ops@example.com\"], attach_log: true }",
        "retries: 1",
    ] {
        assert!(job.contains(want), "`{want}` in\n{job}");
    }
    let (code, out, err) = controller(p, &["check"]);
    assert_eq!(code, 0, "{out}{err}");
    // A broken file is refused with its line and column.
    std::fs::write(&src, "<joblist>\n  <job>\n</joblist>\n").unwrap();
    let (code, _, err) = controller(
        p,
        &["import", "rundeck", &src.display().to_string(), "--force"],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("export.xml:3:"), "{err}");
}

/// Regression (security review 2026-12-07): a Rundeck group with `..` wrote a job file
/// outside the project's jobs folder (over `ordo.yaml` with `--force`), and a
/// `nodeThreadcount` holding a new line added `run_as: root` to the job.
#[test]
fn an_import_writes_only_under_jobs_and_only_typed_values() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::create_dir_all(p.join("jobs")).unwrap();
    std::fs::write(p.join("ordo.yaml"), "# the project's settings\n").unwrap();
    let import = |name: &str, text: &str, force: bool| {
        std::fs::write(p.join(name), text).unwrap();
        let file = p.join(name).display().to_string();
        let mut args = vec!["import", "rundeck", file.as_str()];
        if force {
            args.push("--force");
        }
        controller(p, &args)
    };
    let climbing =
        "- name: ordo\n  group: '..'\n  sequence: { commands: [ { exec: 'echo pwned' } ] }\n";
    let (code, out, err) = import("up.yaml", climbing, true);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("job `ordo`") && err.contains("`..`"), "{err}");
    assert!(err.contains("up.yaml:1:3"), "the position: {err}");
    assert_eq!(
        std::fs::read_to_string(p.join("ordo.yaml")).unwrap(),
        "# the project's settings\n",
        "ordo.yaml untouched"
    );
    let deep = "- name: x\n  group: a/../../..\n  sequence: { commands: [ { exec: 'true' } ] }\n";
    assert_eq!(import("deep.yaml", deep, true).0, 2);
    // A link inside jobs/ to a folder outside: refused before anything is written.
    std::os::unix::fs::symlink("/tmp", p.join("jobs/out")).unwrap();
    let linked = "- name: x\n  group: out\n  sequence: { commands: [ { exec: 'true' } ] }\n";
    let (code, _, err) = import("linked.yaml", linked, true);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("outside the jobs folder"), "{err}");
    assert!(
        !std::path::Path::new("/tmp/x.yaml").exists() || {
            // Another test's file is not ours to judge; ours was never written.
            !std::fs::read_to_string("/tmp/x.yaml")
                .unwrap_or_default()
                .contains("Imported from Rundeck")
        }
    );
    // Numbers are numbers: text with a new line is refused with the job's name.
    let injected = "- name: inj\n  nodeThreadcount: \"4\\nrun_as: root\"\n  sequence: { commands: [ { exec: 'id' } ] }\n";
    let (code, out, err) = import("inj.yaml", injected, false);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("job `inj`: nodeThreadcount") && err.contains("not a whole number"),
        "{err}"
    );
    let retry =
        "- name: r\n  retry: \"${option.n}\"\n  sequence: { commands: [ { exec: 'id' } ] }\n";
    let (code, _, err) = import("retry.yaml", retry, false);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("job `r`: retry"), "{err}");
    assert!(!p.join("jobs/inj.yaml").exists() && !p.join("jobs/r.yaml").exists());
    // A clean one is written, its numbers as numbers.
    let fine = "- name: ok\n  nodeThreadcount: '8'\n  retry: { retry: '2', delay: 30s }\n  sequence: { commands: [ { exec: 'true' } ] }\n";
    let (code, out, err) = import("fine.yaml", fine, false);
    assert_eq!(code, 0, "{out}{err}");
    let job = std::fs::read_to_string(p.join("jobs/ok.yaml")).unwrap();
    assert!(
        job.contains("parallelism: 8\n") && job.contains("retries: 2"),
        "{job}"
    );
    assert!(out.contains("retry delay `30s`"), "{out}");
}

/// Found by an attacker's review (2026-12-08): `ssh-port` was written unquoted (`"22,
/// transport: local"` moved the server onto the controller), the inventory written
/// through a link, a Rundeck filter value `web1|all` read as `web1 or all`, and two jobs
/// mapping to one file overwrote each other.
#[test]
fn node_sources_and_filters_are_data_too() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::create_dir_all(p.join("jobs")).unwrap();
    std::fs::write(
        p.join("nodes.yaml"),
        "web1: { hostname: 10.0.0.5, ssh-port: '22, transport: local' }\n",
    )
    .unwrap();
    let nodes = p.join("nodes.yaml").display().to_string();
    let out = p.join("inv.yaml").display().to_string();
    let (code, _, err) = controller(p, &["import", "rundeck-nodes", &nodes, "--out", &out]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("ssh-port") && err.contains("not a port number"),
        "{err}"
    );
    assert!(!p.join("inv.yaml").exists());
    // A link where the inventory goes: refused, the link's target untouched.
    std::fs::write(
        p.join("nodes.yaml"),
        "web1: { hostname: 10.0.0.5, ssh-port: '2222' }\n",
    )
    .unwrap();
    std::os::unix::fs::symlink(p.join("elsewhere"), p.join("inv.yaml")).unwrap();
    let (code, _, err) = controller(
        p,
        &["import", "rundeck-nodes", &nodes, "--out", &out, "--force"],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is a link"), "{err}");
    assert!(!p.join("elsewhere").exists());
    std::fs::remove_file(p.join("inv.yaml")).unwrap();
    let (code, _, err) = controller(p, &["import", "rundeck-nodes", &nodes, "--out", &out]);
    assert_eq!(code, 0, "{err}");
    let inv = std::fs::read_to_string(p.join("inv.yaml")).unwrap();
    assert!(inv.contains("port: 2222 "), "{inv}");
    // A filter value is one value.
    std::fs::write(
        p.join("jobs.yaml"),
        "- name: narrow\n  nodefilters: { filter: 'name: web1|all' }\n  sequence: { commands: [ { exec: 'true' } ] }\n",
    )
    .unwrap();
    let jobs = p.join("jobs.yaml").display().to_string();
    let (code, out, err) = controller(p, &["import", "rundeck", &jobs]);
    assert_eq!(code, 0, "{out}{err}");
    let job = std::fs::read_to_string(p.join("jobs/narrow.yaml")).unwrap();
    assert!(job.contains(r#"targets: "\"name:web1|all\"""#), "{job}");
    // Two jobs becoming one file: refused, nothing written.
    std::fs::write(
        p.join("twice.yaml"),
        "- name: a b\n  sequence: { commands: [ { exec: 'true' } ] }\n- name: a_b\n  sequence: { commands: [ { exec: 'true' } ] }\n",
    )
    .unwrap();
    let twice = p.join("twice.yaml").display().to_string();
    let (code, _, err) = controller(p, &["import", "rundeck", &twice]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("two jobs of the export become `a_b`"), "{err}");
    assert!(!p.join("jobs/a_b.yaml").exists());
}
