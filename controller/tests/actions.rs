//! The actions, below the web: each rule once, as the API, the console and the command
//! line meet it. A project on this machine (a local server, SQLite), accounts in a
//! hierarchy, and each action called as one of them: what it may do, the kind of refusal
//! (and its field) when it may not, and the audit row when it did.
//!
//! ada: top administrator; adam: administrator managed by ada; alice: operator of `vip`,
//! managed by adam; carol: viewer of `vip`, managed by adam; olga: operator of `ops`,
//! managed by ada.

use std::sync::Arc;
use std::time::Duration;

use ordo_controller::actions::accounts::{self, AccountChange, NewAccount};
use ordo_controller::actions::keys::KeysCx;
use ordo_controller::actions::runs::{self, StartRun};
use ordo_controller::actions::{self, ActionError, Actor};
use ordo_controller::auth::{self, Via};
use ordo_controller::exec::Launch;
use ordo_controller::pki::cms::KeyKind;
use ordo_controller::pki::keys::{GenerateSpec, Users};
use ordo_controller::process::Instance;
use ordo_controller::project::{Env, Loaded, ProjectConfig};
use ordo_controller::store::{AuditFilter, ExecutionRow, ExecutionStatus, NodeRow};

const PASSWORD: &str = "a long enough passphrase 42";

struct World {
    _dir: tempfile::TempDir,
    env: Arc<Env>,
    _me: Instance,
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let write = |path: &str, text: &str| {
        let f = p.join(path);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(f, text).unwrap();
    };
    write("ordo.yaml", "# defaults\n");
    write("inventory.yaml", "servers:\n  here: { transport: local }\n");
    write(
        "jobs/vip/echo.yaml",
        "targets: all\noptions:\n  count: { type: integer, min: 1, max: 9, required: true }\nsteps:\n  - command: 'echo ${option.count}'\n",
    );
    write(
        "jobs/vip/nightly.yaml",
        "targets: all\nschedule: '0 2 * * *'\nsteps:\n  - command: 'true'\n",
    );
    write(
        "jobs/vip/sealed.yaml",
        "targets: all\nsteps:\n  - command: 'true'\narchive: { encrypt: [vault] }\n",
    );
    write(
        "jobs/ops/other.yaml",
        "targets: all\nsteps:\n  - command: 'true'\n",
    );
    let cfg = ProjectConfig::load(p).unwrap();
    let loaded = Loaded::all(cfg).unwrap();
    let (env, me) = Env::open(loaded, "test").await.unwrap();
    let cli = Actor::cli();
    let add =
        |name: &str, role: &str, projects: &[&str], manager: Option<&str>, top: bool| NewAccount {
            name: name.into(),
            role: role.into(),
            email: format!("{name}@example.com"),
            password: PASSWORD.into(),
            projects: projects.iter().map(|s| s.to_string()).collect(),
            manager: manager.map(str::to_string),
            top,
            ..NewAccount::default()
        };
    for n in [
        add("ada", "admin", &[], None, true),
        add("adam", "admin", &[], Some("ada"), false),
        add("alice", "operator", &["vip"], Some("adam"), false),
        add("carol", "viewer", &["vip"], Some("adam"), false),
        add("olga", "operator", &["ops"], Some("ada"), false),
    ] {
        accounts::add(&env.store, &cli, n).await.unwrap();
    }
    World {
        _dir: dir,
        env,
        _me: me,
    }
}

impl World {
    /// `name` signed in with a password and a mailed code (a console session).
    async fn session(&self, name: &str) -> Actor {
        self.actor(
            name,
            Via::Session {
                id_hash: "h".into(),
                csrf: "c".into(),
                sso: false,
            },
        )
        .await
    }

    async fn actor(&self, name: &str, via: Via) -> Actor {
        let u = self.env.store.user(name).await.unwrap().unwrap();
        Actor {
            who: auth::principal(&self.env.store, &u, via).await.unwrap(),
            address: "192.0.2.7".into(),
        }
    }

    async fn audit(&self, action: &str) -> Vec<ordo_controller::store::AuditRow> {
        self.env
            .store
            .audit(&AuditFilter {
                actor: None,
                action: Some(action),
                managed_by: None,
                limit: 100,
            })
            .await
            .unwrap()
    }

    fn keys(&self) -> KeysCx<'_> {
        KeysCx {
            store: &self.env.store,
            users: Users {
                jobs: &self.env.jobs,
                profiles: &self.env.profiles,
            },
            mail: &self.env.cfg.mail,
        }
    }
}

