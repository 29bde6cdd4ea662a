//! The login rules on a clock the test controls (every step takes `now`): waits after
//! failed logins (per account and address, with decay), a code's 5 minutes, its 5
//! tries, "send a new code", a ticket's 15 minutes, the per-address wait, the purge; and
//! that the waits outlive the process (they are in the store). The same suite runs on
//! the embedded SQLite and on a real PostgreSQL; codes go to the outbox.

use ordo_controller::auth::AuthError;
use ordo_controller::auth::login::{self, Started};
use ordo_controller::auth::users::{self, NewUser};
use ordo_controller::project::ProjectConfig;
use ordo_controller::store::Store;
use ordo_tests::postgres::Postgres;
use ordo_tests::project::{PASSWORD, Project};

const T0: i64 = 1_800_000_000_000;
const S: i64 = 1000;
const ADDR: &str = "192.0.2.7";
/// The account's holder, at another address.
const HOLDER: &str = "203.0.113.5";

/// The newest code in the outbox (one `.eml` per mail).
fn last_code(cfg: &ProjectConfig) -> String {
    let mut mails: Vec<_> = std::fs::read_dir(&cfg.mail.outbox)
        .unwrap()
        .flatten()
        .map(|e| (e.metadata().unwrap().modified().unwrap(), e.path()))
        .collect();
    mails.sort();
    let text = std::fs::read_to_string(&mails.last().unwrap().1).unwrap();
    let at = text.find("login code is ").expect("a code") + "login code is ".len();
    text[at..at + 6].to_string()
}

fn wait(r: Result<Started, AuthError>) -> u64 {
    match r {
        Err(AuthError::Wait { seconds }) => seconds,
        Err(e) => panic!("expected a wait, got {e}"),
        Ok(_) => panic!("expected a wait, got a login"),
    }
}

fn ticket(r: Result<Started, AuthError>) -> String {
    match r {
        Ok(Started::Code { ticket, .. }) => ticket,
        Err(e) => panic!("expected a code, got {e}"),
        Ok(Started::Session(_)) => panic!("expected a code, got a session"),
    }
}

