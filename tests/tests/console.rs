//! The web console in a real headless Chromium, against a real `controller serve` over
//! HTTPS, real OpenSSH servers and a real SMTP server that receives the login codes.
//! Screenshots of the pages are saved under `target/screenshots/`.

use std::collections::HashSet;
use std::time::Duration;

use ordo_tests::api::Api;
use ordo_tests::browser::Browser;
use ordo_tests::project::{PASSWORD, Project, untar_gz};
use ordo_tests::smtp::SmtpServer;
use ordo_tests::sshd::{ClientKey, SshServer};
use ordo_tests::{LOGIN_USER, free_port, wait_for_port};

const JOB: &str = r#"
description: Collects each server's result file (the VIP job).
targets: all
options:
  environment: { default: SOC_PRODUCTION, allowed: [SOC_PRODUCTION, SOC_RECETTE] }
  delai: { type: integer, required: true, description: seconds to wait }
steps:
  - name: collect
    script: |
      #!/bin/sh
      echo "server=$ORDO_NODE_NAME env=${option.environment}" > /tmp/fichier_result_log.txt
      for i in 1 2 3; do echo "line $i on $ORDO_NODE_NAME"; sleep 0.3; done
      echo "done on $ORDO_NODE_NAME"
collect:
  paths: ["/tmp/fichier_*log.txt"]
"#;

struct Setup {
    _key: ClientKey,
    _servers: Vec<SshServer>,
    smtp: SmtpServer,
    p: Project,
    _serve: ordo_tests::project::Serve,
    base: String,
    api: Api,
}

/// Three sshd servers, an SMTP server, a project with job `vip/collect`, an operator
/// `olga` and a viewer `vic` of folder `vip`, and `serve` on HTTPS.
fn setup() -> Setup {
    let key = ClientKey::new();
    let servers: Vec<SshServer> = (0..3).map(|_| SshServer::start(&key)).collect();
    let smtp = SmtpServer::start();
    let p = Project::new();
    p.write(
        "ordo.yaml",
        &format!(
            "ssh:\n  user: {LOGIN_USER}\n  identity: [{}]\n  known_hosts: known_hosts\n\
             mail:\n  from: ordo@example.com\n  smtp: {{ host: 127.0.0.1, port: {}, tls: none }}\n\
             serve:\n  auth: {{ login_backoff: 1s }}\n",
            key.private.display(),
            smtp.port
        ),
    );
    let known: String = servers.iter().map(SshServer::known_hosts_line).collect();
    p.write("known_hosts", &known);
    let mut inv = String::from("servers:\n");
    for (i, s) in servers.iter().enumerate() {
        inv.push_str(&format!(
            "  web{}: {{ host: 127.0.0.1, port: {} }}\n",
            i + 1,
            s.port
        ));
    }
    p.write("inventory.yaml", &inv);
    p.write("jobs/vip/collect.yaml", JOB);
    p.write(
        "jobs/vip/slow.yaml",
        &format!(
            "targets: all\nsteps: [{{ command: \"sh -c 'sleep 4501; echo {}'\" }}]\n",
            slow_marker()
        ),
    );
    p.write(
        "jobs/vip/check.yaml",
        "targets: all\noptions: { verdict: { default: pass } }\nsteps: [{ command: 'echo verdict=${option.verdict}; [ \"${option.verdict}\" = pass ]' }]\n",
    );
    p.write(
        "jobs/vip/all.yaml",
        "description: every VIP check in order\noptions: { verdict: { default: pass, allowed: [pass, fail] } }\non_failure: continue\nsteps:\n  - { job: vip/check }\n  - { job: vip/check, import_options: true }\n",
    );
    p.write(
        "jobs/vip/README.md",
        "VIP collection jobs. Ask the night shift before running.\n",
    );
    p.add_user("olga", "operator", &["--projects", "vip"]);
    p.add_user("vic", "viewer", &["--projects", "vip"]);
    let port = free_port();
    let serve = p.serve(&[], &["--listen", &format!("127.0.0.1:{port}")]);
    wait_for_port(port, "serve");
    let api = Api::https(port, &p.path().join("data/pki/ca.pem"));
    Setup {
        _key: key,
        _servers: servers,
        smtp,
        p,
        _serve: serve,
        base: format!("https://localhost:{port}"),
        api,
    }
}

