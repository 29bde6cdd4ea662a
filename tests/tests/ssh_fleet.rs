//! The VIP job (seed 001) over real OpenSSH servers and a real SMTP server.
//!
//! Each sshd has its own private /tmp, so every server writes the same
//! `/tmp/fichier_result_log.txt`; the mailed archive must hold each server's own copy.

use ordo_tests::project::{Project, untar_gz};
use ordo_tests::smtp::SmtpServer;
use ordo_tests::sshd::{ClientKey, SshServer};
use ordo_tests::{LOGIN_USER, RUN_AS_USER, free_port, has_line, processes};

const VIP_JOB: &str = r#"
description: VIP data collection
targets: group:A or group:B
options:
  environment: { default: SOC_PRODUCTION, allowed: [SOC_PRODUCTION, SOC_RECETTE] }
run_as: ordorunner
steps:
  - name: supplied script
    script_file: ../scripts/fichier_fourni.sh
    args: ["${option.environment}"]
    timeout: 60s
collect:
  paths: ["/tmp/fichier_*log.txt"]
mail:
  to: [ops@example.com]
  subject: "VIP ${job.name} ${execution.status}"
"#;

/// Writes one line per server, as the run-as user, then fails where told to.
const SCRIPT: &str = r#"#!/bin/sh
echo "server=$ORDO_NODE_NAME user=$(id -un) env=$1 dc=$ORDO_NODE_ATTR_DC" > /tmp/fichier_result_log.txt
echo "hello from $ORDO_NODE_NAME"
echo "a warning from $ORDO_NODE_NAME" >&2
if [ "$ORDO_NODE_ATTR_FAIL" = yes ]; then echo "giving up" >&2; exit 3; fi
"#;

fn config(p: &Project, key: &ClientKey, smtp: &SmtpServer) {
    p.write(
        "ordo.yaml",
        &format!(
            "ssh:\n  user: {LOGIN_USER}\n  identity: [{}]\n  known_hosts: known_hosts\n  connect_timeout: 5s\n  connect_attempts: 2\n\
             mail:\n  from: vip@example.com\n  smtp: {{ host: localhost, port: {}, tls: starttls, ca_file: {} }}\n",
            key.private.display(),
            smtp.port,
            smtp.ca_file.as_ref().expect("tls smtp").display()
        ),
    );
}

/// `n` servers trusting one key, a STARTTLS SMTP server, and a project whose ordo.yaml
/// and known_hosts point at them.
struct Fleet {
    /// Kept for its files: the controller reads the private key.
    _key: ClientKey,
    servers: Vec<SshServer>,
    smtp: SmtpServer,
    p: Project,
}

/// The folder of server `name` in the first execution (in directory order) that has one.
fn first_folder_of(p: &Project, name: &str) -> std::path::PathBuf {
    std::fs::read_dir(p.path().join("data/executions"))
        .unwrap()
        .flatten()
        .map(|e| e.path().join(name))
        .find(|d| d.exists())
        .expect("the server's folder")
}

impl Fleet {
    /// An inventory of the first server alone, named `s1`.
    fn one_server_inventory(&self) {
        self.p.write(
            "inventory.yaml",
            &format!(
                "servers:\n  s1: {{ host: 127.0.0.1, port: {} }}\n",
                self.servers[0].port
            ),
        );
    }

    fn start(n: usize) -> Self {
        let key = ClientKey::new();
        let servers: Vec<SshServer> = (0..n).map(|_| SshServer::start(&key)).collect();
        let smtp = SmtpServer::start_tls();
        let p = Project::new();
        config(&p, &key, &smtp);
        let known: String = servers.iter().map(SshServer::known_hosts_line).collect();
        p.write("known_hosts", &known);
        Fleet {
            _key: key,
            servers,
            smtp,
            p,
        }
    }
}

