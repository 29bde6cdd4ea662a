//! The history store, the same suite on the embedded SQLite and on a real PostgreSQL:
//! executions and their servers, fires decided once, the leader lease, interrupted runs,
//! notifications, retention.

use ordo_controller::store::{
    ExecutionRow, ExecutionStatus, FireRow, LogLine, NodeRow, NotificationRow, Store,
};
use ordo_tests::postgres::Postgres;
use ordo_tests::temp_dir;

fn exec(id: &str, job: &str, owner: &str, started_at: i64) -> ExecutionRow {
    ExecutionRow {
        id: id.into(),
        job: job.into(),
        status: ExecutionStatus::Running,
        options: r#"{"env":"prod"}"#.into(),
        targets: "all".into(),
        started_at,
        nodes_total: 2,
        started_by: "test".into(),
        cause: "schedule".into(),
        owner: owner.into(),
        fire_key: Some(format!("cron:{started_at}")),
        ..ExecutionRow::default()
    }
}

fn node(id: &str, name: &str) -> NodeRow {
    NodeRow {
        execution_id: id.into(),
        node: name.into(),
        host: "127.0.0.1".into(),
        transport: "ssh".into(),
        ..NodeRow::default()
    }
}

/// An execution with two servers: pending rows first, progress, logs, one result; it
/// counts as running while its controller is alive.
async fn a_run_records_its_servers_and_logs(store: &Store) {
    let e = exec("e1", "nightly", "vip:1:serve", 1_000);
    store.insert_execution(&e).await.unwrap();
    store
        .insert_pending_nodes(&[node("e1", "web1"), node("e1", "web2")])
        .await
        .unwrap();
    store.node_progress("e1", "web1", 2, 1_100).await.unwrap();
    store
        .insert_logs(
            "e1",
            &(1..=70)
                .map(|i| LogLine {
                    seq: i,
                    node: "web1".into(),
                    step: 1,
                    stream: "stdout".into(),
                    ts: 1_000 + i,
                    line: format!("line {i} é"),
                })
                .collect::<Vec<_>>(),
        )
        .await
        .unwrap();
    assert_eq!(store.last_log_seq("e1").await.unwrap(), 70);
    assert_eq!(store.last_log_seq("nope").await.unwrap(), 0);
    let logs = store.logs("e1", Some("web1")).await.unwrap();
    assert_eq!(logs.len(), 70);
    assert_eq!(logs[69].line, "line 70 é");
    store
        .heartbeat("vip:1:serve", "vip", 1, "serve", 900)
        .await
        .unwrap();
    assert_eq!(store.running_count("nightly", 900).await.unwrap(), 1);
    assert_eq!(store.running_count("nightly", 901).await.unwrap(), 0);
}

/// The controller that runs it stops refreshing: the run is marked interrupted, with
/// what each server reached; a run of a live controller is left alone. A known-dead owner
/// is interrupted at once, whatever its heartbeat.
async fn a_dead_controllers_runs_are_interrupted(store: &Store) {
    store
        .heartbeat("vip:1:serve", "vip", 1, "serve", 1_000)
        .await
        .unwrap();
    store
        .heartbeat("vip:2:serve", "vip", 2, "serve", 50_000)
        .await
        .unwrap();
    let live = exec("e2", "nightly", "vip:2:serve", 2_000);
    store.insert_execution(&live).await.unwrap();
    let marked = store.interrupt_orphans(40_000, &[], 60_000).await.unwrap();
    assert_eq!(
        marked.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        ["e1"]
    );
    let e1 = store.find_execution("e1").await.unwrap();
    assert_eq!(e1.status, ExecutionStatus::Interrupted);
    assert_eq!(e1.finished_at, Some(60_000));
    assert!(e1.error.unwrap().contains("vip:1:serve"));
    assert_eq!((e1.nodes_ok, e1.nodes_failed), (0, 2));
    let nodes = store.nodes("e1").await.unwrap();
    assert_eq!(nodes[0].status, "interrupted");
    assert_eq!(nodes[0].step_reached, 2);
    assert_eq!(nodes[0].error.as_deref(), Some("interrupted during step 2"));
    assert_eq!(
        nodes[1].error.as_deref(),
        Some("interrupted before it started")
    );
    assert_eq!(
        store.find_execution("e2").await.unwrap().status,
        ExecutionStatus::Running
    );
    let marked = store
        .interrupt_orphans(0, &["vip:2:serve".to_string()], 61_000)
        .await
        .unwrap();
    assert_eq!(marked.len(), 1);
    assert_eq!(store.controllers().await.unwrap().len(), 2);
}

