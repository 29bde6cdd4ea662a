//! Real agents over gRPC with mutual TLS, enrolled through the real commands; the same
//! job as over SSH; a mixed inventory; untrusted clients; run-as enforcement; kills.

use std::process::Command;

use ordo_tests::agent::AgentProcess;
use ordo_tests::project::{Project, untar_gz};
use ordo_tests::smtp::SmtpServer;
use ordo_tests::sshd::{ClientKey, SshServer};
use ordo_tests::{LOGIN_USER, RUN_AS_USER, has_line, processes, sh, summary_row};

const VIP_JOB: &str = r#"
targets: all
options:
  environment: { default: SOC_PRODUCTION }
run_as: ordorunner
steps:
  - name: supplied script
    script: |
      echo "server=$ORDO_NODE_NAME user=$(id -un) env=$1" > /tmp/fichier_result_log.txt
      echo "hello from $ORDO_NODE_NAME"
    args: ["${option.environment}"]
collect: ["/tmp/fichier_*log.txt"]
mail: { to: [ops@example.com], subject: "VIP ${execution.status}" }
"#;

/// A project with its CA initialised and mail going to `smtp`.
fn project(smtp: &SmtpServer, ssh: Option<&ClientKey>) -> Project {
    let p = Project::new();
    let mut cfg = format!(
        "mail:\n  smtp: {{ host: localhost, port: {}, tls: starttls, ca_file: {} }}\n",
        smtp.port,
        smtp.ca_file.as_ref().unwrap().display()
    );
    if let Some(k) = ssh {
        cfg.push_str(&format!(
            "ssh:\n  user: {LOGIN_USER}\n  identity: [{}]\n  known_hosts: known_hosts\n",
            k.private.display()
        ));
    }
    p.write("ordo.yaml", &cfg);
    p.controller(&["pki", "init"]).expect_code(0);
    p
}

#[test]
fn one_job_across_ssh_servers_and_agents_gives_one_archive() {
    let smtp = SmtpServer::start_tls();
    let key = ClientKey::new();
    let p = project(&smtp, Some(&key));
    let web1 = SshServer::start(&key);
    let web2 = SshServer::start(&key);
    let ag1 = AgentProcess::start(&p, "ag1", &format!("[{RUN_AS_USER}]"));
    let ag2 = AgentProcess::start(&p, "ag2", &format!("[{RUN_AS_USER}]"));
    p.write(
        "known_hosts",
        &format!("{}{}", web1.known_hosts_line(), web2.known_hosts_line()),
    );
    p.write(
        "inventory.yaml",
        &format!(
            "servers:\n  web1: {{ host: 127.0.0.1, port: {} }}\n  web2: {{ host: 127.0.0.1, port: {} }}\n{}{}",
            web1.port,
            web2.port,
            ag1.inventory_line(""),
            ag2.inventory_line("")
        ),
    );
    p.write("jobs/vip.yaml", VIP_JOB);
    let run = p
        .controller(&["run", "vip", "--no-progress"])
        .expect_code(0);
    for s in ["web1", "web2", "ag1", "ag2"] {
        assert!(
            has_line(&run.stdout, s, "|", &format!("hello from {s}")),
            "{}",
            run.stdout
        );
        assert!(
            summary_row(&run.stdout, s).contains("succeeded"),
            "{}",
            run.stdout
        );
    }
    let mail = &smtp.wait_for(1)[0];
    assert_eq!(mail.parsed().subject(), Some("VIP succeeded"));
    let files = untar_gz(
        mail.parsed()
            .attachments()
            .next()
            .expect("attachment")
            .contents(),
    );
    // The same layout and content whichever transport reached the server.
    for s in ["web1", "web2", "ag1", "ag2"] {
        let (_, content) = files
            .iter()
            .find(|(k, _)| k.ends_with(&format!("/{s}/fichier_result_log.txt")))
            .unwrap_or_else(|| panic!("no file for {s}: {:?}", files.keys()));
        assert_eq!(
            content.trim(),
            format!("server={s} user={RUN_AS_USER} env=SOC_PRODUCTION")
        );
    }
    let show = p
        .controller(&["executions", "show", "latest"])
        .expect_code(0)
        .stdout;
    assert!(
        show.lines()
            .any(|l| l.contains("ag1") && l.contains("succeeded")),
        "{show}"
    );
}