fn forbidden<T: std::fmt::Debug>(r: Result<T, ActionError>, says: &str) {
    match r {
        Err(ActionError::Forbidden(m)) => assert!(m.contains(says), "{m}"),
        other => panic!("expected Forbidden ({says}), got {other:?}"),
    }
}

fn invalid<T: std::fmt::Debug>(r: Result<T, ActionError>, field: &str) {
    match r {
        Err(ActionError::Invalid { field: f, .. }) => assert_eq!(f, field),
        other => panic!("expected Invalid({field}), got {other:?}"),
    }
}

#[tokio::test]
async fn accounts_stay_in_their_administrators_lane() {
    let w = world().await;
    let s = &w.env.store;
    let (ada, adam, alice) = (
        w.session("ada").await,
        w.session("adam").await,
        w.session("alice").await,
    );
    // Only a top administrator makes one.
    let top = NewAccount {
        name: "tess".into(),
        role: "admin".into(),
        email: "tess@example.com".into(),
        password: PASSWORD.into(),
        top: true,
        ..NewAccount::default()
    };
    forbidden(
        accounts::add(s, &adam, top.clone()).await,
        "for top administrators only",
    );
    forbidden(
        accounts::add(s, &alice, top.clone()).await,
        "not an administrator",
    );
    // An account adam adds is his to manage; he cannot hand it to ada's olga's lane.
    let bob = NewAccount {
        name: "bob".into(),
        role: "operator".into(),
        email: "bob@example.com".into(),
        password: PASSWORD.into(),
        projects: vec!["vip".into()],
        ..NewAccount::default()
    };
    let b = accounts::add(s, &adam, bob.clone()).await.unwrap();
    assert_eq!(b.manager.as_deref(), Some("adam"));
    forbidden(
        accounts::add(
            s,
            &adam,
            NewAccount {
                name: "bob2".into(),
                manager: Some("ada".into()),
                ..bob
            },
        )
        .await,
        "is not you or an administrator you manage",
    );
    // Another lane's account, or his own: not his to change.
    let promote = AccountChange {
        role: Some("admin".into()),
        ..AccountChange::default()
    };
    forbidden(
        accounts::change(s, &adam, "olga", promote.clone()).await,
        "managed by another administrator",
    );
    forbidden(
        accounts::change(s, &adam, "adam", promote.clone()).await,
        "your own account is changed by the administrator who manages it",
    );
    // Nor may he make one of his own a top administrator.
    forbidden(
        accounts::change(
            s,
            &adam,
            "alice",
            AccountChange {
                top: Some(true),
                ..AccountChange::default()
            },
        )
        .await,
        "for top administrators only",
    );
    // The last top administrator cannot step down.
    match accounts::change(
        s,
        &ada,
        "ada",
        AccountChange {
            top: Some(false),
            ..AccountChange::default()
        },
    )
    .await
    {
        Err(ActionError::Conflict(m)) => assert!(m.contains("last top administrator"), "{m}"),
        other => panic!("{other:?}"),
    }
    invalid(accounts::delete(s, &ada, "ada", None).await, "name");
    // What he did is in the audit log, under his name and address.
    let added = w.audit("user.add").await;
    let row = added.iter().find(|r| r.target == "bob").unwrap();
    assert_eq!(
        (row.actor.as_str(), row.address.as_str()),
        ("adam", "192.0.2.7")
    );
    // He reads his lane of the log only; ada the whole of it.
    let his = actions::audit::read(s, &adam, None, Some("user.add"), 100)
        .await
        .unwrap();
    assert!(his.iter().all(|r| r.target != "olga"), "{his:?}");
    let all = actions::audit::read(s, &ada, None, Some("user.add"), 100)
        .await
        .unwrap();
    assert!(all.iter().any(|r| r.target == "olga"), "{all:?}");
    forbidden(
        actions::audit::read(s, &alice, None, None, 100).await,
        "not an administrator",
    );
}

