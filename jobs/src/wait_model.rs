//! `wait_for` steps as a job file describes them.

use crate::template::Template;

/// A `wait_for` step: succeeds on a server when a line of the file (followed like `tail
/// -F`, across rotation) or of the command's output matches `pattern` within `within`.
#[derive(Debug, Clone)]
pub struct WaitFor {
    pub source: WaitSource,
    /// A regular expression; the values of its `${...}` variables are matched literally.
    pub pattern: Template,
    /// The pattern's named groups (`(?P<ip>...)`), which later steps read as
    /// `${step.N.match.NAME}`.
    pub groups: Vec<String>,
    /// How long to wait (a duration once expanded: `30s`, `${option.delai}s`).
    pub within: Template,
    pub from: WaitFrom,
}

#[derive(Debug, Clone)]
pub enum WaitSource {
    /// A file on the server, followed by name.
    File(Template),
    /// Shell text whose output is read (`journalctl -f -u dovecot`).
    Command(Template),
}

/// Where reading a file starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitFrom {
    /// The whole file, then what is added.
    Start,
    /// Only lines written after the step started (the default).
    End,
}

impl WaitFrom {
    pub fn as_str(self) -> &'static str {
        match self {
            WaitFrom::Start => "start",
            WaitFrom::End => "end",
        }
    }
}