#[test]
fn clients_without_a_controller_certificate_get_nothing() {
    let smtp = SmtpServer::start_tls();
    let p = project(&smtp, None);
    let ag = AgentProcess::start(&p, "ag1", "[\"*\", root]");
    p.write(
        "inventory.yaml",
        &format!("servers:\n{}", ag.inventory_line("")),
    );
    p.write(
        "jobs/hi.yaml",
        "targets: all\nsteps:\n  - command: echo reached\n",
    );
    p.controller(&["run", "hi", "--no-progress", "--no-mail"])
        .expect_code(0);

    // 1. A controller with its own, unrelated CA.
    let other = project(&smtp, None);
    other.write(
        "inventory.yaml",
        &format!("servers:\n{}", ag.inventory_line("")),
    );
    other.write(
        "jobs/hi.yaml",
        "targets: all\nsteps:\n  - command: echo reached\n",
    );
    let run = other
        .controller(&["run", "hi", "--no-progress", "--no-mail"])
        .expect_code(1);
    assert!(
        summary_row(&run.stdout, "ag1").contains("unreachable"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("| reached"), "{}", run.stdout);

    // 2. A client certificate from the right CA, but not for a controller.
    let pki = p.path().join("data/pki");
    let intruder = other.path().join("data/pki");
    sh(&format!(
        "cd {i} && openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj '/CN=intruder' -keyout controller.key -out intruder.csr 2>/dev/null \
         && printf 'extendedKeyUsage=clientAuth\\n' > ext && openssl x509 -req -in intruder.csr -CA {c}/ca.pem -CAkey {c}/ca.key -CAcreateserial -days 1 -extfile ext -out controller.pem 2>/dev/null \
         && cp {c}/ca.pem ca.pem",
        i = intruder.display(),
        c = pki.display()
    ));
    let run = other
        .controller(&["run", "hi", "--no-progress", "--no-mail"])
        .expect_code(1);
    assert!(
        run.stdout
            .contains("client `intruder` is not a controller this agent accepts"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("| reached"), "{}", run.stdout);

    // 3. No client certificate at all: the server ends the handshake with TLS 1.3's
    // "certificate required" alert (read after the client's Finished, hence -ign_eof).
    let no_cert = sh(&format!(
        "echo | timeout 10 openssl s_client -connect 127.0.0.1:{} -CAfile {} -ign_eof 2>&1 || true",
        ag.port,
        pki.join("ca.pem").display()
    ));
    assert!(no_cert.contains("alert certificate required"), "{no_cert}");
}

#[test]
fn the_agent_enforces_its_allowed_users() {
    let smtp = SmtpServer::start_tls();
    let p = project(&smtp, None);
    let ag = AgentProcess::start(&p, "ag1", &format!("[{RUN_AS_USER}]"));
    p.write(
        "inventory.yaml",
        &format!("servers:\n{}", ag.inventory_line("")),
    );
    let refused = |job: &str, text: &str, why: &str| {
        p.write(&format!("jobs/{job}.yaml"), text);
        let run = p
            .controller(&["run", job, "--no-progress", "--no-mail"])
            .expect_code(1);
        assert!(run.stdout.contains(why), "{job}: {}", run.stdout);
        assert!(
            summary_row(&run.stdout, "ag1").contains("failed"),
            "{job}: a refusal is a failed server, not an unreachable one:\n{}",
            run.stdout
        );
    };
    let not_allowed = |u: &str| format!("user `{u}` is not allowed to run commands on this agent");
    refused(
        "nobody",
        "targets: all\nrun_as: nobody\nsteps:\n  - command: id -un\n",
        &not_allowed("nobody"),
    );
    // No run_as is the agent's own user (root here): it must be allowed too.
    refused(
        "implicit",
        "targets: all\nsteps:\n  - command: id -un\n",
        &not_allowed("root"),
    );
    refused(
        "root",
        "targets: all\nrun_as: root\nsteps:\n  - command: id -un\n",
        &not_allowed("root"),
    );
    // Variables that change how the privileged setpriv starts never reach it.
    refused(
        "preload",
        &format!(
            "targets: all\nrun_as: {RUN_AS_USER}\nenv: {{ LD_PRELOAD: /tmp/evil.so }}\nsteps:\n  - command: id -un\n"
        ),
        "environment variable `LD_PRELOAD` is refused",
    );
    // An uploaded script (not a shell script) lands in a fresh run folder, owned by the
    // run's user, without setuid bits; the collect reads as that user.
    p.write(
        "jobs/python.yaml",
        &format!(
            "targets: all\nrun_as: {RUN_AS_USER}\nsteps:\n  - script: |\n      #!/usr/bin/python3\n      import os, pwd, sys\n      st = os.stat(sys.argv[0])\n      d = os.stat(os.path.dirname(sys.argv[0]))\n      print('file', pwd.getpwuid(st.st_uid).pw_name, oct(st.st_mode & 0o7777))\n      print('dir', pwd.getpwuid(d.st_uid).pw_name)\n      open('/tmp/ordo_agent_policy_result.txt', 'w').write('ok')\ncollect: [/tmp/ordo_agent_policy_result.txt]\n"
        ),
    );
    let run = p
        .controller(&["run", "python", "--no-progress", "--no-mail"])
        .expect_code(0);
    assert!(
        has_line(
            &run.stdout,
            "ag1",
            "|",
            &format!("file {RUN_AS_USER} 0o755")
        ),
        "{}",
        run.stdout
    );
    assert!(
        has_line(&run.stdout, "ag1", "|", &format!("dir {RUN_AS_USER}")),
        "{}",
        run.stdout
    );
    assert!(
        summary_row(&run.stdout, "ag1").contains("1 ("),
        "{}",
        run.stdout
    );
    // `*` is any user but root: root runs only on an agent that names it.
    drop(ag);
    let any = AgentProcess::start(&p, "ag1", "[\"*\"]");
    p.write(
        "inventory.yaml",
        &format!("servers:\n{}", any.inventory_line("")),
    );
    refused(
        "root",
        "targets: all\nrun_as: root\nsteps:\n  - command: id -un\n",
        &not_allowed("root"),
    );
    refused(
        "implicit",
        "targets: all\nsteps:\n  - command: id -un\n",
        &not_allowed("root"),
    );
}

#[test]
fn agents_list_shows_each_agent_and_remembers_the_last_contact() {
    let smtp = SmtpServer::start_tls();
    let p = project(&smtp, None);
    let ag1 = AgentProcess::start(&p, "ag1", "[\"*\"]");
    let ag2 = AgentProcess::start(&p, "ag2", "[\"*\"]");
    p.write(
        "inventory.yaml",
        &format!(
            "servers:\n{}{}  web9: {{ host: 127.0.0.1 }}\n",
            ag1.inventory_line(""),
            ag2.inventory_line("")
        ),
    );
    let list = p.controller(&["agents", "list"]).expect_code(0).stdout;
    let version = env!("CARGO_PKG_VERSION");
    for name in ["ag1", "ag2"] {
        let r = summary_row(&list, name);
        assert!(
            r.contains(" up ") && r.contains(version) && r.contains(" root "),
            "{list}"
        );
    }
    assert!(!list.contains("web9"), "only agents are listed: {list}");
    // The certificate expiry is a year out.
    let year = (chrono_year() + 1).to_string();
    assert!(summary_row(&list, "ag1").contains(&year), "{list}");

    drop(ag2);
    let list = p.controller(&["agents", "list"]).expect_code(1).stdout;
    let r = summary_row(&list, "ag2");
    assert!(r.contains("down: cannot connect"), "{list}");
    assert!(
        r.contains(version) && !r.contains("never"),
        "the last contact is remembered: {list}"
    );
}

fn chrono_year() -> i32 {
    sh("date +%Y").trim().parse().unwrap()
}

#[test]
fn a_stock_grpc_client_with_the_right_certificate_can_talk_to_the_agent() {
    let smtp = SmtpServer::start_tls();
    let p = project(&smtp, None);
    let ag = AgentProcess::start(&p, "ag1", "[\"*\"]");
    let pki = p.path().join("data/pki");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/grpc_client.py");
    let call = |cert: &std::path::Path, key: &std::path::Path| {
        Command::new("python3")
            .arg(&script)
            .arg(format!("127.0.0.1:{}", ag.port))
            .arg("ag1")
            .arg(pki.join("ca.pem"))
            .arg(cert)
            .arg(key)
            .output()
            .expect("python3 with grpcio (see .ci/run)")
    };
    let ok = call(&pki.join("controller.pem"), &pki.join("controller.key"));
    let out = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(out.contains("ordo.agent.v1.Agent"), "{out}");
    assert!(
        out.contains("\"name\": \"ag1\"") && out.contains("\"user\": \"root\""),
        "{out}"
    );
    // The agent's own certificate is not a client certificate.
    let refused = call(&ag.path().join("agent.pem"), &ag.path().join("agent.key"));
    assert!(!refused.status.success());
    assert!(!String::from_utf8_lossy(&refused.stdout).contains("health:"));
}

#[test]
fn ctrl_c_stops_commands_on_agents_and_records_the_run_as_aborted() {
    let smtp = SmtpServer::start_tls();
    let p = project(&smtp, None);
    let a = AgentProcess::start(&p, "ag1", "[\"*\"]");
    let b = AgentProcess::start(&p, "ag2", "[\"*\"]");
    p.write(
        "inventory.yaml",
        &format!("servers:\n{}{}", a.inventory_line(""), b.inventory_line("")),
    );
    let marker = format!("ordo-agent-abort-{}", std::process::id());
    p.write(
        "jobs/long.yaml",
        &format!("targets: all\nrun_as: {RUN_AS_USER}\nsteps:\n  - script: |\n      sh -c 'sleep 300; echo {marker}' &\n      sleep 302\n"),
    );
    let run = p.controller_interrupted(&["run", "long", "--no-progress", "--no-mail"], || {
        processes(RUN_AS_USER, &marker).len() >= 2
    });
    let stdout = run.expect_code(1).stdout;
    assert!(stdout.contains(" aborted: 0 of 2"), "{stdout}");
    let left = processes(RUN_AS_USER, &marker);
    assert!(
        left.is_empty(),
        "no process of the script is left on either agent: {left:?}"
    );
    let show = p
        .controller(&["executions", "show", "latest"])
        .expect_code(0)
        .stdout;
    assert!(show.contains("status    aborted"), "{show}");
}

/// The established connections from this machine to `port` (their local ports).
fn connections_to(port: u16) -> Vec<String> {
    sh(&format!("ss -Htn state established '( dport = :{port} )'"))
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2).map(str::to_string))
        .collect()
}