#[test]
fn vip_job_collects_each_servers_file_and_mails_the_archive() {
    let f = Fleet::start(4);
    let (servers, smtp, p) = (&f.servers, &f.smtp, &f.p);
    let down_port = free_port();
    // known_hosts: web1..web3 and db1 right; `rogue` points at web1's port with the key of
    // another server recorded (a changed host key).
    let mut known = String::new();
    for s in &servers[..3] {
        known.push_str(&s.known_hosts_line());
    }
    known.push_str(&format!(
        "[127.0.0.1]:{} {}\n",
        servers[3].port, servers[0].host_key
    ));
    p.write("known_hosts", &known);
    p.write(
        "inventory.yaml",
        &format!(
            "servers:\n\
             \x20 web1: {{ host: 127.0.0.1, port: {}, groups: [A], attributes: {{ dc: angers }} }}\n\
             \x20 web2: {{ host: 127.0.0.1, port: {}, groups: [A], attributes: {{ dc: paris }} }}\n\
             \x20 db1: {{ host: 127.0.0.1, port: {}, groups: [B], attributes: {{ dc: lyon, fail: \"yes\" }} }}\n\
             \x20 rogue: {{ host: 127.0.0.1, port: {}, groups: [B], attributes: {{ dc: x }} }}\n\
             \x20 down: {{ host: 127.0.0.1, port: {down_port}, groups: [B], attributes: {{ dc: y }} }}\n\
             \x20 batch1: {{ host: 127.0.0.1, port: 1, groups: [C] }}\n",
            servers[0].port, servers[1].port, servers[2].port, servers[3].port
        ),
    );
    p.write("jobs/vip.yaml", VIP_JOB);
    p.write("scripts/fichier_fourni.sh", SCRIPT);

    let run = p
        .controller(&["run", "vip", "--no-progress"])
        .expect_code(1);
    let out = &run.stdout;

    // Live output: each line with its server's name.
    assert!(has_line(out, "web1", "|", "hello from web1"), "{out}");
    assert!(has_line(out, "web2", "!", "a warning from web2"), "{out}");
    assert!(has_line(out, "db1", "!", "giving up"), "{out}");
    // batch1 is in group C: not selected.
    assert!(!out.contains("batch1"), "{out}");

    // The mail: received over STARTTLS, with the archive attached.
    let mails = smtp.wait_for(1);
    assert_eq!(mails.len(), 1);
    let mail = mails[0].parsed();
    assert_eq!(mail.subject(), Some("VIP vip failed"));
    let to: Vec<String> = mail
        .to()
        .unwrap()
        .iter()
        .filter_map(|a| a.address().map(str::to_string))
        .collect();
    assert_eq!(to, vec!["ops@example.com"]);
    let attachment = mail.attachments().next().expect("an attachment");
    let files = untar_gz(attachment.contents());
    let find = |server: &str| -> String {
        files
            .iter()
            .find(|(k, _)| k.ends_with(&format!("/{server}/fichier_result_log.txt")))
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no file for {server} in {:?}", files.keys()))
    };
    assert_eq!(
        find("web1").trim(),
        format!("server=web1 user={RUN_AS_USER} env=SOC_PRODUCTION dc=angers")
    );
    assert_eq!(
        find("web2").trim(),
        format!("server=web2 user={RUN_AS_USER} env=SOC_PRODUCTION dc=paris")
    );
    // db1's script wrote its file before failing: results help diagnose, so it is collected.
    assert_eq!(
        find("db1").trim(),
        format!("server=db1 user={RUN_AS_USER} env=SOC_PRODUCTION dc=lyon")
    );
    let summary = files
        .iter()
        .find(|(k, _)| k.ends_with("/summary.txt"))
        .map(|(_, v)| v.clone())
        .expect("summary.txt");
    for (server, status) in [
        ("web1", "succeeded"),
        ("web2", "succeeded"),
        ("db1", "failed"),
        ("rogue", "unreachable"),
        ("down", "unreachable"),
    ] {
        let line = summary
            .lines()
            .find(|l| l.contains(&format!(" {server} ")))
            .unwrap_or_else(|| panic!("{server} not in summary:\n{summary}"));
        assert!(line.contains(status), "{server} should be {status}: {line}");
    }
    assert!(summary.contains("HOST KEY OF 127.0.0.1:"), "{summary}");
    assert!(summary.contains("exit code 3"), "{summary}");
    assert!(
        summary.contains(&format!("cannot connect to 127.0.0.1:{down_port}")),
        "{summary}"
    );

    // One SSH connection per server for the whole run, and nothing left behind.
    for s in &servers[..3] {
        assert_eq!(s.accepted_logins(), 1, "one login per server:\n{}", s.log());
        assert_eq!(
            s.exec_inside("ls -d /tmp/ordo-* 2>/dev/null || true")
                .trim(),
            "",
            "run folder removed"
        );
    }
    assert_eq!(
        servers[3].accepted_logins(),
        0,
        "a changed host key is never logged in to"
    );

    // The history: rows for the execution, each server, and the log lines.
    let show = p
        .controller(&["executions", "show", "latest"])
        .expect_code(0)
        .stdout;
    assert!(show.contains("status    failed"), "{show}");
    for (server, status) in [
        ("web1", "succeeded"),
        ("db1", "failed"),
        ("down", "unreachable"),
    ] {
        assert!(
            show.lines()
                .any(|l| l.contains(server) && l.contains(status)),
            "{server}: {show}"
        );
    }
    assert!(show.contains("web2/fichier_result_log.txt"), "{show}");
    let log = p
        .controller(&["executions", "log", "latest", "--server", "web1"])
        .expect_code(0)
        .stdout;
    assert!(has_line(&log, "web1", "|", "hello from web1"), "{log}");
    assert!(!log.contains("web2"), "{log}");
}

