//! The alert configuration through `serve`'s API (`/api/v1/alerts/{account}`): each wrong
//! field named, recipients replaced, added and removed within their limits, fields the
//! administrator hid or locked, who may read whose, the configuration kept across a
//! restart; and a failed run that an account's rule alerts on, mailed by `serve` to a real
//! SMTP server. On SQLite and PostgreSQL.

use std::time::Duration;

use ordo_tests::api::{Api, Reply};
use ordo_tests::postgres::Postgres;
use ordo_tests::project::Project;
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

fn scenario(database: Option<&str>) {
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
    let mut serve = p.serve(&[], &["--listen", &listen]);
    wait_for_port(port, "serve");
    let admin = Api::http(port).token(&admin);
    let alice = Api::http(port).token(&p.token("alice"));
    let mallory = Api::http(port).token(&p.token("mallory"));

    // Her own, as she may see it: the hidden field is left out, the locked one shown.
    let me = alice.get("/api/v1/alerts/me");
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
    // Another account's: not found, as if it did not exist.
    assert_eq!(mallory.get("/api/v1/alerts/alice").status, 404);
    assert_eq!(
        mallory
            .call(
                "PATCH",
                "/api/v1/alerts/alice",
                Some(r#"{"active": false}"#)
            )
            .status,
        404
    );

    // Each wrong field, named.
    let patch =
        |body: serde_json::Value| alice.call("PATCH", "/api/v1/alerts/me", Some(&body.to_string()));
    let r = patch(
        json!({"mails_to_add": ["a@example.com", "b@example.com", "c@example.com", "d@example.com"]}),
    );
    assert!(
        has_field(&r, "mails_to_add", "at most 3 addresses at a time"),
        "{}",
        r.text
    );
    let r = patch(json!({"mails_to_add": "a@example.com; not an address"}));
    assert!(
        has_field(&r, "mails_to_add", "`not an address`: not a mail address"),
        "{}",
        r.text
    );
    let long = format!("{}@example.com", "x".repeat(240));
    let r = patch(json!({"mails": [long]}));
    assert!(
        has_field(&r, "mails", "at most 250 characters"),
        "{}",
        r.text
    );
    let r = patch(json!({"active": "yes"}));
    assert!(has_field(&r, "active", "a boolean"), "{}", r.text);
    let r = patch(json!({"send_admin": true}));
    assert!(
        has_field(&r, "send_admin", "set by your administrator"),
        "{}",
        r.text
    );
    let r = patch(json!({"webhook": "https://hooks.example.com/x"}));
    assert!(
        has_field(&r, "webhook", "set by your administrator"),
        "{}",
        r.text
    );
    let r = patch(
        json!({"projects": [{"project": "vip", "rules": [{"type": "jobs", "positive": false, "active": true, "delay": 0}]}]}),
    );
    assert!(
        has_field(
            &r,
            "projects[0].rules[0].type",
            "`jobs` is not one of: job, job_start"
        ),
        "{}",
        r.text
    );
    let r = patch(
        json!({"projects": [{"project": "vip", "rules": [{"type": "job", "positive": false, "active": true, "delay": 100}]}]}),
    );
    assert!(
        has_field(&r, "projects[0].rules[0].delay", "from 0 to 99"),
        "{}",
        r.text
    );
    let r = patch(
        json!({"projects": [{"project": "vip", "rules": [{"type": "job_start", "positive": false, "active": true, "delay": 0}]}]}),
    );
    assert!(
        has_field(
            &r,
            "projects[0].rules[0].positive",
            "`job_start` has no negative event"
        ),
        "{}",
        r.text
    );
    let r = patch(json!({"projects": [{"project": "ops", "rules": []}]}));
    assert!(
        has_field(
            &r,
            "projects[0].project",
            "`ops` is not one of the account's projects"
        ),
        "{}",
        r.text
    );
    let r = patch(
        json!({"projects": [{"project": "vip", "rules": [{"type": "job", "active": true}]}]}),
    );
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
    let r = alice.call(
        "PUT",
        "/api/v1/alerts/me",
        Some(r#"{"active": true, "mails": []}"#),
    );
    assert!(has_field(&r, "send_test", "required"), "{}", r.text);
    assert!(has_field(&r, "projects", "required"), "{}", r.text);
    // Nothing of those changed anything.
    assert_eq!(alice.get("/api/v1/alerts/me").json, me.json);

    // Replace, add, remove.
    let r = patch(json!({"mails": ["one@example.com", "two@example.com"]}));
    assert_eq!(r.status, 200, "{}", r.text);
    let r = patch(
        json!({"mails_to_add": "three@example.com, four@example.com", "mails_to_delete": ["one@example.com"]}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json["mails"],
        json!(["two@example.com", "three@example.com", "four@example.com"])
    );
    let r = patch(json!({"mails_to_delete": ["nobody@example.com"]}));
    assert!(
        has_field(&r, "mails_to_delete", "is not a recipient"),
        "{}",
        r.text
    );
    let r = patch(
        json!({"mails_to_delete": ["three@example.com", "four@example.com"],
        "projects": [{"project": "vip", "rules": [
            {"type": "job", "positive": false, "active": true, "delay": 0},
            {"type": "job_start", "positive": true, "active": false, "delay": 0}]}]}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    // Only the active rules are shown.
    assert_eq!(
        r.json["projects"],
        json!([{"project": "vip", "rules": [{"type": "job", "positive": false, "active": true, "delay": 0}]}])
    );
    // Her administrator may change what she may not, and sees every field.
    let r = admin.call(
        "PATCH",
        "/api/v1/alerts/alice",
        Some(r#"{"send_admin": true}"#),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["send_admin"], true);
    assert!(r.json.get("fields").is_none());

    // Her run fails: serve mails the alert to her recipient and, with send_admin, to her
    // administrator (the top one: nobody else manages her).
    let run = alice.post("/api/v1/jobs/vip/nightly", "{}");
    assert_eq!(run.status, 202, "{}", run.text);
    let id = run.json["execution"].as_str().unwrap().to_string();
    let mails = smtp.wait_for(2);
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
            let q = alice.get("/api/v1/alerts/me/queue");
            q.json["alerts"][0]["state"] == "sent"
        },
    );
    // Mallory's runs do not alert alice.
    let r = mallory.post("/api/v1/jobs/vip/nightly", "{}");
    assert_eq!(r.status, 202);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(smtp.messages().len(), 2, "only alice's run alerted");

    // The configuration outlives the process; the audit log says who changed it.
    let before = admin.get("/api/v1/alerts/alice").json;
    serve.stop();
    let _again = p.serve(&[], &["--listen", &listen]);
    wait_for_port(port, "serve again");
    let after = admin.get("/api/v1/alerts/alice").json;
    assert_eq!(before, after);
    assert_eq!(after["mails"], json!(["two@example.com"]));
    let audit = admin.get("/api/v1/audit?action=alerts");
    assert!(audit.text.contains("alice"), "{}", audit.text);

    // The same from the command line, with the same checks.
    let set = p.controller(&[
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
    p.controller(&[
        "alerts",
        "set",
        "alice",
        "--rule",
        "vip:job_start:+",
        "--send-test",
        "true",
    ])
    .expect_code(0);
    let show = p
        .controller(&["alerts", "show", "alice"])
        .expect_code(0)
        .stdout;
    assert!(show.contains("send_test         true"), "{show}");
    assert!(
        show.lines()
            .any(|l| l.contains("vip") && l.contains("job_start") && l.contains("true")),
        "{show}"
    );
    let queue = p
        .controller(&["alerts", "queue", "alice"])
        .expect_code(0)
        .stdout;
    assert!(
        queue.contains("mail:two@example.com") && queue.contains("sent"),
        "{queue}"
    );
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