async fn suite(url: &str, cfg: &ProjectConfig) {
    let store = Store::open(url).await.unwrap();
    let new = NewUser {
        name: "alice".into(),
        role: "operator".into(),
        email: "alice@example.com".into(),
        projects: vec!["tests".into()],
        ..NewUser::default()
    };
    users::add(&store, new, PASSWORD).await.unwrap();
    let start_from = |pw: &'static str, addr: &'static str, now: i64| {
        let store = store.clone();
        let cfg = cfg.clone();
        async move { login::start(&store, &cfg, "alice", pw, addr, now).await }
    };
    let start = |pw: &'static str, now: i64| start_from(pw, ADDR, now);

    // N failures in a row: the N-th makes the next try from that address wait N x 10 s
    // (login_backoff).
    assert!(matches!(
        start("wrong", T0).await,
        Err(AuthError::Unauthenticated(_))
    ));
    assert_eq!(wait(start(PASSWORD, T0 + S).await), 9);
    assert!(start("wrong", T0 + 10 * S).await.is_err());
    assert_eq!(wait(start(PASSWORD, T0 + 10 * S).await), 20);
    assert!(start("wrong", T0 + 30 * S).await.is_err());
    assert_eq!(wait(start(PASSWORD, T0 + 30 * S).await), 30);
    // The wait is in the database: another process (a restart, the other controller) sees it.
    let other = Store::open(url).await.unwrap();
    let r = login::start(&other, cfg, "alice", PASSWORD, ADDR, T0 + 31 * S).await;
    assert_eq!(wait(r), 29);
    // Regression (security review 2026-12-07): one wrong password from anyone made the
    // right one wait everywhere. The holder, from another address, is not waiting.
    let r = start_from(PASSWORD, HOLDER, T0 + 31 * S).await;
    ticket(r);
    // Capped at 30 minutes.
    let pair = format!("pair:addr:{ADDR}|alice");
    store.set_login_wait(&pair, 500, T0).await.unwrap();
    assert!(start("wrong", T0 + 60 * S).await.is_err());
    assert_eq!(wait(start(PASSWORD, T0 + 60 * S).await), 1800);
    // Failures are forgotten half an hour after the last wait ended (the old counter never
    // forgot: after ~180 failures every typo cost 30 minutes).
    let quiet = T0 + 60 * S + 1800 * S + 1801 * S;
    assert!(start("wrong", quiet).await.is_err());
    assert_eq!(wait(start(PASSWORD, quiet + S).await), 9);

    // A success after the wait resets the count: the next failure waits 10 s again.
    let t1 = quiet + 3600 * S;
    store.set_login_wait(&pair, 3, t1 - S).await.unwrap();
    let tk = ticket(start(PASSWORD, t1).await);
    let code = last_code(cfg);
    assert!(
        login::finish(&store, cfg, &tk, &code, ADDR, t1 + S)
            .await
            .is_ok()
    );
    assert!(start("wrong", t1 + 2 * S).await.is_err());
    assert_eq!(wait(start(PASSWORD, t1 + 3 * S).await), 9);

    // A code is valid 5 minutes.
    let t2 = t1 + 3600 * S;
    let tk = ticket(start(PASSWORD, t2).await);
    let code = last_code(cfg);
    let late = login::finish(&store, cfg, &tk, &code, ADDR, t2 + 300 * S + 1).await;
    assert!(
        matches!(late, Err(AuthError::Unauthenticated(_))),
        "an expired code"
    );

    // At most 5 tries; then even the right code is refused. A wrong code costs no wait
    // (a typo is not a guess): the codes have their own count.
    let t3 = t2 + 3600 * S;
    let tk = ticket(start(PASSWORD, t3).await);
    let code = last_code(cfg);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for i in 0..5 {
        let r = login::finish(&store, cfg, &tk, wrong, ADDR, t3 + i * S).await;
        assert!(matches!(r, Err(AuthError::Unauthenticated(_))), "try {i}");
    }
    let r = login::finish(&store, cfg, &tk, &code, ADDR, t3 + 10 * S).await;
    assert!(
        matches!(r, Err(AuthError::Unauthenticated(_))),
        "the right code after 5 wrong tries"
    );
    // Past 5 wrong codes for the account, each more waits (only someone who passed the
    // password can raise this count).
    let tk = ticket(start(PASSWORD, t3 + 20 * S).await);
    let code = last_code(cfg);
    let r = login::finish(&store, cfg, &tk, wrong, ADDR, t3 + 21 * S).await;
    assert!(matches!(r, Err(AuthError::Unauthenticated(_))));
    let r = login::finish(&store, cfg, &tk, &code, ADDR, t3 + 22 * S).await;
    assert!(
        matches!(r, Err(AuthError::Wait { seconds: 9 })),
        "{:?}",
        r.err()
    );
    let r = login::finish(&store, cfg, &tk, &code, ADDR, t3 + 31 * S).await;
    assert!(r.is_ok(), "the right code after the wait: {:?}", r.err());

    // "Send a new code": the old one stops working, the new one works.
    let t4 = t3 + 3600 * S;
    let tk = ticket(start(PASSWORD, t4).await);
    let first = last_code(cfg);
    std::thread::sleep(std::time::Duration::from_millis(20));
    login::resend(&store, cfg, &tk, ADDR, t4 + S).await.unwrap();
    let second = last_code(cfg);
    if first != second {
        assert!(
            login::finish(&store, cfg, &tk, &first, ADDR, t4 + 2 * S)
                .await
                .is_err()
        );
    }
    let r = login::finish(&store, cfg, &tk, &second, ADDR, t4 + 3 * S).await;
    assert!(r.is_ok(), "the new code: {:?}", r.err());

    // A ticket ends 15 minutes after the password, however many codes are re-sent.
    let t7 = t4 + 3600 * S;
    let tk = ticket(start(PASSWORD, t7).await);
    login::resend(&store, cfg, &tk, ADDR, t7 + 240 * S)
        .await
        .unwrap();
    login::resend(&store, cfg, &tk, ADDR, t7 + 720 * S)
        .await
        .unwrap();
    let code = last_code(cfg);
    let r = login::finish(&store, cfg, &tk, &code, ADDR, t7 + 900 * S + 1).await;
    assert!(
        matches!(r, Err(AuthError::Unauthenticated(_))),
        "a code past its ticket's 15 minutes"
    );
    let r = login::resend(&store, cfg, &tk, ADDR, t7 + 901 * S).await;
    assert!(r.is_err(), "a re-send past the ticket's end");

    // A new password ends the logins in progress: the code mailed before it is worthless.
    let t8 = t7 + 3600 * S;
    let tk = ticket(start(PASSWORD, t8).await);
    let code = last_code(cfg);
    let before = users::get(&store, "alice").await.unwrap();
    let after = ordo_controller::store::UserRow {
        password: users::hash_password("another long password").unwrap(),
        ..before.clone()
    };
    users::save(&store, &before, after).await.unwrap();
    let r = login::finish(&store, cfg, &tk, &code, ADDR, t8 + S).await;
    assert!(r.is_err(), "a code from before the new password");
    users::save(&store, &users::get(&store, "alice").await.unwrap(), before)
        .await
        .unwrap();

    // Parallel guesses of a code: they take turns; the code counts at most 5 tries
    // whatever comes at once.
    let t6 = t8 + 7200 * S;
    let tk = ticket(start(PASSWORD, t6).await);
    let tries = futures_tries(&store, cfg, &tk, t6 + S).await;
    assert!(tries <= 5, "{tries} tries counted of 20 at once");
    let t5 = t6 + 3600 * S;

    // One address failing for many (made-up) accounts waits, after 5 free failures; that
    // slows that address only.
    for i in 0..6 {
        let name = format!("ghost{i}");
        let r = login::start(&store, cfg, &name, "nope", "198.51.100.1", t5).await;
        assert!(matches!(r, Err(AuthError::Unauthenticated(_))), "{name}");
    }
    let r = login::start(&store, cfg, "alice", PASSWORD, "198.51.100.1", t5 + S).await;
    assert_eq!(wait(r), 9);
    ticket(start_from(PASSWORD, HOLDER, t5 + S).await);
    ticket(start(PASSWORD, t5 + S).await);

    // The hourly purge leaves no stale login state behind.
    let purged = store
        .purge_login_state(t5 + 86_400 * S, t5 + 3600 * S)
        .await
        .unwrap();
    assert!(purged > 0);
    let (failures, _) = store.login_wait("addr:198.51.100.1").await.unwrap();
    assert_eq!(failures, 0, "a stale wait is gone");
    store.close().await;
    other.close().await;
}