#[test]
fn unknown_host_key_is_refused_unless_accepted() {
    let f = Fleet::start(1);
    let (server, p) = (&f.servers[0], &f.p);
    p.write("known_hosts", "");
    p.write(
        "inventory.yaml",
        &format!(
            "servers:\n  new1: {{ host: 127.0.0.1, port: {}, groups: [A] }}\n",
            server.port
        ),
    );
    p.write("jobs/vip.yaml", VIP_JOB);
    p.write("scripts/fichier_fourni.sh", SCRIPT);

    let refused = p
        .controller(&["run", "vip", "--no-progress", "--no-mail"])
        .expect_code(1);
    assert!(
        refused.stdout.contains("host key of 127.0.0.1:"),
        "{}",
        refused.stdout
    );
    assert!(
        refused.stdout.contains("is not known (SHA256:"),
        "{}",
        refused.stdout
    );
    assert_eq!(server.accepted_logins(), 0);

    p.controller(&[
        "run",
        "vip",
        "--no-progress",
        "--no-mail",
        "--accept-new-host-keys",
    ])
    .expect_code(0);
    assert_eq!(server.accepted_logins(), 1);
    assert!(
        p.read("known_hosts")
            .contains(&server.host_key.split(' ').nth(1).unwrap().to_string())
    );
    // Now known: a plain run succeeds.
    p.controller(&["run", "vip", "--no-progress", "--no-mail"])
        .expect_code(0);
}

#[test]
fn ansible_inventory_and_limit_select_servers() {
    let f = Fleet::start(2);
    let (a, b, smtp, p) = (&f.servers[0], &f.servers[1], &f.smtp, &f.p);
    p.write(
        "hosts.ini",
        &format!(
            "[A]\nalpha ansible_host=127.0.0.1 ansible_port={} dc=angers\n[B]\nbeta ansible_host=127.0.0.1 ansible_port={} dc=nantes\n[prod:children]\nA\nB\n[prod:vars]\nansible_user={LOGIN_USER}\n",
            a.port, b.port
        ),
    );
    p.write("jobs/vip.yaml", VIP_JOB);
    p.write("scripts/fichier_fourni.sh", SCRIPT);
    let inv = p.path().join("hosts.ini").display().to_string();
    let plan = p
        .controller(&["--inventory", &inv, "plan", "vip", "--limit", "dc=nantes"])
        .expect_code(0)
        .stdout;
    assert!(
        plan.contains("1 server(s)") && plan.contains("beta") && !plan.contains("alpha"),
        "{plan}"
    );
    assert_eq!(b.accepted_logins(), 0, "plan connects nowhere");
    let run = p
        .controller(&[
            "--inventory",
            &inv,
            "run",
            "vip",
            "--limit",
            "dc=nantes",
            "--opt",
            "environment=SOC_RECETTE",
            "--no-progress",
        ])
        .expect_code(0);
    assert!(
        has_line(&run.stdout, "beta", "|", "hello from beta"),
        "{}",
        run.stdout
    );
    let mail = &smtp.wait_for(1)[0];
    let files = untar_gz(
        mail.parsed()
            .attachments()
            .next()
            .expect("attachment")
            .contents(),
    );
    let file = files
        .iter()
        .find(|(k, _)| k.ends_with("/beta/fichier_result_log.txt"))
        .expect("beta's file")
        .1;
    assert_eq!(
        file.trim(),
        format!("server=beta user={RUN_AS_USER} env=SOC_RECETTE dc=nantes")
    );
    assert!(!files.keys().any(|k| k.contains("/alpha/")));
}