#[tokio::test]
async fn tokens_are_made_from_a_signed_in_session_and_revoked_by_their_lane() {
    let w = world().await;
    let s = &w.env.store;
    let alice = w.session("alice").await;
    let by_wsse = w.actor("alice", Via::Wsse("tenant".into())).await;
    let mine = actions::tokens::NewToken {
        label: "ci".into(),
        ..Default::default()
    };
    forbidden(
        actions::tokens::create(s, &by_wsse, mine.clone()).await,
        "from a session opened with a password",
    );
    invalid(
        actions::tokens::create(
            s,
            &alice,
            actions::tokens::NewToken {
                valid_for: Some(Duration::from_secs(400 * 86400)),
                ..mine.clone()
            },
        )
        .await,
        "expires",
    );
    let (row, secret) = actions::tokens::create(s, &alice, mine.clone())
        .await
        .unwrap();
    assert!(!secret.is_empty());
    let days = (row.expires_at.unwrap() - row.created_at) / 86_400_000;
    assert_eq!(days, 90, "from the web, 90 days unless asked");
    // Olga's administrator is ada, not adam: adam can neither make nor revoke hers.
    let adam = w.session("adam").await;
    let olga = w.session("olga").await;
    let (hers, _) = actions::tokens::create(s, &olga, mine.clone())
        .await
        .unwrap();
    forbidden(
        actions::tokens::revoke(s, &adam, &hers.id).await,
        "managed by another administrator",
    );
    forbidden(
        actions::tokens::create(
            s,
            &adam,
            actions::tokens::NewToken {
                user: Some("olga".into()),
                ..mine.clone()
            },
        )
        .await,
        "managed by another administrator",
    );
    // Alice's, adam may.
    actions::tokens::revoke(s, &adam, &row.id).await.unwrap();
    let listed = actions::tokens::list(s, &alice, None).await.unwrap();
    assert!(listed.iter().all(|t| t.user_name == "alice"), "{listed:?}");
    assert_eq!(w.audit("token.revoke").await.len(), 1);
}

