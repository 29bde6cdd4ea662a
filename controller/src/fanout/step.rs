//! One step's run on a server: what runs (its number, command, timeout) and how it
//! ended. The types the step runners (`step_exec.rs`, `wait_for.rs`) share.

use std::time::Duration;

use crate::session::{Command, ExitStatus};

/// How a step's command ended.
pub(super) enum StepOutcome {
    Exited(ExitStatus),
    StepTimeout(Duration),
    Cancelled,
    /// The server refused the command (an agent's policy): it did not run.
    Refused(String),
    Lost(String),
    /// A `wait_for` step saw no matching line: why.
    NoMatch(String),
}

impl StepOutcome {
    pub(super) fn describe(&self) -> String {
        match self {
            StepOutcome::Exited(st) => st.to_string(),
            StepOutcome::StepTimeout(t) => {
                format!("timed out after {}", humantime::format_duration(*t))
            }
            StepOutcome::Cancelled => "stopped".into(),
            StepOutcome::Refused(e) => format!("refused: {e}"),
            StepOutcome::Lost(e) => format!("connection lost: {e}"),
            StepOutcome::NoMatch(e) => e.clone(),
        }
    }
}

/// One step's command on a server, as the engine runs it: the step's number (from 1), the
/// command (text, environment, user), and its timeout.
pub(super) struct StepRun<'a> {
    pub(super) number: usize,
    pub(super) cmd: Command<'a>,
    pub(super) timeout: Option<Duration>,
}