#[test]
fn refused_keys_silent_servers_and_late_starters_are_handled_per_server() {
    let key = ClientKey::new();
    let other = ClientKey::new();
    let good = SshServer::start(&key);
    let wrong_key = SshServer::start(&other);
    // Accepts TCP and never speaks SSH.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let _hold = std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in silent.incoming().flatten() {
            held.push(s);
        }
    });
    // Starts listening only after the run has begun: refused at first, then retried.
    let late_port = free_port();
    let late = {
        let key_path = key.private.clone();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(400));
            let k = ClientKey::from_existing(&key_path);
            SshServer::start_on(&k, late_port)
        })
    };
    let smtp = SmtpServer::start_tls();
    let p = Project::new();
    p.write(
        "ordo.yaml",
        &format!(
            "ssh:\n  user: {LOGIN_USER}\n  identity: [{}]\n  known_hosts: known_hosts\n  connect_timeout: 2s\n  connect_attempts: 5\n\
             mail:\n  smtp: {{ host: localhost, port: {}, tls: starttls, ca_file: {} }}\n",
            key.private.display(),
            smtp.port,
            smtp.ca_file.as_ref().unwrap().display()
        ),
    );
    p.write(
        "inventory.yaml",
        &format!(
            "servers:\n  good: {{ host: 127.0.0.1, port: {} }}\n  wrongkey: {{ host: 127.0.0.1, port: {} }}\n  silent: {{ host: 127.0.0.1, port: {silent_port} }}\n  late: {{ host: 127.0.0.1, port: {late_port} }}\n",
            good.port, wrong_key.port
        ),
    );
    p.write(
        "jobs/hi.yaml",
        "targets: all\nsteps:\n  - command: echo hi from $ORDO_NODE_NAME\n",
    );
    // The late server's host key is learnt on first contact.
    p.write(
        "known_hosts",
        &format!(
            "{}{}",
            good.known_hosts_line(),
            wrong_key.known_hosts_line()
        ),
    );
    let started = std::time::Instant::now();
    let run = p
        .controller(&["run", "hi", "--no-progress", "--accept-new-host-keys"])
        .expect_code(1);
    let late = late.join().unwrap();
    let out = &run.stdout;
    let row = |name: &str| {
        out.lines()
            .find(|l| l.contains("┆") && l.contains(&format!(" {name} ")))
            .unwrap_or_else(|| panic!("{name}: {out}"))
            .to_string()
    };
    assert!(row("good").contains("succeeded"), "{out}");
    assert!(
        row("late").contains("succeeded"),
        "a refused connection is retried: {out}"
    );
    assert!(
        row("wrongkey").contains("unreachable")
            && out.contains(&format!(
                "authentication refused for user `{LOGIN_USER}` on 127.0.0.1:{}",
                wrong_key.port
            )),
        "{out}"
    );
    assert!(
        row("silent").contains("unreachable")
            && out.contains(&format!(
                "connection to 127.0.0.1:{silent_port} timed out after 2 s"
            )),
        "{out}"
    );
    assert!(has_line(out, "late", "|", "hi from late"), "{out}");
    assert_eq!(late.accepted_logins(), 1);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn run_as_with_su_and_sudo_su() {
    let f = Fleet::start(1);
    let (server, p) = (&f.servers[0], &f.p);
    p.write(
        "inventory.yaml",
        &format!(
            "servers:\n  as-root: {{ host: 127.0.0.1, port: {port}, user: root, attributes: {{ method: su }} }}\n  as-login: {{ host: 127.0.0.1, port: {port}, attributes: {{ method: sudo-su }} }}\n",
            port = server.port
        ),
    );
    p.write(
        "jobs/su.yaml",
        &format!(
            "targets: attr.method=su\nrun_as: {{ user: {RUN_AS_USER}, method: su }}\nsteps:\n  - script: echo \"i am $(id -un) with $1\"\n    args: [\"an arg\"]\n"
        ),
    );
    p.write(
        "jobs/sudosu.yaml",
        &format!(
            "targets: attr.method=sudo-su\nrun_as: {{ user: {RUN_AS_USER}, method: sudo-su }}\nsteps:\n  - script: echo \"i am $(id -un) with $1\"\n    args: [\"an arg\"]\n"
        ),
    );
    let su = p.controller(&["run", "su", "--no-progress"]).expect_code(0);
    assert!(
        has_line(
            &su.stdout,
            "as-root",
            "|",
            &format!("i am {RUN_AS_USER} with an arg")
        ),
        "{}",
        su.stdout
    );
    let sudo_su = p
        .controller(&["run", "sudosu", "--no-progress"])
        .expect_code(0);
    assert!(
        has_line(
            &sudo_su.stdout,
            "as-login",
            "|",
            &format!("i am {RUN_AS_USER} with an arg")
        ),
        "{}",
        sudo_su.stdout
    );
}

