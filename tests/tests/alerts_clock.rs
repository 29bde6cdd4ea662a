//! Alert delivery on a clock the test controls (the functions `serve` calls each few
//! seconds take `now`): who receives an account's alerts (its addresses, its primary,
//! its administrator), delays cancelled by a successful re-run, disabled accounts and test
//! runs, several alerts grouped in one mail, a relay that is down (the alerts wait and go
//! once), transfer events. Real SMTP; the same suite on SQLite and PostgreSQL.

use ordo_controller::alerts::change::{self, Mode};
use ordo_controller::alerts::deliver;
use ordo_controller::auth::users::{self, NewUser};
use ordo_controller::project::ProjectConfig;
use ordo_controller::store::{AlertEventRow, Store, TransferRow};
use ordo_tests::postgres::Postgres;
use ordo_tests::project::{PASSWORD, Project};
use ordo_tests::smtp::{ReceivedMail, SmtpServer};
use serde_json::json;

const T0: i64 = 1_800_000_000_000;
const DAY: i64 = 86_400_000;

fn to_and_subject(m: &ReceivedMail) -> (String, String) {
    let p = m.parsed();
    let to = p
        .to()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .unwrap_or_default()
        .to_string();
    (to, p.subject().unwrap_or_default().to_string())
}

/// The `n` mails not seen yet, as (to, subject), sorted; and no more than `n`.
fn new_mails(smtp: &SmtpServer, seen: &mut Vec<Vec<u8>>, n: usize) -> Vec<(String, String)> {
    if n > 0 {
        smtp.wait_for(seen.len() + n);
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let mut out = Vec::new();
    for m in smtp.messages() {
        if !seen.contains(&m.raw) {
            out.push(to_and_subject(&m));
            seen.push(m.raw);
        }
    }
    out.sort();
    out
}

fn event(id: &str, kind: &str, job: &str, account: &str, at: i64) -> AlertEventRow {
    AlertEventRow {
        id: id.into(),
        kind: kind.into(),
        project: job.rsplit_once('/').map_or("", |(d, _)| d).into(),
        subject: format!("job:{job}"),
        job: job.into(),
        execution_id: id.split(':').next().unwrap_or(id).into(),
        account: account.into(),
        test: false,
        at,
        detail: "exit code 3".into(),
    }
}

async fn user(
    store: &Store,
    name: &str,
    role: &str,
    projects: &[&str],
    primary: Option<&str>,
    manager: Option<&str>,
) {
    let u = NewUser {
        name: name.into(),
        role: role.into(),
        email: format!("{name}@example.com"),
        projects: projects.iter().map(|p| p.to_string()).collect(),
        primary_user: primary.map(str::to_string),
        manager: manager.map(str::to_string),
        tenant: None,
        top: role == "admin" && manager.is_none(),
    };
    users::add(store, u, PASSWORD).await.unwrap();
}

/// Applies a PATCH body to an account's configuration, as the API does for its admin;
/// the field errors when it is refused.
async fn try_patch(
    store: &Store,
    cfg: &ProjectConfig,
    account: &str,
    body: serde_json::Value,
) -> Result<(), Vec<(String, String)>> {
    let u = store.user(account).await.unwrap().unwrap();
    let current = ordo_controller::alerts::load(store, &u, &cfg.serve.alerts.policy)
        .await
        .unwrap();
    let projects = vec!["mandats".to_string(), "vip".to_string()];
    let domains = &cfg.serve.alerts.mail_domains;
    let next = change::apply(&current, &body, Mode::Patch, &projects, None, domains)?;
    store
        .save_alerts(&next.settings, &next.rules)
        .await
        .unwrap();
    Ok(())
}

async fn patch(store: &Store, cfg: &ProjectConfig, account: &str, body: serde_json::Value) {
    try_patch(store, cfg, account, body)
        .await
        .unwrap_or_else(|e| panic!("{account}: {e:?}"));
}

/// The alert desk on a controlled clock: the store, the settings, the relay and the mails
/// already read.
struct Desk<'a> {
    store: Store,
    cfg: &'a ProjectConfig,
    smtp: &'a SmtpServer,
    seen: Vec<Vec<u8>>,
}

