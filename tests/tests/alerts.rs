//! The alert configuration through `serve`'s API (`/api/v1/alerts/{account}`): each wrong
//! field named, recipients replaced, added and removed within their limits, fields the
//! administrator hid or locked, who may read whose, the configuration kept across a
//! restart; and a failed run that an account's rule alerts on, mailed by `serve` to a real
//! SMTP server. On SQLite and PostgreSQL.

use std::time::Duration;

use ordo_tests::api::{Api, Reply};
use ordo_tests::postgres::Postgres;
use ordo_tests::project::{Project, Serve};
use ordo_tests::smtp::SmtpServer;
use ordo_tests::{free_port, wait_for_port};
use serde_json::json;

fn field_errors(r: &Reply) -> Vec<(String, String)> {
    assert_eq!(r.status, 400, "{}", r.text);
    r.json["error"]["errors"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    (
                        e["field"].as_str().unwrap_or_default().to_string(),
                        e["message"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_else(|| {
            vec![(
                r.json["error"]["field"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                r.json["error"]["message"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )]
        })
}

fn has_field(r: &Reply, field: &str, text: &str) -> bool {
    field_errors(r)
        .iter()
        .any(|(f, m)| f == field && m.contains(text))
}

/// A project with a failing vip job, `serve` on plain HTTP, and three callers: the
/// administrator, alice and mallory (operators of vip). Alerts: send_admin hidden from
/// the accounts, webhook locked, team@example.com pre-filled, test runs not alerted.
struct Desk {
    p: Project,
    smtp: SmtpServer,
    listen: String,
    port: u16,
    admin: Api,
    alice: Api,
    mallory: Api,
}

impl Desk {
    /// Alice changes her own configuration.
    fn patch(&self, body: serde_json::Value) -> Reply {
        self.alice
            .call("PATCH", "/api/v1/alerts/me", Some(&body.to_string()))
    }

    fn refused(&self, body: serde_json::Value, field: &str, text: &str) {
        let r = self.patch(body);
        assert!(has_field(&r, field, text), "{field}: {}", r.text);
    }
}

fn desk(database: Option<&str>) -> (Desk, Serve) {
    let smtp = SmtpServer::start();
    let p = Project::new();
    let db = database.map_or(String::new(), |u| format!("database: {u}\n"));
    p.write(
        "ordo.yaml",
        &format!(
            "{db}mail:\n  from: ordo@example.com\n  smtp: {{ host: 127.0.0.1, port: {}, tls: none }}\n\
             serve:\n  alerts:\n    every: 1s\n    fields: {{ send_admin: hidden, webhook: locked }}\n    defaults: {{ send_test: false, mails: [team@example.com] }}\n",
            smtp.port
        ),
    );
    p.write("inventory.yaml", "servers:\n  vip: { transport: local }\n");
    p.write(
        "jobs/vip/nightly.yaml",
        "targets: all\nsteps: [{ command: 'echo working; exit 3' }]\n",
    );
    p.write(
        "jobs/ops/other.yaml",
        "targets: all\nsteps: [{ command: 'true' }]\n",
    );
    let admin = p.admin_token();
    p.add_user("alice", "operator", &["--projects", "vip"]);
    p.add_user("mallory", "operator", &["--projects", "vip"]);
    let port = free_port();
    let listen = format!("http://127.0.0.1:{port}");
    let serve = p.serve(&[], &["--listen", &listen]);
    wait_for_port(port, "serve");
    let d = Desk {
        admin: Api::http(port).token(&admin),
        alice: Api::http(port).token(&p.token("alice")),
        mallory: Api::http(port).token(&p.token("mallory")),
        p,
        smtp,
        listen,
        port,
    };
    (d, serve)
}

/// Her own, as she may see it: the hidden field is left out, the locked one shown.
/// Another account's: not found, as if it did not exist.
fn she_reads_her_own_and_nobody_reads_hers(d: &Desk) -> serde_json::Value {
    let me = d.alice.get("/api/v1/alerts/me");
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(me.json["account"], "alice");
    assert_eq!(me.json["active"], true);
    assert!(me.json.get("send_admin").is_none(), "{}", me.json);
    assert_eq!(me.json["fields"]["send_admin"], "hidden");
    assert_eq!(me.json["fields"]["webhook"], "locked");
    assert_eq!(
        me.json["projects"],
        json!([{"project": "vip", "rules": []}])
    );
    assert_eq!(me.json["mails"], json!(["team@example.com"]), "pre-filled");
    assert_eq!(d.mallory.get("/api/v1/alerts/alice").status, 404);
    let r = d.mallory.call(
        "PATCH",
        "/api/v1/alerts/alice",
        Some(r#"{"active": false}"#),
    );
    assert_eq!(r.status, 404);
    me.json
}

/// Each wrong field, named; none of them changes anything.
fn each_wrong_field_is_named(d: &Desk, before: &serde_json::Value) {
    d.refused(
        json!({"mails_to_add": ["a@example.com", "b@example.com", "c@example.com", "d@example.com"]}),
        "mails_to_add",
        "at most 3 addresses at a time",
    );
    d.refused(
        json!({"mails_to_add": "a@example.com; not an address"}),
        "mails_to_add",
        "`not an address`: not a mail address",
    );
    let long = format!("{}@example.com", "x".repeat(240));
    d.refused(json!({"mails": [long]}), "mails", "at most 250 characters");
    d.refused(json!({"active": "yes"}), "active", "a boolean");
    d.refused(
        json!({"send_admin": true}),
        "send_admin",
        "set by your administrator",
    );
    d.refused(
        json!({"webhook": "https://hooks.example.com/x"}),
        "webhook",
        "set by your administrator",
    );
    let rule = |r: serde_json::Value| json!({"projects": [{"project": "vip", "rules": [r]}]});
    d.refused(
        rule(json!({"type": "jobs", "positive": false, "active": true, "delay": 0})),
        "projects[0].rules[0].type",
        "`jobs` is not one of: job, job_start",
    );
    d.refused(
        rule(json!({"type": "job", "positive": false, "active": true, "delay": 100})),
        "projects[0].rules[0].delay",
        "from 0 to 99",
    );
    d.refused(
        rule(json!({"type": "job_start", "positive": false, "active": true, "delay": 0})),
        "projects[0].rules[0].positive",
        "`job_start` has no negative event",
    );
    d.refused(
        json!({"projects": [{"project": "ops", "rules": []}]}),
        "projects[0].project",
        "`ops` is not one of the account's projects",
    );
    let r = d.patch(rule(json!({"type": "job", "active": true})));
    assert!(
        has_field(&r, "projects[0].rules[0].positive", "required"),
        "{}",
        r.text
    );
    assert!(
        has_field(&r, "projects[0].rules[0].delay", "required"),
        "{}",
        r.text
    );
    let r = d.alice.call(
        "PUT",
        "/api/v1/alerts/me",
        Some(r#"{"active": true, "mails": []}"#),
    );
    assert!(has_field(&r, "send_test", "required"), "{}", r.text);
    assert!(has_field(&r, "projects", "required"), "{}", r.text);
    assert_eq!(&d.alice.get("/api/v1/alerts/me").json, before);
}

/// Recipients replaced, added, removed; only the active rules are shown.
fn she_replaces_adds_and_removes_recipients(d: &Desk) {
    let r = d.patch(json!({"mails": ["one@example.com", "two@example.com"]}));
    assert_eq!(r.status, 200, "{}", r.text);
    let r = d.patch(
        json!({"mails_to_add": "three@example.com, four@example.com", "mails_to_delete": ["one@example.com"]}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json["mails"],
        json!(["two@example.com", "three@example.com", "four@example.com"])
    );
    d.refused(
        json!({"mails_to_delete": ["nobody@example.com"]}),
        "mails_to_delete",
        "is not a recipient",
    );
    let r = d.patch(
        json!({"mails_to_delete": ["three@example.com", "four@example.com"],
        "projects": [{"project": "vip", "rules": [
            {"type": "job", "positive": false, "active": true, "delay": 0},
            {"type": "job_start", "positive": true, "active": false, "delay": 0}]}]}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json["projects"],
        json!([{"project": "vip", "rules": [{"type": "job", "positive": false, "active": true, "delay": 0}]}])
    );
}

/// Her administrator may change what she may not, and sees every field.
fn her_administrator_sets_the_hidden_field(d: &Desk) {
    let r = d.admin.call(
        "PATCH",
        "/api/v1/alerts/alice",
        Some(r#"{"send_admin": true}"#),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["send_admin"], true);
    assert!(r.json.get("fields").is_none());
}

/// Her run fails: serve mails the alert to her recipient and, with send_admin, to her
/// administrator (the top one: nobody else manages her). Mallory's runs do not alert her.
fn her_failed_run_is_mailed_and_mallorys_is_not(d: &Desk) {
    let run = d.alice.post("/api/v1/jobs/vip/nightly", "{}");
    assert_eq!(run.status, 202, "{}", run.text);
    let id = run.json["execution"].as_str().unwrap().to_string();
    let mails = d.smtp.wait_for(2);
    let mut to: Vec<String> = Vec::new();
    for mail in &mails {
        let m = mail.parsed();
        assert_eq!(m.subject(), Some("[ordo] vip/nightly failed"));
        let body = m.body_text(0).unwrap_or_default().to_string();
        assert!(
            body.contains(&id) && body.contains("started by alice"),
            "{body}"
        );
        let addr = m.to().and_then(|a| a.first()).and_then(|a| a.address());
        to.push(addr.unwrap_or_default().to_string());
    }
    to.sort();
    assert_eq!(to, ["admin@example.com", "two@example.com"]);
    ordo_tests::wait_until(
        "the alert recorded as sent",
        Duration::from_secs(10),
        || {
            let q = d.alice.get("/api/v1/alerts/me/queue");
            q.json["alerts"][0]["state"] == "sent"
        },
    );
    let r = d.mallory.post("/api/v1/jobs/vip/nightly", "{}");
    assert_eq!(r.status, 202);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(d.smtp.messages().len(), 2, "only alice's run alerted");
}

/// The configuration outlives the process; the audit log says who changed it.
fn the_configuration_outlives_a_restart(d: &Desk, mut serve: Serve) -> Serve {
    let before = d.admin.get("/api/v1/alerts/alice").json;
    serve.stop();
    let again = d.p.serve(&[], &["--listen", &d.listen]);
    wait_for_port(d.port, "serve again");
    let after = d.admin.get("/api/v1/alerts/alice").json;
    assert_eq!(before, after);
    assert_eq!(after["mails"], json!(["two@example.com"]));
    let audit = d.admin.get("/api/v1/audit?action=alerts");
    assert!(audit.text.contains("alice"), "{}", audit.text);
    again
}

/// The same from the command line, with the same checks.
fn the_command_line_makes_the_same_checks(d: &Desk) {
    let set = d.p.controller(&[
        "alerts",
        "set",
        "alice",
        "--add-mails",
        "x@example.com,bad",
        "--rule",
        "vip:nope:+",
    ]);
    assert_eq!(set.code, 2, "{}{}", set.stdout, set.stderr);
    assert!(
        set.stderr
            .contains("mails_to_add: `bad`: not a mail address"),
        "{}",
        set.stderr
    );
    assert!(
        set.stderr
            .contains("projects[0].rules[0].type: `nope` is not one of"),
        "{}",
        set.stderr
    );
    d.p.controller(&[
        "alerts",
        "set",
        "alice",
        "--rule",
        "vip:job_start:+",
        "--send-test",
        "true",
    ])
    .expect_code(0);
    let show =
        d.p.controller(&["alerts", "show", "alice"])
            .expect_code(0)
            .stdout;
    assert!(show.contains("send_test         true"), "{show}");
    assert!(
        show.lines()
            .any(|l| l.contains("vip") && l.contains("job_start") && l.contains("true")),
        "{show}"
    );
    let queue =
        d.p.controller(&["alerts", "queue", "alice"])
            .expect_code(0)
            .stdout;
    assert!(
        queue.contains("mail:two@example.com") && queue.contains("sent"),
        "{queue}"
    );
}

fn scenario(database: Option<&str>) {
    let (d, serve) = desk(database);
    let me = she_reads_her_own_and_nobody_reads_hers(&d);
    each_wrong_field_is_named(&d, &me);
    she_replaces_adds_and_removes_recipients(&d);
    her_administrator_sets_the_hidden_field(&d);
    her_failed_run_is_mailed_and_mallorys_is_not(&d);
    let _serve = the_configuration_outlives_a_restart(&d, serve);
    the_command_line_makes_the_same_checks(&d);
}

#[test]
fn the_alert_configuration_through_the_api_on_sqlite() {
    scenario(None);
}

#[test]
fn the_alert_configuration_through_the_api_on_postgresql() {
    let pg = Postgres::start();
    scenario(Some(&pg.database("alerts_api")));
}