#[test]
fn ctrl_c_stops_every_server_and_records_the_run_as_aborted() {
    let f = Fleet::start(2);
    let (a, b, p) = (&f.servers[0], &f.servers[1], &f.p);
    p.write(
        "inventory.yaml",
        &format!("servers:\n  a: {{ host: 127.0.0.1, port: {} }}\n  b: {{ host: 127.0.0.1, port: {} }}\n", a.port, b.port),
    );
    let marker = format!("ordo-abort-{}", std::process::id());
    p.write(
        "jobs/long.yaml",
        &format!("targets: all\nrun_as: {RUN_AS_USER}\nsteps:\n  - script: |\n      echo started\n      sh -c 'sleep 300; echo {marker}' &\n      sleep 302\n"),
    );
    let run = p.controller_interrupted(&["run", "long", "--no-progress", "--no-mail"], || {
        processes(RUN_AS_USER, &marker).len() >= 2
    });
    let stdout = run.expect_code(1).stdout;
    assert!(
        stdout.contains("execution") && stdout.contains(" aborted: 0 of 2"),
        "{stdout}"
    );
    let left = processes(RUN_AS_USER, &marker);
    assert!(left.is_empty(), "processes left: {left:?}");
    let show = p
        .controller(&["executions", "show", "latest"])
        .expect_code(0)
        .stdout;
    assert!(show.contains("status    aborted"), "{show}");
    assert_eq!(
        show.lines()
            .filter(|l| l.contains("┆") && l.contains("aborted"))
            .count(),
        2,
        "{show}"
    );
}

#[test]
fn collect_reads_as_the_login_user_unless_run_as_is_asked() {
    let f = Fleet::start(1);
    let p = &f.p;
    f.one_server_inventory();
    let job = |run_as: bool| {
        format!(
            "targets: all\nrun_as: {RUN_AS_USER}\nsteps:\n  - script: |\n      umask 077\n      echo private > /tmp/secret_log.txt\ncollect:\n  paths: [/tmp/secret_log.txt]\n  run_as: {run_as}\n"
        )
    };
    p.write("jobs/login.yaml", &job(false));
    p.write("jobs/runas.yaml", &job(true));
    let run = p
        .controller(&["run", "login", "--no-progress", "--no-mail"])
        .expect_code(0);
    assert!(
        run.stdout.contains("Permission denied"),
        "the login user cannot read a 0600 file: {}",
        run.stdout
    );
    let run = p
        .controller(&["run", "runas", "--no-progress", "--no-mail"])
        .expect_code(0);
    assert!(run.stdout.contains("1 file(s) collected"), "{}", run.stdout);
    // Only the second run collected it (IDs made in the same second do not sort by time).
    let collected: Vec<_> = std::fs::read_dir(p.path().join("data/executions"))
        .unwrap()
        .flatten()
        .map(|e| e.path().join("s1/secret_log.txt"))
        .filter(|f| f.exists())
        .collect();
    assert_eq!(collected.len(), 1);
    assert_eq!(std::fs::read_to_string(&collected[0]).unwrap(), "private\n");
}

