//! The login rules on a clock the test controls (every step takes `now`): waits after
//! failed logins, a code's 5 minutes, its 5 tries, "send a new code", the per-address
//! wait; and that the waits outlive the process (they are in the store). The same suite
//! runs on the embedded SQLite and on a real PostgreSQL; codes go to the outbox.

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
    let start = |pw: &'static str, now: i64| {
        let store = store.clone();
        let cfg = cfg.clone();
        async move { login::start(&store, &cfg, "alice", pw, ADDR, now).await }
    };

    // N failures in a row: the N-th makes the next try wait N x 10 s (login_backoff).
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
    // Capped at 30 minutes.
    store.set_login_wait("user:alice", 500, T0).await.unwrap();
    assert!(start("wrong", T0 + 60 * S).await.is_err());
    assert_eq!(wait(start(PASSWORD, T0 + 60 * S).await), 1800);

    // A success after the wait resets the count: the next failure waits 10 s again.
    let t1 = T0 + 60 * S + 1800 * S;
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

    // At most 5 tries; then even the right code is refused.
    let t3 = t2 + 3600 * S;
    let tk = ticket(start(PASSWORD, t3).await);
    let code = last_code(cfg);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for i in 0..5 {
        // Each wrong code is a failed login: tries are spread past their waits.
        let r = login::finish(&store, cfg, &tk, wrong, ADDR, t3 + i * 60 * S).await;
        assert!(matches!(r, Err(AuthError::Unauthenticated(_))), "try {i}");
    }
    let r = login::finish(&store, cfg, &tk, &code, ADDR, t3 + 290 * S).await;
    assert!(r.is_err(), "the right code after 5 wrong tries");

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
    // (alice has failed 7 times since her last login: she waits 70 s first.)
    let r = login::finish(&store, cfg, &tk, &second, ADDR, t4 + 2 * S + 69 * S).await;
    assert!(
        matches!(r, Err(AuthError::Wait { seconds: 1 })),
        "{:?}",
        r.err()
    );
    let r = login::finish(&store, cfg, &tk, &second, ADDR, t4 + 200 * S).await;
    assert!(r.is_ok(), "the new code: {:?}", r.err());

    // Parallel guesses of a code: they take turns, the first wrong one makes the others
    // wait; the code counts at most 5 tries whatever comes at once.
    let t6 = t4 + 7200 * S;
    let tk = ticket(start(PASSWORD, t6).await);
    let tries = futures_tries(&store, cfg, &tk, t6 + S).await;
    assert!(tries <= 1, "{tries} tries counted of 20 at once");
    let t5 = t6 + 3600 * S;

    // One address failing for many accounts waits too, after 5 free failures.
    for i in 0..6 {
        let name = format!("ghost{i}");
        let r = login::start(&store, cfg, &name, "nope", "198.51.100.1", t5).await;
        assert!(matches!(r, Err(AuthError::Unauthenticated(_))), "{name}");
    }
    let r = login::start(&store, cfg, "alice", PASSWORD, "198.51.100.1", t5 + S).await;
    assert_eq!(wait(r), 9);
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