fn mail(to: &str, subject: &str) -> (String, String) {
    (to.to_string(), subject.to_string())
}

impl Desk<'_> {
    /// One fact, as a run or a transfer records it.
    async fn fact(&self, id: &str, kind: &str, account: &str, at: i64) {
        self.store
            .record_alert_event(&event(id, kind, "vip/collect", account, at))
            .await
            .unwrap();
    }

    /// One delivery pass at `now`, as `serve` makes every few seconds.
    async fn pass(&self, now: i64) -> deliver::Pass {
        deliver::pass(&self.store, self.cfg, "test", now)
            .await
            .unwrap()
    }

    async fn patch(&self, account: &str, body: serde_json::Value) {
        patch(&self.store, self.cfg, account, body).await;
    }

    /// The `n` mails not read yet, as (to, subject), sorted.
    fn mails(&mut self, n: usize) -> Vec<(String, String)> {
        new_mails(self.smtp, &mut self.seen, n)
    }
}

/// Ada (top) and adam (managed by her) administer; alice (operator, vip and mandats,
/// managed by adam) follows her secondary bob; carol only reads vip. Alice is alerted of a
/// vip failure after 2 days, of every vip start, and of unacknowledged mandats transfers;
/// bob of vip failures at once.
async fn accounts_and_rules(d: &Desk<'_>) {
    let store = &d.store;
    user(store, "ada", "admin", &[], None, None).await;
    user(store, "adam", "admin", &[], None, Some("ada")).await;
    user(
        store,
        "alice",
        "operator",
        &["vip", "mandats"],
        None,
        Some("adam"),
    )
    .await;
    user(store, "bob", "operator", &["vip"], Some("alice"), None).await;
    user(store, "carol", "viewer", &["vip"], None, None).await;
    d.patch(
        "alice",
        json!({
            "secondary_alerts": true, "mails": ["alice.ops@example.com"],
            "projects": [
                {"project": "vip", "rules": [
                    {"type": "job", "positive": false, "active": true, "delay": 2},
                    {"type": "job_start", "positive": true, "active": true, "delay": 0}]},
                {"project": "mandats", "rules": [
                    {"type": "ack", "positive": false, "active": true, "delay": 0}]}]
        }),
    )
    .await;
    d.patch(
        "bob",
        json!({"projects": [{"project": "vip", "rules": [
        {"type": "job", "positive": false, "active": true, "delay": 0}]}]}),
    )
    .await;
}

/// A failure, then a successful re-run within the 2 days: no alert.
async fn a_failure_fixed_within_the_delay_alerts_nobody(d: &mut Desk<'_>, t: i64) {
    d.fact("e1:job_failure", "job_failure", "alice", t).await;
    let p = d.pass(t).await;
    assert_eq!((p.queued, p.sent), (1, 0), "due in 2 days: {p:?}");
    d.fact("e2:job_success", "job_success", "alice", t + DAY)
        .await;
    let p = d.pass(t + 2 * DAY + 1).await;
    assert_eq!((p.sent, p.cancelled), (0, 1), "{p:?}");
    assert!(d.mails(0).is_empty());
}

/// A failure re-run successfully only after the delay: the alert goes, to alice's address
/// only (her administrator does not get it without send_admin).
async fn a_failure_fixed_too_late_alerts_its_owner(d: &mut Desk<'_>, t: i64) {
    d.fact("e3:job_failure", "job_failure", "alice", t).await;
    d.pass(t).await;
    let p = d.pass(t + 2 * DAY).await;
    assert_eq!(p.sent, 1, "{p:?}");
    d.fact("e4:job_success", "job_success", "alice", t + 3 * DAY)
        .await;
    assert_eq!(
        d.mails(1),
        [mail("alice.ops@example.com", "[ordo] vip/collect failed")]
    );
}

