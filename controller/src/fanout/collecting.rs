//! A server's collect as a command of its own, and the report of any collect (its
//! notes, timeout, files) into the server's result.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Event;
use super::node::NodeRun;
use crate::collect::{self, CollectPlan, CollectSink, SinkReport};
use crate::session::{ExitStatus, FetchEvent, Session, TransportError};

impl NodeRun<'_> {
    /// The globs to collect, expanded for this server, and who reads them.
    pub(super) fn collect_plan(
        &self,
        session: &Session,
        spec: &ordo_jobs::CollectSpec,
    ) -> Result<CollectPlan, String> {
        let patterns = spec
            .paths
            .iter()
            .map(|t| t.expand(&self.cx()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        // On an agent there is no login user: the collect reads as the run's user.
        let run_as = if spec.run_as || matches!(session, Session::Agent(_)) {
            self.run_as(session, self.req.job.run_as.as_ref())?
        } else {
            None
        };
        Ok(CollectPlan {
            patterns,
            run_as,
            max_file_size: spec.max_file_size,
            max_total_size: spec.max_total_size,
            timeout: spec.timeout,
        })
    }

    pub(super) async fn collect_sink(&self, plan: &CollectPlan) -> CollectSink {
        CollectSink::start(
            self.req.exec_dir.join(self.node.folder_name()),
            &plan.patterns,
            plan.max_total_size,
            plan.max_file_size,
        )
        .await
    }

    /// Collects into the server's folder with a command of its own; true when the run
    /// folder was removed with it.
    pub(super) async fn collect(
        &mut self,
        session: &Session,
        plan: &CollectPlan,
        run_dir: &str,
    ) -> bool {
        let mut sink = self.collect_sink(plan).await;
        let (tx, mut rx) = mpsc::channel::<FetchEvent>(64);
        // Ctrl-C or the job's timeout stop the collect, and so does its own timeout.
        let token = self.req.cancel.child_token();
        let fetched = CancellationToken::new();
        let mut timed_out = None;
        let fetch = async {
            let tx = tx;
            let r = session
                .fetch(
                    &plan.patterns,
                    plan.max_file_size,
                    plan.run_as.as_ref(),
                    Some(run_dir).filter(|_| self.uploaded),
                    &tx,
                    &token,
                )
                .await;
            fetched.cancel();
            r
        };
        let timer = collect::timer(plan.timeout, &fetched, &token, &mut timed_out);
        let route = async {
            while let Some(ev) = rx.recv().await {
                sink.event(ev).await;
            }
        };
        let (status, (), ()) = tokio::join!(fetch, timer, route);
        let received = sink.finish().await;
        self.report_collect(status, received, timed_out).await
    }

    /// Reports a finished collect; true when the run folder was removed with it.
    pub(super) async fn report_collect(
        &mut self,
        status: Result<(ExitStatus, bool), TransportError>,
        received: SinkReport,
        timed_out: Option<Duration>,
    ) -> bool {
        for note in received.notes {
            self.warn(note).await;
        }
        if let Some(t) = timed_out {
            self.warn(format!(
                "collect timed out after {} (collect: timeout) and was stopped; files received whole are kept",
                humantime::format_duration(t)
            ))
            .await;
        }
        let cleaned = match status {
            Err(TransportError::Cancelled) if timed_out.is_some() => false,
            Ok((st, cleaned)) => {
                if !st.success() {
                    self.warn(format!("collect command ended with {st}")).await;
                }
                cleaned
            }
            Err(e) => {
                self.warn(format!("collect failed: {e}")).await;
                false
            }
        };
        match received.unpacked {
            Ok(Ok(u)) => {
                for w in u.warnings {
                    self.warn(w).await;
                }
                self.result.bytes = u.files.iter().map(|f| f.size).sum();
                self.result.files = u.files;
            }
            Ok(Err(e)) => {
                self.warn(format!(
                    "collect: cannot unpack into {}: {e}",
                    received.dest.display()
                ))
                .await
            }
            Err(e) => self.warn(format!("collect: {e}")).await,
        }
        if self.result.files.is_empty() {
            let _ = std::fs::remove_dir(&received.dest);
        }
        let _ = self
            .events
            .send(Event::Collected {
                node: self.node.name.clone(),
                files: self.result.files.len(),
            })
            .await;
        cleaned
    }
}