/// The last step and the collect after it share one SSH command: the step's output is
/// recorded exactly (empty lines, a last line without a newline), its files are collected
/// with the usual limits, and a failed step still gets a collect of its own when asked.
#[test]
fn the_last_step_and_its_collect_are_one_command_on_the_server() {
    let f = Fleet::start(1);
    let (server, p) = (&f.servers[0], &f.p);
    f.one_server_inventory();
    let job = |fail: bool| {
        format!(
            "targets: all\nrun_as: {RUN_AS_USER}\nsteps:\n  - command: echo first\n  - script: |\n      echo small > /tmp/m_small_log.txt\n      head -c 4096 /dev/zero > /tmp/m_big_log.txt\n      printf 'a\\n\\nb\\n\\n'\n      printf 'no newline' >&2\n      exit {}\ncollect:\n  paths: [/tmp/m_*_log.txt]\n  max_file_size: 1k\n  on_failure: true\n",
            if fail { 4 } else { 0 }
        )
    };
    p.write("jobs/merged.yaml", &job(false));
    let sessions = || server.log().matches("Starting session: command").count();
    let before = sessions();
    let run = p
        .controller(&["run", "merged", "--no-progress", "--no-mail"])
        .expect_code(0);
    assert_eq!(
        sessions() - before,
        2,
        "one command per step, the collect riding on the last: {}",
        server.log()
    );
    assert!(run.stdout.contains("1 file(s) collected"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("m_big_log.txt: not collected: larger than the per-file limit"),
        "{}",
        run.stdout
    );
    let dir = first_folder_of(p, "s1");
    assert_eq!(
        std::fs::read_to_string(dir.join("m_small_log.txt")).unwrap(),
        "small\n"
    );
    assert!(!dir.join("m_big_log.txt").exists());
    let log = p
        .controller(&["executions", "log", "latest"])
        .expect_code(0)
        .stdout;
    let lines: Vec<String> = log
        .lines()
        .map(|l| l.split_once(" s1 ").expect("a server line").1.to_string())
        .collect();
    assert_eq!(
        lines,
        [
            "| first",
            "| a",
            "| ",
            "| b",
            "| ",
            "! no newline",
            "! warning: /tmp/m_big_log.txt: not collected: larger than the per-file limit (1.0 KiB)"
        ],
        "{log}"
    );

    // The step fails: no collect in its command, a separate one (on_failure).
    p.write("jobs/merged.yaml", &job(true));
    let before = sessions();
    let run = p
        .controller(&["run", "merged", "--no-progress", "--no-mail"])
        .expect_code(1);
    assert!(run.stdout.contains("1 file(s) collected"), "{}", run.stdout);
    assert_eq!(sessions() - before, 3, "{}", server.log());
}

/// A collect that does not end (here a step left a process holding the command's output
/// open, so the SSH channel never closes) is stopped after `collect: timeout` on that
/// server: the files received whole are kept, the run ends, nothing is left running.
#[test]
fn a_collect_that_does_not_end_is_stopped_after_its_timeout() {
    let f = Fleet::start(1);
    let p = &f.p;
    f.one_server_inventory();
    let marker = format!("ordo-collect-timeout-{}", std::process::id());
    p.write(
        "jobs/stuck.yaml",
        &format!(
            "targets: all\nrun_as: {RUN_AS_USER}\nsteps:\n  - script: |\n      echo done > /tmp/stuck_log.txt\n      sh -c 'sleep 120; echo {marker}' &\n    timeout: 60s\ncollect:\n  paths: [/tmp/stuck_log.txt]\n  timeout: 3s\n"
        ),
    );
    let started = std::time::Instant::now();
    let run = p
        .controller(&["run", "stuck", "--no-progress", "--no-mail"])
        .expect_code(0);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "the run waited for the process: {:?}",
        started.elapsed()
    );
    assert!(
        run.stdout
            .contains("collect timed out after 3s (collect: timeout) and was stopped"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("1 file(s) collected"), "{}", run.stdout);
    let dir = first_folder_of(p, "s1");
    assert_eq!(
        std::fs::read_to_string(dir.join("stuck_log.txt")).unwrap(),
        "done\n"
    );
    let left = processes(RUN_AS_USER, &marker);
    assert!(left.is_empty(), "processes left: {left:?}");

    // A wrong value is refused with its place.
    p.write(
        "jobs/stuck.yaml",
        "targets: all\nsteps:\n  - command: true\ncollect:\n  paths: [/tmp/x]\n  timeout: 0s\n",
    );
    let check = p.controller(&["check"]).expect_code(2);
    assert!(
        check.stderr.contains("stuck.yaml:6:12")
            && check
                .stderr
                .contains("collect: timeout: must be more than 0"),
        "{}",
        check.stderr
    );
}
