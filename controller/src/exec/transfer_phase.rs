//! A scenario's transfer, the first phase of its run, bounded by the scenario's
//! `timeout`.

use ordo_jobs::Job;
use ordo_jobs::transfer::TransferSpec;
use tokio_util::sync::CancellationToken;

use super::phases::Running;

impl Running<'_> {
    /// Runs the transfer; its outcome becomes the run's summary, a failure or a timeout
    /// its error. A files' server or a partner that hangs is stopped at the scenario's
    /// `timeout`, as a step would be.
    pub(super) async fn run_transfer(
        &mut self,
        job: &Job,
        spec: &TransferSpec,
        cancel: &CancellationToken,
    ) {
        let stop = cancel.child_token();
        let ran = crate::transfer::run(
            self.env,
            job,
            spec,
            &self.id,
            self.launch.terminal,
            self.launch.acks_only,
            &stop,
        );
        let deadline = async {
            match job.timeout {
                Some(t) => tokio::time::sleep(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(ran);
        let ran = tokio::select! {
            r = &mut ran => r,
            () = deadline => {
                self.timed_out = true;
                stop.cancel();
                ran.await
            }
        };
        let timed_out = job.timeout.filter(|_| self.timed_out).map(|t| {
            format!(
                "transfer timed out after {} (the scenario's timeout) and was stopped",
                humantime::format_duration(t)
            )
        });
        if let Some(why) = &timed_out
            && self.launch.terminal
        {
            say!("{why}");
        }
        match ran {
            Ok(o) => {
                let summary = o.summary(spec.direction);
                if timed_out.is_some() || !o.ok() {
                    self.step_error = Some(timed_out.unwrap_or(format!("transfer: {summary}")));
                }
                self.transfer_summary = Some(summary);
            }
            Err(e) => self.step_error = Some(timed_out.unwrap_or(format!("transfer: {e:#}"))),
        }
    }
}
