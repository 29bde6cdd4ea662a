//! Option values read from a file or a command on the controller (`values_from`), off
//! the async workers and off tokio's blocking threads (which check passwords): on a pool
//! of their own, two at a time. Pages and the API read them through a [`ValuesCache`]:
//! fresh for 30 s, one refresh at a time per option, and a slow command answers with the
//! last values known (or "unavailable") instead of holding the page.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ordo_jobs::{Job, JobOption};
use tokio::sync::{Semaphore, watch};

/// Values sources read at once, at most.
static POOL: Semaphore = Semaphore::const_new(2);

/// Runs `f` on a thread of its own once the pool has room (never on tokio's blocking
/// threads): a values command that hangs holds one of the pool's places, nothing else.
pub async fn on_pool<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let _permit = POOL.acquire().await.ok()?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("ordo-values".into())
        .spawn(move || {
            let _ = tx.send(f());
        })
        .ok()?;
    rx.await.ok()
}

/// How long values read are shown without reading them again.
pub const FRESH: Duration = Duration::from_secs(30);
/// How long a page waits for values being read before it shows the last ones known.
pub const PAGE_WAIT: Duration = Duration::from_secs(2);
/// Options kept, at most (a reload with many new jobs starts afresh past this).
const MAX_ENTRIES: usize = 10_000;

/// An option's values as a page shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shown {
    /// Any value (no allowed list), or these values.
    Values(Vec<String>),
    /// The values source failed, or has not answered yet and nothing was read before.
    Unavailable(String),
}

type Read = Result<Vec<String>, String>;

struct Entry {
    /// The last values read, and when.
    last: Option<(Read, Instant)>,
    /// Set while a refresh runs: its result arrives here.
    pending: Option<watch::Receiver<Option<Read>>>,
}

/// The values of every `values_from` option, per job and option.
#[derive(Default)]
pub struct ValuesCache {
    // A std Mutex: held only to look up or update a map entry, never across an await.
    entries: Mutex<HashMap<(String, String), Entry>>,
}

impl ValuesCache {
    /// Every option of `job`, as a page shows it: its allowed values, or its source's
    /// values (read again when older than [`FRESH`], waiting [`PAGE_WAIT`] at most).
    pub async fn shown(&self, job: &Arc<Job>) -> Vec<Shown> {
        let mut out = Vec::with_capacity(job.options.len());
        for opt in &job.options {
            out.push(self.one(job, opt).await);
        }
        out
    }

    async fn one(&self, job: &Job, opt: &JobOption) -> Shown {
        if opt.values_from.is_none() {
            return Shown::Values(opt.allowed.clone());
        }
        let key = (job.name.clone(), opt.name.clone());
        let (mut rx, last) = {
            let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            if map.len() > MAX_ENTRIES {
                map.clear();
            }
            let e = map.entry(key.clone()).or_insert(Entry {
                last: None,
                pending: None,
            });
            if let Some((read, at)) = &e.last
                && at.elapsed() < FRESH
            {
                return shown(read.clone());
            }
            let rx = match &e.pending {
                Some(rx) => rx.clone(),
                None => {
                    let (tx, rx) = watch::channel(None);
                    e.pending = Some(rx.clone());
                    let opt = opt.clone();
                    tokio::spawn(async move {
                        let read = on_pool(move || ordo_jobs::option_values(&opt))
                            .await
                            .unwrap_or_else(|| Err("its values could not be read".into()));
                        let _ = tx.send(Some(read));
                    });
                    rx
                }
            };
            (rx, e.last.as_ref().map(|(r, _)| r.clone()))
        };
        let read = tokio::time::timeout(PAGE_WAIT, async {
            loop {
                if let Some(r) = rx.borrow_and_update().clone() {
                    return Some(r);
                }
                if rx.changed().await.is_err() {
                    return None;
                }
            }
        })
        .await
        .ok()
        .flatten();
        match read {
            Some(read) => {
                let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(e) = map.get_mut(&key) {
                    e.last = Some((read.clone(), Instant::now()));
                    e.pending = None;
                }
                shown(read)
            }
            // Still reading: the last values known, or unavailable for now. The refresh
            // goes on; the next page gets its result.
            None => match last {
                Some(r) => shown(r),
                None => Shown::Unavailable(
                    "its values source has not answered yet: reload the page in a moment".into(),
                ),
            },
        }
    }
}

fn shown(read: Read) -> Shown {
    match read {
        Ok(v) => Shown::Values(v),
        Err(e) => Shown::Unavailable(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(cmd: &str) -> Arc<Job> {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "targets: all\noptions:\n  env: {{ values_from: {{ command: [/bin/sh, -c, {cmd:?}], timeout: 30s }} }}\nsteps:\n  - command: 'true'\n"
        );
        std::fs::write(dir.path().join("j.yaml"), text).unwrap();
        Arc::new(ordo_jobs::load_job(dir.path(), "j").unwrap().unwrap())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_slow_source_never_holds_a_page_and_is_read_once_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let count = dir.path().join("count");
        let slow = job(&format!(
            "echo x >> {}; sleep 3; echo PROD; echo TEST",
            count.display()
        ));
        let cache = Arc::new(ValuesCache::default());
        let started = Instant::now();
        // Five pages at once: none waits the command's 3 s, one command runs.
        let mut pages = Vec::new();
        for _ in 0..5 {
            let (cache, slow) = (cache.clone(), slow.clone());
            pages.push(tokio::spawn(async move { cache.shown(&slow).await }));
        }
        for p in pages {
            assert!(matches!(p.await.unwrap()[0], Shown::Unavailable(_)));
        }
        assert!(started.elapsed() < Duration::from_secs(3));
        // Once read, the values are served from the cache at once.
        tokio::time::sleep(Duration::from_millis(3500)).await;
        let again = cache.shown(&slow).await;
        assert_eq!(again[0], Shown::Values(vec!["PROD".into(), "TEST".into()]));
        let runs = std::fs::read_to_string(&count).unwrap();
        assert_eq!(runs.lines().count(), 1, "one refresh for every page");
    }
}