/// `controller serve` keeps its connection to an agent between runs: the second and third
/// runs reuse the first one's TCP connection and TLS session (no new handshake).
#[test]
fn serve_reuses_its_connection_to_an_agent_between_runs() {
    let smtp = SmtpServer::start_tls();
    let p = project(&smtp, None);
    let ag = AgentProcess::start(&p, "ag1", "[\"*\", root]");
    p.write(
        "inventory.yaml",
        &format!("servers:\n{}", ag.inventory_line("")),
    );
    p.write(
        "jobs/noop.yaml",
        "targets: all\narchive: false\nsteps: [{ command: 'echo ok' }]\n",
    );
    let api = ordo_tests::free_port();
    let client = ordo_tests::api::Api::http(api).token(&p.admin_token());
    let mut serve = p.serve(&[], &["--listen", &format!("http://127.0.0.1:{api}")]);
    ordo_tests::wait_for_port(api, "the API");
    let run = || {
        let r = client.post("/api/v1/jobs/noop", "{}");
        assert_eq!(r.status, 202, "{}", r.text);
        let id = r.json["execution"].as_str().unwrap().to_string();
        ordo_tests::wait_until(
            "the run to finish",
            std::time::Duration::from_secs(20),
            || client.get(&format!("/api/v1/executions/{id}")).json["status"] == "succeeded",
        );
    };
    run();
    let first = connections_to(ag.port);
    assert_eq!(first.len(), 1, "one connection to the agent: {first:?}");
    run();
    run();
    assert_eq!(
        connections_to(ag.port),
        first,
        "the connection was not reused"
    );
    serve.stop();
}