/// With send_admin, her administrator (adam, who manages her) receives them too.
async fn send_admin_copies_the_administrator(d: &mut Desk<'_>, t: i64) {
    d.patch("alice", json!({"send_admin": true})).await;
    d.fact("e5:job_start", "job_start", "alice", t).await;
    d.pass(t).await;
    assert_eq!(
        d.mails(2),
        [
            mail("adam@example.com", "[ordo] vip/collect started"),
            mail("alice.ops@example.com", "[ordo] vip/collect started"),
        ]
    );
}

/// A secondary's alert reaches its primary too (alice follows her secondaries).
async fn a_secondarys_alert_reaches_its_primary(d: &mut Desk<'_>, t: i64) {
    d.fact("e6:job_failure", "job_failure", "bob", t).await;
    d.pass(t).await;
    assert_eq!(
        d.mails(2),
        [
            mail("alice.ops@example.com", "[ordo] vip/collect failed"),
            mail("bob@example.com", "[ordo] vip/collect failed"),
        ]
    );
}

/// An account with alerts off gets nothing; nor do test runs without send_test.
async fn alerts_off_and_test_runs_send_nothing(d: &mut Desk<'_>, t: i64) {
    d.patch("bob", json!({"active": false})).await;
    d.fact("e7:job_failure", "job_failure", "bob", t).await;
    let mut test_run = event("e8:job_start", "job_start", "vip/collect", "alice", t);
    test_run.test = true;
    d.store.record_alert_event(&test_run).await.unwrap();
    let p = d.pass(t).await;
    assert_eq!((p.queued, p.sent), (0, 0), "{p:?}");
    d.patch("alice", json!({"send_admin": false})).await;
}

/// Three at once: one mail.
async fn alerts_at_once_go_in_one_mail(d: &mut Desk<'_>, t: i64) {
    for i in 0..3 {
        d.fact(&format!("g{i}:job_start"), "job_start", "alice", t)
            .await;
    }
    let p = d.pass(t).await;
    assert_eq!(p.sent, 3, "{p:?}");
    assert_eq!(
        d.mails(1),
        [mail("alice.ops@example.com", "[ordo] 3 alerts")]
    );
}

/// A transfer not acknowledged in time, in a scenario no account started.
async fn an_unacknowledged_transfer_alerts_its_project(d: &mut Desk<'_>, t: i64) {
    let row = TransferRow {
        id: "tr1".into(),
        scenario: "mandats/send".into(),
        direction: "send".into(),
        execution_id: "x1".into(),
        file_name: "M0001.xml".into(),
        status: "unacknowledged".into(),
        created_at: t,
        updated_at: t + 1,
        ..TransferRow::default()
    };
    d.store.save_transfer(&row).await.unwrap();
    d.store.save_transfer(&row).await.unwrap();
    d.pass(t + 1).await;
    assert_eq!(
        d.mails(1),
        [mail(
            "alice.ops@example.com",
            "[ordo] mandats/send: M0001.xml was not acknowledged in time"
        )]
    );
}

/// A webhook receives the same alerts as JSON, next to the mail; one to a private address
/// the administrator did not allow is refused, with nothing sent there.
async fn webhooks_get_json_and_only_where_allowed(d: &mut Desk<'_>, t: i64) {
    let hook = ordo_tests::webhook::WebhookServer::start();
    d.patch("alice", json!({"webhook": hook.url("/alerts")}))
        .await;
    d.fact("w1:job_start", "job_start", "alice", t).await;
    let p = d.pass(t).await;
    assert_eq!(p.sent, 2, "mail and webhook: {p:?}");
    d.mails(1);
    let got = hook.received();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["path"], "/alerts");
    let body = &got[0]["body"];
    assert_eq!(body["alerts"][0]["event"], "job_start", "{body}");
    assert_eq!(body["alerts"][0]["execution"], "w1");
    assert_eq!(body["alerts"][0]["account"], "alice");

    d.patch("alice", json!({"webhook": "http://10.255.255.1/hook"}))
        .await;
    d.fact("w2:job_start", "job_start", "alice", t + 1).await;
    let p = d.pass(t + 1).await;
    assert_eq!(
        (p.sent, p.failed),
        (1, 1),
        "the mail goes, the webhook does not: {p:?}"
    );
    d.mails(1);
    let q = d.store.alert_outbox(Some("alice"), 100).await.unwrap();
    let refused = q
        .iter()
        .find(|o| o.address.starts_with("webhook:http://10."))
        .unwrap();
    assert!(
        refused
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("not a public address"),
        "{refused:?}"
    );
    d.patch("alice", json!({"webhook": ""})).await;
}