/// Logs `user` in through the pages: password, then the code from the mail it received.
fn log_in(b: &Browser, s: &Setup, user: &str, seen: &mut HashSet<Vec<u8>>) {
    b.goto(&format!("{}/", s.base));
    assert!(
        b.url().contains("/login"),
        "not sent to the login page: {}",
        b.url()
    );
    b.fill("#user", user);
    b.fill("#password", PASSWORD);
    b.click("#login");
    assert!(b.text("#sent-to").contains("***@example.com"));
    let mails = s.smtp.wait_for(seen.len() + 1);
    let fresh: Vec<_> = mails
        .into_iter()
        .filter(|m| !seen.contains(&m.raw))
        .collect();
    let mail = fresh.last().expect("the code's mail");
    seen.insert(mail.raw.clone());
    let body = mail.parsed().body_text(0).unwrap_or_default().to_string();
    let code = body
        .split_whitespace()
        .find(|w| w.len() == 6 && w.bytes().all(|c| c.is_ascii_digit()))
        .expect("a code")
        .to_string();
    b.fill("#code", &code);
    b.click("#verify");
    b.wait_text("#who", 10, |t| t.starts_with(user));
}

#[test]
fn an_operator_runs_the_vip_job_and_follows_it_live_in_the_browser() {
    let s = setup();
    let b = Browser::start("console-operator", 1280, 900);
    let mut seen = HashSet::new();
    log_in(&b, &s, "olga", &mut seen);
    // The project home shows the folder and its readme.
    assert!(
        b.text("main").contains("Ask the night shift"),
        "{}",
        b.text("main")
    );
    b.screenshot("home");

    // A bad value is shown next to its field; the other values are kept.
    b.goto(&format!("{}/jobs/vip/collect", s.base));
    b.select("#opt-environment", "SOC_RECETTE");
    b.fill("#opt-delai", "soon");
    b.click("#run-now");
    let err = b.wait_text("#err-delai", 10, |t| !t.is_empty());
    assert!(err.contains("delai"), "the field's error: {err:?}");
    assert_eq!(
        b.prop("#opt-environment", "value").as_deref(),
        Some("SOC_RECETTE")
    );
    b.screenshot("bad-option");

    // Run: the execution page follows the live log to the last line of every server.
    b.fill("#opt-delai", "5");
    b.click("#run-now");
    let id = b.wait_text("#exec-id", 10, |t| t.starts_with('#'))[1..].to_string();
    // Live: the status turns when the run ends (then the page reloads as it is now).
    b.wait_text("#status", 60, |t| t == "Succeeded");
    b.find("#summary[data-running=false]");
    assert_eq!(b.text("#progress-text"), "100% 3/3");
    let log = b.text("#log-by-server");
    for n in 1..=3 {
        assert!(log.contains(&format!("done on web{n}")), "web{n} in {log}");
    }
    assert!(b.text("#started-by").starts_with("olga"));
    let servers = b.text("#servers");
    assert_eq!(servers.matches("succeeded").count(), 3, "{servers}");
    assert!(servers.contains("fichier_result_log.txt"), "{servers}");
    b.screenshot("execution");

    // The same execution by its id; its archive downloads with the browser's session.
    b.goto(&format!("{}/executions/{id}", s.base));
    assert_eq!(b.text("#status"), "Succeeded");
    let href = b.attr("#archive", "href").expect("an archive link");
    let cookie = b.cookie("__Host-ordo_session").expect("the session cookie");
    let tgz = s.p.path().join("download.tar.gz");
    let out = std::process::Command::new("curl")
        .args(["-sSf", "--cacert"])
        .arg(s.p.path().join("data/pki/ca.pem"))
        .args(["-H", &format!("Cookie: __Host-ordo_session={cookie}"), "-o"])
        .arg(&tgz)
        .arg(format!("{}{href}", s.base))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Each collected file downloads too, from the servers' table.
    let link = b
        .attr("#servers tr[data-server=web2] a[download]", "href")
        .expect("a file link");
    let out = std::process::Command::new("curl")
        .args(["-sSf", "--cacert"])
        .arg(s.p.path().join("data/pki/ca.pem"))
        .args(["-H", &format!("Cookie: __Host-ordo_session={cookie}")])
        .arg(format!("{}{link}", s.base))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("server=web2 env=SOC_RECETTE"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let files = untar_gz(&std::fs::read(&tgz).unwrap());
    for n in 1..=3 {
        let f = files
            .iter()
            .find(|(k, _)| k.contains(&format!("web{n}/")) && k.ends_with("fichier_result_log.txt"))
            .unwrap_or_else(|| panic!("web{n}'s file in {:?}", files.keys()));
        assert!(f.1.contains("env=SOC_RECETTE"), "{}", f.1);
    }

    // A group: its members are listed with links to their own pages; a failed member
    // is run again alone by "Retry from the first failed member".
    b.goto(&format!("{}/jobs/vip/all", s.base));
    b.select("#opt-verdict", "fail");
    b.click("#run-now");
    let group = b.wait_text("#exec-id", 10, |t| t.starts_with('#'))[1..].to_string();
    b.wait_text("#status", 60, |t| t == "Failed");
    b.find("#summary[data-running=false]");
    let members = b.text("#children");
    assert_eq!(members.matches("vip/check").count(), 2, "{members}");
    assert!(
        members.contains("succeeded") && members.contains("failed"),
        "{members}"
    );
    b.screenshot("group");
    b.click("#retry-members");
    b.wait_url(|u| !u.ends_with(&group));
    b.wait_text("#status", 60, |t| t == "Failed");
    b.find("#summary[data-running=false]");
    let members = b.text("#children");
    assert_eq!(
        members.matches("vip/check").count(),
        1,
        "only the failed member: {members}"
    );
    assert_eq!(b.text("#progress-text"), "100% 2/2");
    b.click("#children tbody a[href^='/executions/']");
    b.wait_text("#log-by-server", 20, |t| t.contains("verdict=fail"));

    // Abort from the execution page: the run ends aborted, nothing is left on the servers.
    b.goto(&format!("{}/jobs/vip/slow", s.base));
    b.click("#run-now");
    b.wait_text("#exec-id", 30, |t| t.starts_with('#'));
    let pattern = format!("^sh -c sleep 4501; echo {}$", slow_marker());
    let sleeping = || ordo_tests::processes(LOGIN_USER, &pattern).len();
    ordo_tests::wait_until("the three sleeps", Duration::from_secs(20), || {
        sleeping() == 3
    });
    b.click("#abort");
    b.wait_text("#status", 30, |t| t == "Aborted");
    ordo_tests::wait_until("no sleep left", Duration::from_secs(15), || sleeping() == 0);

    // The history lists it; logout ends the session on the server.
    b.goto(&format!("{}/executions?job=vip/collect", s.base));
    assert!(b.text("table.executions").contains(&id));
    b.click("#logout");
    b.wait_url(|u| u.contains("/login"));
    b.goto(&format!("{}/executions/{id}", s.base));
    assert!(b.url().contains("/login"), "still logged in: {}", b.url());
    let old = s
        .api
        .header(&format!("Cookie: __Host-ordo_session={cookie}"));
    assert_eq!(old.get("/api/v1/me").status, 401);
}

#[test]
fn a_viewer_cannot_run_and_forged_posts_are_refused() {
    let s = setup();
    let b = Browser::start("console-viewer", 390, 844);
    let mut seen = HashSet::new();
    log_in(&b, &s, "vic", &mut seen);

    // Her alerts: a rule with a delay and one more recipient; a bad address is refused
    // by name and changes nothing.
    b.click("nav a[href='/alerts']");
    b.wait_text("h1", 10, |t| t == "Alerts of vic");
    assert!(b.text("#recipients").contains("the account's own address"));
    b.click("input[name='rule|vip|job|-']");
    b.fill("input[name='delay|vip|job|-']", "2");
    b.fill("#mails_to_add", "vic.ops@example.com");
    b.click("#save");
    b.wait_text("#saved", 10, |t| t == "Saved.");
    assert!(b.text("#recipients").contains("vic.ops@example.com"));
    assert_eq!(
        b.prop("input[name='rule|vip|job|-']", "checked").as_deref(),
        Some("true")
    );
    assert_eq!(
        b.prop("input[name='delay|vip|job|-']", "value").as_deref(),
        Some("2")
    );
    b.fill("#mails_to_add", "not-an-address");
    b.click("#save");
    let errors = b.wait_text("#errors", 10, |t| !t.is_empty());
    assert!(
        errors.contains("mails_to_add") && errors.contains("not a mail address"),
        "{errors}"
    );
    assert_eq!(
        b.prop("#mails_to_add", "value").as_deref(),
        Some("not-an-address")
    );
    b.screenshot("alerts");

    b.goto(&format!("{}/jobs/vip/collect", s.base));
    assert!(!b.exists("#run-now"), "a viewer sees a run button");
    assert!(b.text("#read-only").contains("not run it"));
    b.screenshot("job-read-only");

    let cookie = b.cookie("__Host-ordo_session").expect("session");
    let as_vic = s
        .api
        .header(&format!("Cookie: __Host-ordo_session={cookie}"));
    let form = form_post;
    // The right CSRF token, but a viewer: refused.
    let csrf = b
        .attr("input[name=csrf]", "value")
        .expect("the logout form's token");
    let status = form(
        &as_vic,
        "/jobs/vip/collect",
        &format!("csrf={csrf}&opt.delai=5"),
    );
    assert_eq!(status, 403);
    // No token, or a token from elsewhere: refused before anything is looked at.
    assert_eq!(form(&as_vic, "/logout", ""), 403);
    assert_eq!(form(&as_vic, "/logout", "csrf=0123456789"), 403);
    // From another site: refused by the Origin check.
    let cross = as_vic.header("Origin: https://evil.example");
    assert_eq!(form(&cross, "/logout", &format!("csrf={csrf}")), 403);
    // Still logged in: none of these did anything.
    b.goto(&format!("{}/executions", s.base));
    assert!(b.text("#who").starts_with("vic"));

    // Without a session every page but the login's sends to the login page.
    let anon = s.api.clone();
    for (method, path, public) in ordo_web::console::ROUTES {
        if *public {
            continue;
        }
        let path = path
            .replace("{*name}", "vip/collect")
            .replace("{id}", "x")
            .replace("{index}", "0")
            .replace("{name}", "olga");
        let r = anon.call(
            &method.to_uppercase(),
            &path,
            if *method == "post" { Some("") } else { None },
        );
        assert_eq!(r.status, 303, "{method} {path}: {}", r.text);
        assert!(
            r.header("location")
                .is_some_and(|l| l.starts_with("/login")),
            "{method} {path}"
        );
    }
    // An administrator's Keys page, on the same fleet.
    an_admin_manages_encryption_keys_in_the_console(&s, &mut seen);
}

/// What the slow job's processes carry on their command line, this test process's own
/// (a run left over by an earlier, failed test does not count).
fn slow_marker() -> String {
    format!("ordo-console-abort-{}", std::process::id())
}

/// A urlencoded form POST with curl; the status.
fn form_post(api: &Api, path: &str, body: &str) -> u16 {
    api.call_raw("POST", path, body, "application/x-www-form-urlencoded")
        .status
}

/// An administrator's Keys page: a certificate pasted in becomes a personal key, is made a
/// backup key, and is deleted; a bad certificate is refused by name.
fn an_admin_manages_encryption_keys_in_the_console(s: &Setup, seen: &mut HashSet<Vec<u8>>) {
    s.p.add_user("ada", "admin", &[]);
    let dir = s.p.path();
    let o = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg("openssl req -x509 -newkey rsa:2048 -nodes -keyout k.key -out k.pem -days 365 -subj /CN=Alice 2>/dev/null")
        .current_dir(dir)
        .status()
        .unwrap();
    assert!(o.success());
    let pem = std::fs::read_to_string(dir.join("k.pem")).unwrap();
    let b = Browser::start("console-keys", 1280, 900);
    log_in(&b, s, "ada", seen);
    b.click("nav a[href='/admin/keys']");
    b.wait_text("h1", 10, |t| t == "Encryption keys");
    b.fill("#kname", "alice");
    b.fill(
        "#kcert",
        "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----",
    );
    b.click("#add-key");
    let err = b.wait_text("#error", 10, |t| !t.is_empty());
    assert!(err.contains("key `alice`: not a PEM certificate"), "{err}");
    b.fill("#kname", "alice");
    b.fill("#kcert", &pem);
    b.click("#add-key");
    let personal = b.wait_text("#personal", 10, |t| t.contains("alice"));
    assert!(
        personal.contains("Alice") && personal.contains("RSA 2048") && personal.contains("GMT"),
        "{personal}"
    );
    b.click("#personal tr[data-key=alice] .make-backup");
    let backup = b.wait_text("#backup", 10, |t| t.contains("alice"));
    assert!(backup.contains("every encryption"), "{backup}");
    b.screenshot("keys");
    b.click("#backup tr[data-key=alice] button.danger");
    b.wait_text("#backup", 10, |t| !t.contains("alice"));
    // The transfers page: each file with its status, linked to its execution, whose page
    // has the scenario's log.
    let w = ordo_tests::temp_dir("console-xfer");
    let [src, bak, drop] = ["in", "bak", "drop"].map(|d| {
        let p = w.path().join(d);
        std::fs::create_dir_all(&p).unwrap();
        p
    });
    std::fs::write(src.join("MANDAT-42.xml"), "<mandat/>").unwrap();
    s.p.write(
        "profiles/tresor.yaml",
        &format!("folder: {{ path: {} }}\n", drop.display()),
    );
    s.p.write(
        "jobs/vip/mandats.yaml",
        &format!(
            "kind: transfer\ntransfer: {{ profile: tresor, source: {}, backup: {}, watch: false }}\n",
            src.display(),
            bak.display()
        ),
    );
    let run =
        s.p.controller(&["run", "vip/mandats", "--no-progress", "--no-mail"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let id = run
        .stdout
        .split_whitespace()
        .skip_while(|w| *w != "execution")
        .nth(1)
        .unwrap_or_else(|| panic!("no execution id: {}", run.stdout))
        .trim_end_matches(':')
        .to_string();
    b.goto(&format!("{}/transfers", s.base));
    let table = b.wait_text("#transfers", 10, |t| t.contains("MANDAT-42.xml"));
    assert!(
        table.contains("vip/mandats") && table.contains("delivered"),
        "{table}"
    );
    b.click(&format!("#transfers a[href='/executions/{id}']"));
    let log = b.wait_text("main", 10, |t| t.contains(&id));
    assert!(log.contains("MANDAT-42.xml"), "{log}");
    b.screenshot("transfer-execution");
    // API tokens: made once, shown once; the same form sent again makes nothing.
    b.goto(&format!("{}/admin/tokens", s.base));
    let once = b
        .attr("form[action='/admin/tokens'] input[name=once]", "value")
        .expect("the form's one-time key");
    b.fill("#label", "nightly-export");
    b.click("#create-token");
    let token = b.wait_text("#new-token", 10, |t| t.starts_with("ordo_"));
    let r = s.api.token(&token).get("/api/v1/me");
    assert_eq!(r.status, 200, "the new token does not work: {}", r.text);
    b.eval(&format!(
        "const f = document.createElement('form'); f.method = 'post'; f.action = '/admin/tokens';
         for (const [k, v] of Object.entries({{csrf: document.querySelector('input[name=csrf]').value, once: '{once}', label: 'nightly-export'}})) {{
           const i = document.createElement('input'); i.type = 'hidden'; i.name = k; i.value = v; f.appendChild(i);
         }}
         document.body.appendChild(f); f.submit(); return true;"
    ));
    let err = b.wait_text("p.error", 10, |t| !t.is_empty());
    assert!(err.contains("This form was already sent"), "{err}");
    let rows = b.text("#tokens");
    assert_eq!(rows.matches("nightly-export").count(), 1, "{rows}");
    assert!(!b.exists("#new-token"));
    // Not for operators.
    let vic = Browser::start("console-keys-operator", 800, 600);
    log_in(&vic, s, "olga", seen);
    vic.goto(&format!("{}/admin/keys", s.base));
    assert!(
        vic.text("main").contains("not an administrator"),
        "{}",
        vic.text("main")
    );
}