/// A fire is decided once, whoever asks second.
async fn a_fire_is_decided_once(store: &Store) -> FireRow {
    let fire = FireRow {
        job: "nightly".into(),
        fire_key: "cron:5000".into(),
        kind: "schedule".into(),
        due_at: 5_000,
        decision: "queued".into(),
        decided_by: "a".into(),
        decided_at: 5_001,
        options: "{}".into(),
        ..FireRow::default()
    };
    assert!(store.claim_fire(&fire).await.unwrap());
    assert!(
        !store
            .claim_fire(&FireRow {
                decided_by: "b".into(),
                decision: "ran".into(),
                ..fire.clone()
            })
            .await
            .unwrap()
    );
    assert_eq!(store.queued_fires().await.unwrap().len(), 1);
    assert!(
        store
            .update_fire("nightly", "cron:5000", "queued", "ran", Some("e9"), None)
            .await
            .unwrap()
    );
    assert!(
        !store
            .update_fire("nightly", "cron:5000", "queued", "ran", Some("e10"), None)
            .await
            .unwrap()
    );
    let last = store
        .last_fire("nightly", "schedule")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (last.decision.as_str(), last.execution_id.as_deref()),
        ("ran", Some("e9"))
    );
    assert_eq!(last.decided_by, "a");
    assert_eq!(store.schedule_since("nightly", 7).await.unwrap(), 7);
    assert_eq!(store.schedule_since("nightly", 99).await.unwrap(), 7);
    fire
}

/// A fire decided `ran` by a controller that died before starting it goes back to the
/// queue; one whose run exists, or whose decider is alive, stays.
async fn a_fire_lost_with_its_decider_is_queued_again(store: &Store, fire: &FireRow) {
    for (key, run, by) in [
        ("cron:8000", "never-started", "ghost"),
        ("cron:9000", "e2", "ghost"),
        ("cron:10000", "starting", "vip:2:serve"),
    ] {
        store
            .claim_fire(&FireRow {
                job: "lost".into(),
                fire_key: key.into(),
                decision: "ran".into(),
                execution_id: Some(run.into()),
                decided_by: by.into(),
                decided_at: 100,
                ..fire.clone()
            })
            .await
            .unwrap();
    }
    let requeued = store.requeue_lost_fires(200).await.unwrap();
    assert_eq!(
        requeued
            .iter()
            .map(|f| f.fire_key.as_str())
            .collect::<Vec<_>>(),
        ["cron:8000"]
    );
    let lost = store.fires(Some("lost"), 10).await.unwrap();
    let by_key: std::collections::BTreeMap<&str, &FireRow> =
        lost.iter().map(|f| (f.fire_key.as_str(), f)).collect();
    assert_eq!(by_key["cron:8000"].decision, "queued");
    assert!(
        by_key["cron:8000"]
            .note
            .as_deref()
            .unwrap()
            .contains("ghost decided to run it")
    );
    assert_eq!(by_key["cron:9000"].decision, "ran");
    assert_eq!(by_key["cron:10000"].decision, "ran");
    assert!(store.db_now().await.unwrap() > 1_700_000_000_000);
}