/// Revocation both ways: an agent whose certificate the controller revoked is refused at
/// the handshake; an agent given the CRL refuses a revoked controller certificate, and
/// accepts the renewed one.
#[test]
fn revoked_certificates_are_refused_both_ways() {
    let smtp = SmtpServer::start_tls();
    let p = project(&smtp, None);
    let mut ag1 = AgentProcess::start(&p, "ag1", "[\"*\", root]");
    let ag2 = AgentProcess::start(&p, "ag2", "[\"*\", root]");
    p.write(
        "inventory.yaml",
        &format!(
            "servers:\n{}{}",
            ag1.inventory_line(""),
            ag2.inventory_line("")
        ),
    );
    p.write(
        "jobs/up.yaml",
        "targets: all\nsteps:\n  - command: echo up\n",
    );
    let run = || p.controller(&["run", "up", "--no-progress", "--no-mail"]);
    run().expect_code(0);

    let revoke = p.controller(&["pki", "revoke", "ag2"]).expect_code(0);
    assert!(
        revoke.stdout.contains("revoked 1 certificate(s) of `ag2`"),
        "{}",
        revoke.stdout
    );
    let out = run().expect_code(1).stdout;
    assert!(summary_row(&out, "ag1").contains("succeeded"), "{out}");
    let row = summary_row(&out, "ag2");
    assert!(
        row.contains("unreachable") && row.to_lowercase().contains("revoked"),
        "{out}"
    );

    // The controller's own certificate revoked, and the agent told (tls: crl).
    p.controller(&["pki", "revoke", "controller"])
        .expect_code(0);
    std::fs::copy(
        p.path().join("data/pki/crl.pem"),
        ag1.path().join("crl.pem"),
    )
    .unwrap();
    let cfg = std::fs::read_to_string(ag1.path().join("agent.yaml")).unwrap();
    std::fs::write(
        ag1.path().join("agent.yaml"),
        cfg.replace("key: agent.key }", "key: agent.key, crl: crl.pem }"),
    )
    .unwrap();
    ag1.kill();
    ag1.restart();
    let out = run().expect_code(1).stdout;
    let row = summary_row(&out, "ag1");
    assert!(
        row.contains("unreachable") && row.contains("revoked"),
        "{out}"
    );
    // Renewed, the controller is accepted again.
    p.controller(&["pki", "renew"]).expect_code(0);
    let out = run().expect_code(1).stdout;
    assert!(summary_row(&out, "ag1").contains("succeeded"), "{out}");
}