#[tokio::test]
async fn runs_are_started_retried_and_aborted_by_who_may() {
    let w = world().await;
    let env = &w.env;
    let (alice, carol, olga) = (
        w.session("alice").await,
        w.session("carol").await,
        w.session("olga").await,
    );
    let req = |job: &str, options: &[(&str, &str)]| StartRun {
        job: job.into(),
        options: options
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        cause: "api".into(),
        ..StartRun::default()
    };
    // A job of another project does not exist for her; a viewer may not run.
    match runs::start(env, &alice, req("ops/other", &[]), Launch::default()).await {
        Err(ActionError::NotFound(_)) => {}
        other => panic!("{:?}", other.map(|a| a.id().to_string())),
    }
    match runs::start(
        env,
        &carol,
        req("vip/echo", &[("count", "2")]),
        Launch::default(),
    )
    .await
    {
        Err(ActionError::Forbidden(_)) => {}
        other => panic!("{:?}", other.map(|a| a.id().to_string())),
    }
    // Option errors name their option.
    match runs::start(
        env,
        &alice,
        req("vip/echo", &[("count", "12")]),
        Launch::default(),
    )
    .await
    {
        Err(ActionError::Options(errs)) => {
            assert_eq!(errs.0[0].option, "count", "{errs:?}");
        }
        other => panic!("{:?}", other.map(|a| a.id().to_string())),
    }
    // Encrypted to a key nobody added: refused before anything is recorded.
    match runs::start(env, &alice, req("vip/sealed", &[]), Launch::default()).await {
        Err(ActionError::Refused(m)) => assert!(m.contains("vault"), "{m}"),
        other => panic!("{:?}", other.map(|a| a.id().to_string())),
    }
    // Admitted: started by her, hers, audited; nothing of it recorded yet.
    let ok = runs::start(
        env,
        &alice,
        req("vip/echo", &[("count", "2")]),
        Launch::default(),
    )
    .await
    .unwrap();
    assert_eq!(ok.launch.started_by, "alice");
    assert_eq!(ok.launch.account, "alice");
    let run = w.audit("run").await;
    assert!(run[0].target.ends_with(ok.id()), "{run:?}");
    assert_eq!(run[0].detail, r#"{"count":"2"}"#);
    // A scheduled run (nobody's), still running on this controller: not retried; aborted
    // by her, not by olga (another project: not found) nor carol (a viewer: she sees it).
    let row = ExecutionRow {
        id: "x1".into(),
        job: "vip/echo".into(),
        status: ExecutionStatus::Running,
        options: r#"{"count":"3"}"#.into(),
        targets: "all".into(),
        started_at: 1,
        started_by: "schedule".into(),
        cause: "schedule".into(),
        owner: env.instance.clone(),
        ..ExecutionRow::default()
    };
    env.store.insert_execution(&row).await.unwrap();
    let here = NodeRow {
        execution_id: "x1".into(),
        node: "here".into(),
        transport: "local".into(),
        ..NodeRow::default()
    };
    env.store.insert_pending_nodes(&[here]).await.unwrap();
    match runs::retry(env, &alice, "x1", false, &[], Launch::default()).await {
        Err(ActionError::Refused(m)) => assert!(m.contains("still running"), "{m}"),
        other => panic!("{:?}", other.map(|a| a.id().to_string())),
    }
    match runs::abort(&env.store, &env.aborts, &olga, "x1").await {
        Err(ActionError::NotFound(_)) => {}
        other => panic!("{other:?}"),
    }
    forbidden(
        runs::abort(&env.store, &env.aborts, &carol, "x1").await,
        "may not abort",
    );
    runs::abort(&env.store, &env.aborts, &alice, "x1")
        .await
        .unwrap();
    // Ended, it is retried with its recorded options, and no longer aborted.
    let mut ended = env.store.find_execution("x1").await.unwrap();
    ended.status = ExecutionStatus::Failed;
    ended.finished_at = Some(2);
    env.store.finish_execution(&ended).await.unwrap();
    match runs::abort(&env.store, &env.aborts, &alice, "x1").await {
        Err(ActionError::Conflict(m)) => assert!(m.contains("not running"), "{m}"),
        other => panic!("{other:?}"),
    }
    let again = runs::retry(env, &alice, "x1", false, &[], Launch::default())
        .await
        .unwrap();
    assert_eq!(again.launch.options.values["count"], "3");
    assert_eq!(w.audit("retry").await[0].detail, r#"of x1 {"count":"3"}"#);
}

#[tokio::test]
async fn schedules_are_switched_by_who_may_run_the_job() {
    let w = world().await;
    let env = &w.env;
    let (alice, carol) = (w.session("alice").await, w.session("carol").await);
    invalid(
        actions::schedules::switch(env, &alice, "vip/echo", false).await,
        "job",
    );
    forbidden(
        actions::schedules::switch(env, &carol, "vip/nightly", false).await,
        "",
    );
    actions::schedules::switch(env, &alice, "vip/nightly", false)
        .await
        .unwrap();
    let off = env.store.disabled_schedules().await.unwrap();
    assert!(
        off.iter()
            .any(|(job, by, _)| job == "vip/nightly" && by == "alice"),
        "{off:?}"
    );
    assert_eq!(w.audit("schedule.disable").await.len(), 1);
}

#[tokio::test]
async fn keys_backup_ones_for_top_administrators_in_use_ones_kept() {
    let w = world().await;
    let (ada, adam, alice) = (
        w.session("ada").await,
        w.session("adam").await,
        w.session("alice").await,
    );
    let spec = |name: &str, backup: bool| GenerateSpec {
        name: name.into(),
        cn: format!("{name} key"),
        days: 30,
        kind: KeyKind::EcP256,
        backup,
        passphrase: PASSWORD.into(),
        pkcs12: false,
    };
    let keep = |_: &_, _: &[u8]| Ok(());
    let cx = w.keys();
    forbidden(
        actions::keys::generate(&cx, &alice, spec("a", false), keep).await,
        "not an administrator",
    );
    forbidden(
        actions::keys::generate(&cx, &adam, spec("b", true), keep).await,
        "for top administrators only",
    );
    actions::keys::generate(&cx, &ada, spec("vault", false), keep)
        .await
        .unwrap();
    let (mine, _) = actions::keys::generate(&cx, &adam, spec("adams", false), keep)
        .await
        .unwrap();
    assert_eq!(mine.added_by, "adam");
    // Ada's key is not his to delete; the one a job encrypts to is kept unless forced.
    forbidden(
        actions::keys::delete(&cx, &adam, "vault", false).await,
        "someone else added",
    );
    match actions::keys::delete(&cx, &ada, "vault", false).await {
        Err(ActionError::Conflict(m)) => assert!(m.contains("vip/sealed"), "{m}"),
        other => panic!("{other:?}"),
    }
    actions::keys::delete(&cx, &adam, "adams", false)
        .await
        .unwrap();
    invalid(
        actions::keys::generate(&cx, &ada, spec("vault", false), keep).await,
        "name",
    );
    // With the key there, the sealed job is admitted.
    let run = runs::start(
        &w.env,
        &alice,
        StartRun {
            job: "vip/sealed".into(),
            cause: "api".into(),
            ..StartRun::default()
        },
        Launch::default(),
    )
    .await;
    assert!(run.is_ok(), "{:?}", run.err());
    assert_eq!(w.audit("key delete").await.len(), 1);
}