/// A run nobody started alerts the primary accounts that may read its project, not a
/// secondary (which sees only its own runs); her alerts switched off before the delay
/// ends, the queued alert is dropped.
async fn a_run_nobody_started_alerts_the_primaries(d: &mut Desk<'_>, t: i64) {
    d.patch("bob", json!({"active": true})).await;
    d.fact("u1:job_failure", "job_failure", "", t).await;
    d.pass(t).await;
    let q: Vec<String> = d
        .store
        .alert_outbox(None, 500)
        .await
        .unwrap()
        .into_iter()
        .filter(|o| o.event_id == "u1:job_failure")
        .map(|o| o.account)
        .collect();
    assert_eq!(q, ["alice"], "{q:?}");
    d.patch("alice", json!({"active": false})).await;
    let p = d.pass(t + 2 * DAY).await;
    assert_eq!((p.sent, p.cancelled), (0, 1), "{p:?}");
    d.patch("alice", json!({"active": true})).await;
}

/// The relay is down: the alert waits, is offered again later, and goes once.
async fn a_relay_down_delays_the_alert_which_goes_once(d: &Desk<'_>, t: i64, down_port: u16) {
    let mut down = d.cfg.clone();
    if let Some(s) = down.mail.smtp.as_mut() {
        s.port = Some(down_port);
    }
    d.fact("e9:job_start", "job_start", "alice", t).await;
    let pass = |now| deliver::pass(&d.store, &down, "test", now);
    let p = pass(t).await.unwrap();
    assert_eq!((p.sent, p.failed), (0, 1), "{p:?}");
    let p = pass(t + 1000).await.unwrap();
    assert_eq!(
        (p.sent, p.failed),
        (0, 0),
        "not offered again before its wait: {p:?}"
    );
    let relay = SmtpServer::start_on(down_port);
    let p = pass(t + 60_000).await.unwrap();
    assert_eq!(p.sent, 1, "{p:?}");
    let p = pass(t + 120_000).await.unwrap();
    assert_eq!(p, deliver::Pass::default(), "sent once");
    let late = relay.wait_for(1);
    assert_eq!(late.len(), 1);
    assert_eq!(to_and_subject(&late[0]).1, "[ordo] vip/collect started");
    let queue = d.store.alert_outbox(Some("alice"), 100).await.unwrap();
    let e9 = queue.iter().find(|o| o.event_id == "e9:job_start").unwrap();
    assert_eq!((e9.state.as_str(), e9.attempts), ("sent", 2));
}

async fn suite(url: &str, cfg: &ProjectConfig, smtp: &SmtpServer, down_port: u16) {
    let mut d = Desk {
        store: Store::open(url).await.unwrap(),
        cfg,
        smtp,
        seen: Vec::new(),
    };
    accounts_and_rules(&d).await;
    let (t1, t2) = (T0 + 10 * DAY, T0 + 20 * DAY);
    let t3 = t2 + DAY;
    a_failure_fixed_within_the_delay_alerts_nobody(&mut d, T0).await;
    a_failure_fixed_too_late_alerts_its_owner(&mut d, t1).await;
    send_admin_copies_the_administrator(&mut d, t2).await;
    a_secondarys_alert_reaches_its_primary(&mut d, t2 + 1).await;
    alerts_off_and_test_runs_send_nothing(&mut d, t2 + 2).await;
    alerts_at_once_go_in_one_mail(&mut d, t3).await;
    an_unacknowledged_transfer_alerts_its_project(&mut d, t3).await;
    webhooks_get_json_and_only_where_allowed(&mut d, t3 + 2).await;
    a_run_nobody_started_alerts_the_primaries(&mut d, t3 + 5 * DAY).await;
    a_relay_down_delays_the_alert_which_goes_once(&d, t3 + DAY, down_port).await;
    d.store.close().await;
}