/// A controller that vanishes mid-run (frozen: its TCP connection stays open, but it no
/// longer answers): the agent's HTTP/2 keepalive (30 s, then 10 s) closes the connection
/// and the commands it ran are stopped, instead of running for ever.
#[test]
fn an_agent_stops_the_commands_of_a_controller_that_vanished() {
    let smtp = SmtpServer::start_tls();
    let p = project(&smtp, None);
    let a = AgentProcess::start(&p, "ag1", &format!("[{RUN_AS_USER}]"));
    p.write(
        "inventory.yaml",
        &format!("servers:\n{}", a.inventory_line("")),
    );
    let marker = format!("ordo-vanished-{}", std::process::id());
    p.write(
        "jobs/long.yaml",
        &format!("targets: all\nrun_as: {RUN_AS_USER}\nsteps:\n  - script: |\n      sh -c 'sleep 600; echo {marker}' &\n      sleep 601\n"),
    );
    let running = || !processes(RUN_AS_USER, &marker).is_empty();
    let mut pid = 0;
    let out = p.controller_during(
        &["run", "long", "--no-progress", "--no-mail"],
        running,
        |child| {
            pid = child;
            sh(&format!("kill -STOP {child}"));
            let started = std::time::Instant::now();
            ordo_tests::wait_until(
                "the agent to stop the commands",
                std::time::Duration::from_secs(90),
                || !running(),
            );
            let took = started.elapsed().as_secs();
            assert!(
                took >= 20,
                "stopped after {took} s: too early for a keepalive"
            );
            sh(&format!("kill -KILL {child}"));
        },
    );
    assert_ne!(out.code, 0);
    assert!(pid > 0);
    assert!(
        processes(RUN_AS_USER, "^sleep 60[01]$").is_empty(),
        "the step's own sleep is gone too"
    );
}
