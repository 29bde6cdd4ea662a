//! `controller serve`: the long-running controller. Every instance heartbeats and marks
//! interrupted the runs of controllers that died; the one holding the `scheduler` lease
//! fires schedules and file triggers, starts queued fires and purges old history. Job and
//! inventory files are reloaded on SIGHUP or `POST /api/v1/reload`, all or nothing.

mod fire;
mod key_expiry;
mod owed;
mod retention;
mod scheduler;
mod watch;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use ordo_jobs::Job;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::exec::{self, Launch};
use crate::process::{self as instance, Instance};
use crate::project::{Env, Loaded};
use crate::store::{ExecutionStatus, Store};

pub use retention::purge;

/// The lease that makes one controller the scheduler.
pub const LEASE: &str = "scheduler";

/// What `serve` shares between its tasks.
pub struct Server {
    env: RwLock<Arc<Env>>,
    pub store: Store,
    pub instance: String,
    /// Running executions started here, per job (the database knows the others).
    running: Mutex<HashMap<String, usize>>,
    /// Stops every execution on shutdown.
    pub cancel: CancellationToken,
    leader: std::sync::atomic::AtomicBool,
    tasks: TaskTracker,
    /// A pass stopping what interrupted runs left running is going on.
    reaping: Arc<std::sync::atomic::AtomicBool>,
}

