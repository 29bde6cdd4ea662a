//! How an execution stands, as the history stores it.

use std::fmt;
use std::str::FromStr;

/// The state of one execution: `running` until it ends in one of the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExecutionStatus {
    #[default]
    Running,
    Succeeded,
    /// Some server failed, a job step failed, or it could not start.
    Failed,
    /// Stopped by Ctrl-C, an abort or a shutdown.
    Aborted,
    /// The job's timeout stopped it.
    TimedOut,
    /// Its controller stopped during the run (see the sweep).
    Interrupted,
}

impl ExecutionStatus {
    pub const ALL: [ExecutionStatus; 6] = [
        ExecutionStatus::Running,
        ExecutionStatus::Succeeded,
        ExecutionStatus::Failed,
        ExecutionStatus::Aborted,
        ExecutionStatus::TimedOut,
        ExecutionStatus::Interrupted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionStatus::Running => "running",
            ExecutionStatus::Succeeded => "succeeded",
            ExecutionStatus::Failed => "failed",
            ExecutionStatus::Aborted => "aborted",
            ExecutionStatus::TimedOut => "timed-out",
            ExecutionStatus::Interrupted => "interrupted",
        }
    }

    pub fn is_running(self) -> bool {
        self == ExecutionStatus::Running
    }

    pub fn succeeded(self) -> bool {
        self == ExecutionStatus::Succeeded
    }

    /// As read from the database: a value this version does not know reads as failed.
    pub(super) fn from_db(s: &str) -> ExecutionStatus {
        s.parse().unwrap_or(ExecutionStatus::Failed)
    }
}

impl fmt::Display for ExecutionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Compares with the text the history stores (`"succeeded"`), as reports and tests read it.
impl PartialEq<&str> for ExecutionStatus {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl serde::Serialize for ExecutionStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl FromStr for ExecutionStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        ExecutionStatus::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| {
                let known: Vec<&str> = ExecutionStatus::ALL.iter().map(|v| v.as_str()).collect();
                format!("unknown status `{s}` (known: {})", known.join(", "))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_reads_back() {
        for s in ExecutionStatus::ALL {
            assert_eq!(s.as_str().parse::<ExecutionStatus>(), Ok(s));
        }
        assert!("done".parse::<ExecutionStatus>().is_err());
        assert_eq!(ExecutionStatus::from_db("done"), ExecutionStatus::Failed);
    }
}
