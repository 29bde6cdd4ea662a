//! `controller serve`: the long-running controller. Every instance heartbeats and marks
//! interrupted the runs of controllers that died; the one holding the `scheduler` lease
//! fires schedules and file triggers, starts queued fires and purges old history. Job and
//! inventory files are reloaded on SIGHUP or `POST /api/v1/reload`, all or nothing.

pub mod api;
mod retention;
mod scheduler;
mod watch;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use ordo_jobs::Job;
use tokio_util::sync::CancellationToken;

use crate::config::ProjectConfig;
use crate::exec::instance::{self, Instance};
use crate::exec::{self, Env, Launch};
use crate::store::Store;

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
    tasks: tokio_util::task::TaskTracker,
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
    pub fn reload(&self) -> Result<String, String> {
        let cfg = self.env().cfg.clone();
        let inventory = ordo_inventory::load(&cfg.inventory).map_err(|e| e.to_string())?;
        let jobs = ordo_jobs::load_all(&cfg.jobs).map_err(|e| e.to_string())?;
        let profiles = crate::cli::profiles(&cfg, &jobs).map_err(|e| e.0)?;
        let summary = format!(
            "{} servers, {} jobs ({} scheduled, {} watching)",
            inventory.nodes.len(),
            jobs.jobs.len(),
            jobs.jobs.values().filter(|j| j.schedule.is_some()).count(),
            jobs.jobs.values().filter(|j| j.watch.is_some()).count()
        );
        let env = Arc::new(Env {
            cfg,
            inventory,
            jobs,
            profiles,
            store: self.store.clone(),
            instance: self.instance.clone(),
        });
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
                    exec::notify::Notifier::new(env.clone(), job, e.id.clone(), options)
                        .send(ordo_jobs::NotifyEvent::Failure, "interrupted", Some(&why))
                        .await;
                }
            }
            Err(e) => tracing::warn!("sweep: {e}"),
        }
        if self.is_leader() {
            let alive_since = crate::engine::now_ms() - dead_after.as_millis() as i64;
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
        let me = self.clone();
        let name = job.name.clone();
        *me.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(name.clone())
            .or_default() += 1;
        let env = self.env();
        let cancel = self.cancel.child_token();
        self.tasks.spawn(async move {
            let label = launch.id.clone().unwrap_or_default();
            let result = exec::execute(env.clone(), job, launch.clone(), cancel).await;
            if let Err(e) = result {
                match e.downcast_ref::<crate::cli::BadInput>() {
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

/// Runs until SIGTERM or Ctrl-C.
pub async fn serve(cfg: ProjectConfig, listen: Option<String>) -> anyhow::Result<()> {
    let inventory =
        ordo_inventory::load(&cfg.inventory).map_err(|e| crate::cli::BadInput(e.to_string()))?;
    let jobs = ordo_jobs::load_all(&cfg.jobs).map_err(|e| crate::cli::BadInput(e.to_string()))?;
    let profiles = crate::cli::profiles(&cfg, &jobs)?;
    std::fs::create_dir_all(&cfg.data_dir)?;
    let store = Store::open(&crate::cli::database_url(&cfg)).await?;
    let me = Instance::register(&store, "serve").await?;
    let settings = cfg.serve.clone();
    tracing::info!(
        instance = %me.id,
        servers = inventory.nodes.len(),
        jobs = jobs.jobs.len(),
        scheduled = jobs.jobs.values().filter(|j| j.schedule.is_some()).count(),
        "controller serve started"
    );
    let server = Arc::new(Server {
        env: RwLock::new(Arc::new(Env {
            cfg,
            inventory,
            jobs,
            profiles,
            store: store.clone(),
            instance: me.id.clone(),
        })),
        store: store.clone(),
        instance: me.id.clone(),
        running: Mutex::new(HashMap::new()),
        cancel: CancellationToken::new(),
        leader: std::sync::atomic::AtomicBool::new(false),
        tasks: tokio_util::task::TaskTracker::new(),
    });
    server.sweep().await;
    let stop = CancellationToken::new();
    if let Some(addr) = listen.or(settings.listen.clone()) {
        let (s, st) = (server.clone(), stop.clone());
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .map_err(|e| crate::cli::BadInput(format!("serve: cannot listen on {addr}: {e}")))?;
        tracing::info!("HTTP API on http://{}", listener.local_addr()?);
        tokio::spawn(async move { api::run(s, listener, st).await });
    }
    // Another controller's runs are interrupted once it has been silent `dead_after`.
    {
        let (s, st) = (server.clone(), stop.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(instance::HEARTBEAT);
            loop {
                tokio::select! {
                    _ = tick.tick() => s.sweep().await,
                    _ = st.cancelled() => break,
                }
            }
        });
    }
    {
        let s = server.clone();
        let st = stop.clone();
        tokio::spawn(async move {
            let Ok(mut hup) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            else {
                return;
            };
            loop {
                tokio::select! {
                    _ = hup.recv() => match s.reload() {
                        Ok(summary) => tracing::info!("reloaded: {summary}"),
                        Err(e) => tracing::error!("reload refused, the previous jobs and inventory stay:\n{e}"),
                    },
                    _ = st.cancelled() => break,
                }
            }
        });
    }
    let sched = tokio::spawn(scheduler::run(server.clone(), stop.clone()));

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("stopping: running executions are aborted");
    stop.cancel();
    let _ = sched.await;
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
