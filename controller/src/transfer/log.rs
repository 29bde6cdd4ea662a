//! The scenario's human-readable logs.

use std::io::Write as _;
use std::path::PathBuf;

use crate::project::Env;
use crate::store::LogLine;

/// The scenario's human-readable log: `last.log` is the last run that did something
/// (sent, failed, skipped, acknowledged or received a file), `YYYYMMDD.log` the day's such
/// runs; a run that found nothing only goes to the execution's log. Every line also goes
/// to the execution's log (and the terminal).
pub(super) struct ScenarioLog<'a> {
    env: &'a Env,
    execution_id: &'a str,
    dir: PathBuf,
    /// Lines waiting for the first event, then the open files.
    pending: Vec<String>,
    files: Option<(std::fs::File, std::fs::File)>,
    seq: i64,
    terminal: bool,
}

impl<'a> ScenarioLog<'a> {
    pub(super) async fn open(
        env: &'a Env,
        dir: &std::path::Path,
        execution_id: &'a str,
        terminal: bool,
    ) -> anyhow::Result<ScenarioLog<'a>> {
        std::fs::create_dir_all(dir)?;
        let seq = env.store.last_log_seq(execution_id).await?;
        Ok(ScenarioLog {
            env,
            execution_id,
            dir: dir.to_path_buf(),
            pending: Vec::new(),
            files: None,
            seq,
            terminal,
        })
    }

    /// A line that makes the run worth `last.log`.
    pub(super) async fn line(&mut self, text: impl Into<String>) {
        self.write(text.into(), true).await
    }

    /// A line that alone does not (the header, "no file to send", the end).
    pub(super) async fn quiet(&mut self, text: impl Into<String>) {
        self.write(text.into(), false).await
    }

    async fn write(&mut self, text: String, event: bool) {
        let now = chrono::Local::now();
        let stamped = format!("{} {text}\n", now.format("%Y-%m-%d %H:%M:%S"));
        if self.files.is_none() && event {
            match self.open_files() {
                Ok(f) => self.files = Some(f),
                Err(e) => tracing::warn!("transfer log in {}: {e}", self.dir.display()),
            }
        }
        match self.files.as_mut() {
            Some((last, day)) => {
                let _ = last.write_all(stamped.as_bytes());
                let _ = day.write_all(stamped.as_bytes());
            }
            None => self.pending.push(stamped),
        }
        if self.terminal {
            say!("{} {text}", now.format("%H:%M:%S"));
        }
        self.seq += 1;
        let l = LogLine {
            seq: self.seq,
            node: "transfer".into(),
            step: 0,
            stream: "stdout".into(),
            ts: now.timestamp_millis(),
            line: text,
        };
        if let Err(e) = self.env.store.insert_logs(self.execution_id, &[l]).await {
            tracing::warn!("transfer log: {e}");
        }
    }

    fn open_files(&mut self) -> std::io::Result<(std::fs::File, std::fs::File)> {
        let mut last = std::fs::File::create(self.dir.join("last.log"))?;
        let mut day = std::fs::OpenOptions::new().create(true).append(true).open(
            self.dir
                .join(format!("{}.log", chrono::Local::now().format("%Y%m%d"))),
        )?;
        for l in self.pending.drain(..) {
            last.write_all(l.as_bytes())?;
            day.write_all(l.as_bytes())?;
        }
        Ok((last, day))
    }

    pub(super) fn finish(&mut self) {
        if let Some((last, day)) = &self.files {
            let _ = last.sync_all();
            let _ = day.sync_all();
        }
    }
}
