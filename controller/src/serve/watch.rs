//! File-watch triggers: a job fires for each file matching its pattern in a folder of the
//! controller, once the file stopped changing (`settle`). inotify wakes the scan up; with
//! `poll:` (network filesystems) the folder is scanned at that period instead. A file
//! fires once per version (path, size, modification time), whoever the leader is then.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use notify::Watcher as _;
use ordo_jobs::{Job, Overlap, Watch};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Server;
use super::fire::{Fire, decide};
use crate::clock::now_ms;

/// A scan even without inotify events, in case one was lost.
const SAFETY_RESCAN: Duration = Duration::from_secs(30);

#[derive(Default)]
pub(super) struct Watchers {
    running: HashMap<String, (String, CancellationToken)>,
}

impl Watchers {
    /// Starts a watcher for each job with `watch:`, restarts changed ones, stops the rest.
    pub(super) fn sync(&mut self, server: &Arc<Server>, env: &crate::project::Env) {
        let wanted: HashMap<String, (String, Arc<Job>)> = env
            .jobs
            .jobs
            .values()
            .filter_map(|j| {
                let w = j.watch.as_ref()?;
                let fp = format!(
                    "{:?}|{}|{}|{:?}|{:?}|{:?}",
                    w.path, w.pattern, w.recursive, w.option, w.poll, w.settle
                );
                Some((j.name.clone(), (fp, j.clone())))
            })
            .collect();
        self.running.retain(|name, (fp, stop)| {
            let keep = wanted.get(name).is_some_and(|(f, _)| f == fp);
            if !keep {
                stop.cancel();
            }
            keep
        });
        for (name, (fp, job)) in wanted {
            if self.running.contains_key(&name) {
                continue;
            }
            let stop = CancellationToken::new();
            tokio::spawn(watch_job(server.clone(), job, stop.clone()));
            self.running.insert(name, (fp, stop));
        }
    }

    pub(super) fn stop_all(&mut self) {
        for (_, (_, stop)) in self.running.drain() {
            stop.cancel();
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Version {
    size: u64,
    mtime_ms: i64,
}

fn matching_files(w: &Watch) -> Vec<(PathBuf, Version)> {
    let mut out = Vec::new();
    let mut dirs = vec![w.path.clone()];
    while let Some(dir) = dirs.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let Ok(meta) = e.metadata() else { continue };
            let path = e.path();
            if meta.is_dir() {
                if w.recursive {
                    dirs.push(path);
                }
                continue;
            }
            if !meta.is_file() || !w.matcher.is_match(Path::new(&e.file_name())) {
                continue;
            }
            let mtime_ms = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_millis() as i64);
            out.push((
                path,
                Version {
                    size: meta.len(),
                    mtime_ms,
                },
            ));
        }
    }
    out.sort();
    out
}

async fn watch_job(server: Arc<Server>, job: Arc<Job>, stop: CancellationToken) {
    let Some(w) = job.watch.clone() else { return };
    if !w.path.is_dir() {
        tracing::warn!(job = %job.name, "watch: {} is not a folder (yet): scanning for it", w.path.display());
    }
    let (tx, mut rx) = mpsc::channel::<()>(1);
    let _inotify = if w.poll.is_none() {
        let mode = if w.recursive {
            notify::RecursiveMode::Recursive
        } else {
            notify::RecursiveMode::NonRecursive
        };
        notify::recommended_watcher(move |_res: notify::Result<notify::Event>| {
            let _ = tx.try_send(());
        })
        .and_then(|mut watcher| watcher.watch(&w.path, mode).map(|()| watcher))
        .map_err(|e| {
            tracing::warn!(job = %job.name, "watch {}: inotify unavailable ({e}); scanning every second", w.path.display())
        })
        .ok()
    } else {
        None
    };
    let idle = match (w.poll, &_inotify) {
        (Some(p), _) => p,
        (None, Some(_)) => SAFETY_RESCAN,
        (None, None) => Duration::from_secs(1),
    };
    tracing::info!(job = %job.name, folder = %w.path.display(), pattern = %w.pattern, "watching");
    let overlap = job.schedule.as_ref().map_or(Overlap::Queue, |s| s.overlap);
    let mut pending: HashMap<PathBuf, (Version, Instant)> = HashMap::new();
    let mut decided: HashSet<(PathBuf, Version)> = HashSet::new();
    loop {
        if server.is_leader() {
            let files = matching_files(&w);
            let present: HashSet<&PathBuf> = files.iter().map(|(p, _)| p).collect();
            pending.retain(|p, _| present.contains(p));
            decided.retain(|(p, _)| present.contains(p));
            for (path, v) in &files {
                if decided.contains(&(path.clone(), *v)) {
                    continue;
                }
                match pending.get(path) {
                    Some((seen, since)) if seen == v && since.elapsed() >= w.settle => {
                        let key = format!("file:{}:{}:{}", path.display(), v.size, v.mtime_ms);
                        let given: Vec<(String, String)> = w
                            .option
                            .iter()
                            .map(|o| (o.clone(), path.display().to_string()))
                            .collect();
                        let queued = server
                            .store
                            .queued_fires()
                            .await
                            .map(|q| q.iter().any(|f| f.job == job.name))
                            .unwrap_or(false);
                        let fire = Fire {
                            key,
                            kind: "watch",
                            due_at: now_ms(),
                            given,
                            note: None,
                            overlap,
                            queued_before: queued,
                        };
                        match decide(&server, &job, fire).await {
                            Ok(()) => {
                                decided.insert((path.clone(), *v));
                                pending.remove(path);
                            }
                            Err(e) => {
                                tracing::warn!(job = %job.name, file = %path.display(), "watch: {e}")
                            }
                        }
                    }
                    Some((seen, _)) if seen == v => {}
                    _ => {
                        pending.insert(path.clone(), (*v, Instant::now()));
                    }
                }
            }
        }
        let wait = if pending.is_empty() {
            idle
        } else {
            (w.settle / 4)
                .clamp(Duration::from_millis(100), Duration::from_secs(1))
                .min(idle)
        };
        tokio::select! {
            _ = rx.recv() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = stop.cancelled() => break,
        }
    }
}