impl Server {
    pub fn env(&self) -> Arc<Env> {
        self.env.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn is_leader(&self) -> bool {
        self.leader.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn running_here(&self, job: &str) -> usize {
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(job)
            .copied()
            .unwrap_or(0)
    }

    /// Rereads the inventory and every job (ordo.yaml itself needs a restart); keeps the
    /// old set when anything is wrong. Returns a one-line summary, or every error.
    pub fn reload(&self) -> Result<String, crate::project::BadInput> {
        let loaded = Loaded::all(self.env().cfg.clone())?;
        let summary = loaded.summary();
        let env = Arc::new(self.env().reloaded(loaded));
        *self.env.write().unwrap_or_else(|e| e.into_inner()) = env;
        Ok(summary)
    }

    /// Marks interrupted the runs of dead controllers and sends their jobs' failure
    /// notifications; the leader also requeues fires whose run never started.
    pub async fn sweep(&self) {
        let env = self.env();
        let dead_after = env.cfg.serve.dead_after;
        match instance::sweep(&self.store, dead_after).await {
            Ok(marked) => {
                for e in marked {
                    let Some(job) = env.jobs.get(&e.job).cloned() else {
                        continue;
                    };
                    let mut options = ordo_jobs::OptionValues::default();
                    options.values = serde_json::from_str(&e.options).unwrap_or_default();
                    let why = e.error.clone().unwrap_or_default();
                    exec::notify::Notifier::new(env.clone(), job, e.id.clone(), options, e.account)
                        .send(
                            ordo_jobs::NotifyEvent::Failure,
                            ExecutionStatus::Interrupted,
                            Some(&why),
                        )
                        .await;
                }
            }
            Err(e) => tracing::warn!("sweep: {e}"),
        }
        // What they left running on their servers is stopped in the background (servers
        // may be slow to answer), one pass at a time.
        if !self.reaping.swap(true, std::sync::atomic::Ordering::SeqCst) {
            let (env, reaping) = (env.clone(), self.reaping.clone());
            self.tasks.spawn(async move {
                exec::reap::stop_leftovers(&env).await;
                reaping.store(false, std::sync::atomic::Ordering::SeqCst);
            });
        }
        if self.is_leader() {
            let alive_since = crate::clock::now_ms() - dead_after.as_millis() as i64;
            match self.store.requeue_lost_fires(alive_since).await {
                Ok(lost) => {
                    for f in lost {
                        tracing::warn!(job = %f.job, fire = %f.fire_key, "requeued: {} decided to run it but stopped before it started", f.decided_by);
                    }
                }
                Err(e) => tracing::warn!("sweep: {e}"),
            }
        }
    }

    /// Starts an execution in the background; `done` runs once it ended.
    pub fn spawn_execution(self: &Arc<Self>, job: Arc<Job>, launch: Launch) {
        let (name, record) = (job.name.clone(), launch.clone());
        let env = self.env();
        let cancel = self.cancel.child_token();
        self.spawn_run(name, record, async move {
            exec::execute(env, job, launch, cancel).await
        });
    }

    /// Runs an admitted run (checked and audited by an action) here, in the background.
    pub fn spawn_admitted(self: &Arc<Self>, admitted: exec::Admitted) {
        let (name, record) = (admitted.job.name.clone(), admitted.launch.clone());
        let env = self.env();
        let cancel = self.cancel.child_token();
        self.spawn_run(name, record, async move {
            exec::run_admitted(env, admitted, cancel).await
        });
    }

    /// Counts the run as running here while `run` goes on; a refusal is recorded (the
    /// history shows why it did not start), anything else logged.
    fn spawn_run(
        self: &Arc<Self>,
        name: String,
        launch: Launch,
        run: impl Future<Output = anyhow::Result<exec::Outcome>> + Send + 'static,
    ) {
        let me = self.clone();
        *me.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(name.clone())
            .or_default() += 1;
        let env = self.env();
        self.tasks.spawn(async move {
            let label = launch.id.clone().unwrap_or_default();
            if let Err(e) = run.await {
                match e.downcast_ref::<crate::project::BadInput>() {
                    Some(b) => {
                        tracing::error!(job = %name, execution = %label, "not started: {b}");
                        if let Err(e) = exec::record_refused(&env, &name, &launch, &b.0).await {
                            tracing::error!("cannot record it: {e}");
                        }
                    }
                    None => {
                        tracing::error!(job = %name, execution = %label, "execution failed: {e:#}")
                    }
                }
            }
            if let Some(n) = me
                .running
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get_mut(&name)
            {
                *n = n.saturating_sub(1);
            }
        });
    }
}

/// What serves HTTP beside the scheduler (the API and the console: `ordo-web`), started
/// with the shared state and a token that asks it to stop.
pub type FrontDoor = Box<
    dyn FnOnce(Arc<Server>, CancellationToken) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>>
        + Send,
>;

/// Runs until `shutdown` resolves: the scheduler, the file triggers, the heartbeat, and
/// the `front` door (HTTP), if any; each message on `reloads` rereads the jobs and
/// inventory.
/// On shutdown the scheduler stops first, then running executions are aborted (30 s at
/// most), then this instance leaves the database. Signals are the caller's (`cli/serve.rs`).
pub async fn run(
    env: Arc<Env>,
    me: Instance,
    front: Option<FrontDoor>,
    mut reloads: mpsc::Receiver<()>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let store = env.store.clone();
    tracing::info!(instance = %me.id, "controller serve started: {}", summary(&env));
    let server = Arc::new(Server {
        env: RwLock::new(env),
        store: store.clone(),
        instance: me.id.clone(),
        running: Mutex::new(HashMap::new()),
        cancel: CancellationToken::new(),
        leader: std::sync::atomic::AtomicBool::new(false),
        tasks: TaskTracker::new(),
        reaping: Default::default(),
    });
    server.sweep().await;
    let stop = CancellationToken::new();
    let background = TaskTracker::new();
    if let Some(front) = front {
        background.spawn(front(server.clone(), stop.clone()));
    }
    // Another controller's runs are interrupted once it has been silent `dead_after`.
    let (s, st) = (server.clone(), stop.clone());
    background.spawn(async move {
        let mut tick = tokio::time::interval(instance::HEARTBEAT);
        loop {
            tokio::select! {
                _ = tick.tick() => s.sweep().await,
                _ = st.cancelled() => break,
            }
        }
    });
    let (s, st) = (server.clone(), stop.clone());
    background.spawn(async move {
        loop {
            tokio::select! {
                Some(()) = reloads.recv() => match s.reload() {
                    Ok(summary) => tracing::info!("reloaded: {summary}"),
                    Err(e) => tracing::error!("reload refused, the previous jobs and inventory stay:\n{e}"),
                },
                _ = st.cancelled() => break,
            }
        }
    });
    // Mails the relay could not take wait in outbox/pending: offered again regularly.
    let (s, st) = (server.clone(), stop.clone());
    background.spawn(async move {
        let mut tick = tokio::time::interval(s.env().cfg.serve.mail_retry);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    let (sent, left) = crate::mail::queue::flush(&s.env().cfg.mail).await;
                    if sent > 0 {
                        tracing::info!("{sent} pending mail(s) sent, {left} still waiting");
                    }
                }
                _ = st.cancelled() => break,
            }
        }
    });
    // Facts become alerts, and alerts due are delivered (those the relay refuses wait).
    let (s, st) = (server.clone(), stop.clone());
    background.spawn(async move {
        loop {
            // Read at each turn: a reload that changes `serve: alerts: every` applies.
            let every = s.env().cfg.serve.alerts.every;
            tokio::select! {
                _ = tokio::time::sleep(every) => {
                    let env = s.env();
                    let now = crate::clock::now_ms();
                    match crate::alerts::deliver::pass(&s.store, &env.cfg, &s.instance, now).await {
                        Ok(p) if p != Default::default() => tracing::info!(queued = p.queued, sent = p.sent, cancelled = p.cancelled, failed = p.failed, "alerts"),
                        Ok(_) => {}
                        Err(e) => tracing::warn!("alerts: {e}"),
                    }
                }
                _ = st.cancelled() => break,
            }
        }
    });
    background.spawn(key_expiry::run(server.clone(), stop.clone()));
    background.spawn(scheduler::run(server.clone(), stop.clone()));
    background.close();

    shutdown.await;
    tracing::info!("stopping: running executions are aborted");
    stop.cancel();
    if tokio::time::timeout(Duration::from_secs(30), background.wait())
        .await
        .is_err()
    {
        tracing::warn!("the scheduler or the HTTP API did not stop within 30s");
    }
    server.cancel.cancel();
    server.tasks.close();
    if tokio::time::timeout(Duration::from_secs(30), server.tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!("some executions did not stop within 30s");
    }
    let _ = store.release_lease(LEASE, &server.instance).await;
    me.retire().await;
    store.close().await;
    Ok(())
}

fn summary(env: &Env) -> String {
    let jobs = env.jobs.jobs.values();
    format!(
        "{} servers, {} jobs ({} scheduled)",
        env.inventory.nodes.len(),
        env.jobs.jobs.len(),
        jobs.filter(|j| j.schedule.is_some()).count()
    )
}