/// The lease: one holder at a time; taken over only once expired.
async fn the_lease_has_one_holder_at_a_time(store: &Store) {
    assert!(
        store
            .acquire_lease("scheduler", "a", 1_000, 2_000)
            .await
            .unwrap()
    );
    assert!(
        !store
            .acquire_lease("scheduler", "b", 1_500, 2_500)
            .await
            .unwrap()
    );
    assert!(
        store
            .acquire_lease("scheduler", "a", 1_900, 2_900)
            .await
            .unwrap()
    );
    assert!(
        store
            .acquire_lease("scheduler", "b", 3_000, 4_000)
            .await
            .unwrap()
    );
    assert!(
        !store
            .acquire_lease("scheduler", "a", 3_100, 4_100)
            .await
            .unwrap()
    );
    let (holder, until, term) = store.lease("scheduler").await.unwrap().unwrap();
    assert_eq!((holder.as_str(), until, term), ("b", 4_000, 2));
    store.release_lease("scheduler", "b").await.unwrap();
    assert!(
        store
            .acquire_lease("scheduler", "a", 3_200, 4_200)
            .await
            .unwrap()
    );
}

/// A notification is kept with its run.
async fn a_notification_is_kept_with_its_run(store: &Store) {
    store
        .record_notification(&NotificationRow {
            execution_id: "e1".into(),
            event: "failure".into(),
            channel: "webhook".into(),
            target: "http://x".into(),
            ok: false,
            detail: Some("HTTP 500".into()),
            at: 9,
        })
        .await
        .unwrap();
    let n = store.notifications("e1").await.unwrap();
    assert_eq!((n.len(), n[0].ok), (1, false));
}

/// Durations of successful runs; retention keeps the newest and the young.
async fn retention_keeps_the_newest_and_the_young(store: &Store) {
    for (i, started) in [10_000i64, 20_000, 30_000, 40_000].iter().enumerate() {
        let mut e = exec(&format!("r{i}"), "report", "x", *started);
        store.insert_execution(&e).await.unwrap();
        e.status = ExecutionStatus::Succeeded;
        e.finished_at = Some(started + 500 * (i as i64 + 1));
        store.finish_execution(&e).await.unwrap();
    }
    assert_eq!(
        store.recent_durations("report", 3).await.unwrap(),
        [2_000, 1_500, 1_000]
    );
    let old = store.purgeable("report", Some(2), None).await.unwrap();
    assert_eq!(old, ["r1", "r0"]);
    let old = store.purgeable("report", None, Some(25_000)).await.unwrap();
    assert_eq!(old, ["r1", "r0"]);
    for id in old {
        store.delete_execution(&id).await.unwrap();
    }
    assert_eq!(
        store
            .list_executions(Some("report"), 10)
            .await
            .unwrap()
            .len(),
        2
    );
}

/// A run deleted takes its logs and notifications with it.
async fn a_deleted_run_takes_its_logs_and_notifications(store: &Store) {
    store.delete_execution("e1").await.unwrap();
    assert!(store.logs("e1", None).await.unwrap().is_empty());
    assert!(store.notifications("e1").await.unwrap().is_empty());
}

async fn suite(url: &str) {
    let store = Store::open(url).await.expect("open");
    // Opening again (a second controller) finds the schema in place.
    let again = Store::open(url).await.expect("open again");
    again.close().await;
    a_run_records_its_servers_and_logs(&store).await;
    a_dead_controllers_runs_are_interrupted(&store).await;
    let fire = a_fire_is_decided_once(&store).await;
    a_fire_lost_with_its_decider_is_queued_again(&store, &fire).await;
    the_lease_has_one_holder_at_a_time(&store).await;
    a_notification_is_kept_with_its_run(&store).await;
    retention_keeps_the_newest_and_the_young(&store).await;
    a_deleted_run_takes_its_logs_and_notifications(&store).await;
    store.close().await;
}

#[tokio::test]
async fn the_store_on_sqlite() {
    let dir = temp_dir("store");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("ordo.db").display());
    suite(&url).await;
}

#[tokio::test]
async fn the_store_on_postgres() {
    let pg = Postgres::start();
    let url = pg.database("ordo");
    suite(&url).await;
}
