//! What the operator sees: live lines with time and server, a progress bar on a terminal,
//! and the summary table at the end.

use std::io::{BufWriter, IsTerminal, Stdout, Write};
use std::time::Duration;

use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use indicatif::{ProgressBar, ProgressStyle};

use crate::clock::{now_ms, time_of_day};
use crate::fanout::{Event, NodeResult};

pub struct Terminal {
    bar: Option<ProgressBar>,
    width: usize,
    running: usize,
    /// Lines are buffered and flushed whenever no event is waiting (see `flush`).
    out: BufWriter<Stdout>,
}

impl Terminal {
    pub fn new(total: usize, names_width: usize, progress: bool) -> Self {
        let bar = (progress && std::io::stderr().is_terminal()).then(|| {
            let pb = ProgressBar::new(total as u64);
            pb.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} servers {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            pb.enable_steady_tick(Duration::from_millis(120));
            pb
        });
        Terminal {
            bar,
            width: names_width.min(32),
            running: 0,
            out: BufWriter::with_capacity(64 * 1024, std::io::stdout()),
        }
    }

    fn print(&mut self, text: String) {
        match &self.bar {
            Some(pb) => pb.println(text),
            None => {
                let _ = writeln!(self.out, "{text}");
            }
        }
    }

    /// Writes out buffered lines; call it when no event is waiting.
    pub fn flush(&mut self) {
        let _ = self.out.flush();
    }

    fn status(&self, failed: usize) {
        if let Some(pb) = &self.bar {
            let mut msg = format!("({} running", self.running);
            if failed > 0 {
                msg.push_str(&format!(", {failed} failed"));
            }
            msg.push(')');
            pb.set_message(msg);
        }
    }

    pub fn event(&mut self, ev: &Event, failed: usize) {
        match ev {
            Event::NodeStarted { .. } => {
                self.running += 1;
                self.status(failed);
            }
            Event::Line {
                node,
                stderr,
                ts,
                line,
                ..
            } => {
                let sep = if *stderr { '!' } else { '|' };
                self.print(format!(
                    "{} {:<w$} {sep} {line}",
                    time_of_day(*ts),
                    node,
                    w = self.width
                ));
            }
            Event::Warning { node, message } => {
                self.print(format!(
                    "{} {:<w$} ! warning: {message}",
                    time_of_day(now_ms()),
                    node,
                    w = self.width
                ));
            }
            Event::StepDone {
                node,
                label,
                outcome,
                duration,
                ..
            } if outcome != "exit code 0" => {
                self.print(format!(
                    "{} {:<w$} ! {label}: {outcome} ({:.1}s)",
                    time_of_day(now_ms()),
                    node,
                    duration.as_secs_f64(),
                    w = self.width
                ));
            }
            Event::NodeDone(r) => {
                if r.started_at.is_some() {
                    self.running = self.running.saturating_sub(1);
                }
                if let Some(pb) = &self.bar {
                    pb.inc(1);
                }
                self.status(failed);
                if !r.status.is_ok() {
                    let err = r.error.as_deref().unwrap_or("");
                    self.print(format!(
                        "{} {:<w$} ! {}: {err}",
                        time_of_day(now_ms()),
                        r.node,
                        r.status.as_str(),
                        w = self.width
                    ));
                }
            }
            _ => {}
        }
    }

    pub fn finish(&mut self) {
        self.flush();
        if let Some(pb) = &self.bar {
            pb.finish_and_clear();
        }
    }
}

/// The per-server summary as a table.
pub fn summary_table(results: &[NodeResult]) -> String {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    // On a terminal, long errors wrap within its width instead of overflowing it.
    t.set_content_arrangement(ContentArrangement::Dynamic);
    t.set_header(vec![
        "SERVER", "STATUS", "EXIT", "DURATION", "FILES", "ERROR",
    ]);
    for r in results {
        t.add_row(vec![
            r.node.clone(),
            r.status.as_str().to_string(),
            r.exit_code
                .map(|c| c.to_string())
                .unwrap_or_else(|| "-".into()),
            r.duration()
                .map(|d| format!("{:.1}s", d.as_secs_f64()))
                .unwrap_or_else(|| "-".into()),
            if r.files.is_empty() {
                "0".to_string()
            } else {
                format!(
                    "{} ({})",
                    r.files.len(),
                    ordo_jobs::units::format_size(r.bytes)
                )
            },
            r.error.clone().unwrap_or_default(),
        ]);
    }
    t.to_string()
}

/// One member (job step) of a group job, as the group's summary shows it.
pub struct MemberLine {
    pub step: String,
    pub job: String,
    /// Its execution, or `-` when it did not run.
    pub execution: String,
    pub status: String,
}

/// The summary of a job whose steps are all jobs: its members in order.
pub fn members_table(members: &[MemberLine]) -> String {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_content_arrangement(ContentArrangement::Dynamic);
    t.set_header(vec!["STEP", "JOB", "EXECUTION", "STATUS"]);
    for m in members {
        t.add_row(vec![
            m.step.clone(),
            m.job.clone(),
            m.execution.clone(),
            m.status.clone(),
        ]);
    }
    t.to_string()
}