/// 20 wrong codes at once for `ticket`; how many tries the code counted.
async fn futures_tries(store: &Store, cfg: &ProjectConfig, ticket: &str, now: i64) -> i64 {
    let mut tasks = Vec::new();
    for i in 0..20 {
        let (store, cfg, ticket) = (store.clone(), cfg.clone(), ticket.to_string());
        tasks.push(tokio::spawn(async move {
            let code = format!("{:06}", 999_000 + i);
            login::finish(&store, &cfg, &ticket, &code, ADDR, now)
                .await
                .is_ok()
        }));
    }
    for t in tasks {
        assert!(!t.await.unwrap(), "a wrong code logged in");
    }
    let hash = ordo_controller::auth::secret::sha256_hex(ticket.as_bytes());
    store.login_code(&hash).await.unwrap().unwrap().tries
}

fn config(p: &Project) -> ProjectConfig {
    p.write("ordo.yaml", "serve:\n  auth: { login_backoff: 10s }\n");
    let cfg = ProjectConfig::load(p.path()).unwrap();
    std::fs::create_dir_all(&cfg.mail.outbox).unwrap();
    cfg
}

#[test]
fn login_rules_follow_the_clock_on_sqlite() {
    let p = Project::new();
    let cfg = config(&p);
    let url = ordo_controller::project::database_url(&cfg);
    std::fs::create_dir_all(&cfg.data_dir).unwrap();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(suite(&url, &cfg));
}

#[test]
fn login_rules_follow_the_clock_on_postgresql() {
    let pg = Postgres::start();
    let p = Project::new();
    let cfg = config(&p);
    let url = pg.database("logins");
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(suite(&url, &cfg));
}