fn config(p: &Project, smtp: &SmtpServer) -> ProjectConfig {
    p.write(
        "ordo.yaml",
        &format!(
            "mail:\n  from: ordo@example.com\n  smtp: {{ host: 127.0.0.1, port: {}, tls: none }}\nserve:\n  alerts: {{ webhook_hosts: [127.0.0.1] }}\n",
            smtp.port
        ),
    );
    let cfg = ProjectConfig::load(p.path()).unwrap();
    std::fs::create_dir_all(&cfg.data_dir).unwrap();
    cfg
}

/// `serve: alerts: mail_domains`: an address outside them is refused when set, and an
/// account's own address outside them gets no alert.
#[test]
fn alerts_go_only_to_the_allowed_mail_domains() {
    let smtp = SmtpServer::start();
    let p = Project::new();
    p.write(
        "ordo.yaml",
        &format!(
            "mail:\n  from: ordo@example.com\n  smtp: {{ host: 127.0.0.1, port: {}, tls: none }}\nserve:\n  alerts: {{ mail_domains: [example.com] }}\n",
            smtp.port
        ),
    );
    let cfg = ProjectConfig::load(p.path()).unwrap();
    std::fs::create_dir_all(&cfg.data_dir).unwrap();
    let url = ordo_controller::project::database_url(&cfg);
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = Store::open(&url).await.unwrap();
        user(&store, "erin", "operator", &["vip"], None, None).await;
        let rule = json!([{"project": "vip", "rules": [
            {"type": "job", "positive": false, "active": true, "delay": 0}]}]);
        let e = try_patch(
            &store,
            &cfg,
            "erin",
            json!({"mails_to_add": ["x@evil.test"]}),
        )
        .await
        .unwrap_err();
        assert_eq!(e[0].0, "mails_to_add", "{e:?}");
        assert!(
            e[0].1
                .contains("alerts go only to addresses of example.com"),
            "{e:?}"
        );
        patch(
            &store,
            &cfg,
            "erin",
            json!({"mails": ["ops@sub.example.com"], "projects": rule}),
        )
        .await;
        // Pat's own address is outside the domains: no alert for it.
        let pat = NewUser {
            name: "pat".into(),
            role: "operator".into(),
            email: "pat@partner.test".into(),
            projects: vec!["vip".into()],
            ..Default::default()
        };
        users::add(&store, pat, PASSWORD).await.unwrap();
        patch(&store, &cfg, "pat", json!({"projects": rule})).await;
        for who in ["erin", "pat"] {
            store
                .record_alert_event(&event(
                    &format!("{who}1:job_failure"),
                    "job_failure",
                    "vip/collect",
                    who,
                    T0,
                ))
                .await
                .unwrap();
        }
        let p = deliver::pass(&store, &cfg, "test", T0).await.unwrap();
        assert_eq!((p.queued, p.sent), (1, 1), "{p:?}");
        let mut seen = Vec::new();
        let got = new_mails(&smtp, &mut seen, 1);
        assert_eq!(got[0].0, "ops@sub.example.com", "{got:?}");
    });
}

#[test]
fn alerts_follow_the_clock_on_sqlite() {
    let smtp = SmtpServer::start();
    let p = Project::new();
    let cfg = config(&p, &smtp);
    let url = ordo_controller::project::database_url(&cfg);
    let down = ordo_tests::free_port();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(suite(&url, &cfg, &smtp, down));
}

#[test]
fn alerts_follow_the_clock_on_postgresql() {
    let pg = Postgres::start();
    let smtp = SmtpServer::start();
    let p = Project::new();
    let cfg = config(&p, &smtp);
    let down = ordo_tests::free_port();
    tokio::runtime::Runtime::new().unwrap().block_on(suite(
        &pg.database("alerts"),
        &cfg,
        &smtp,
        down,
    ));
}
