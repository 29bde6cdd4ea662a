//! What a session reports: a command's output chunks and exit status, a collect's tar
//! stream and notes.

use std::fmt;

use bytes::Bytes;
use ordo_proto::shell;

/// A chunk of a command's output, or (shell transports) the process group it runs in.
#[derive(Debug, Clone)]
pub enum ExecEvent {
    Stdout(Bytes),
    Stderr(Bytes),
    /// The command's process group and session leader on the server: its pid, its start
    /// time (field 22 of `/proc/<pid>/stat`, empty when unknown) and the user its processes
    /// are signalled as (none: the login user). What a later controller stops if this one
    /// dies before the command ends.
    Started {
        pid: u32,
        start: String,
        kill_as: Option<String>,
    },
}

/// What `fetch` sends back.
#[derive(Debug, Clone)]
pub enum FetchEvent {
    /// The next bytes of the tar stream.
    Tar(Bytes),
    /// A file that was not sent (over the size limit), by path.
    TooBig(String),
    /// Anything else the other side said.
    Note(String),
}

/// A command for a server: its shell script text, its environment (never on a command
/// line: stdin or the agent's request), and whom it runs as.
#[derive(Debug, Clone, Copy)]
pub struct Command<'a> {
    pub text: &'a str,
    pub env: &'a [(String, String)],
    pub run_as: Option<&'a shell::RunAsSpec>,
}

impl<'a> Command<'a> {
    /// `text` as the login user, without variables.
    pub fn plain(text: &'a str) -> Command<'a> {
        Command {
            text,
            env: &[],
            run_as: None,
        }
    }
}

/// What to collect after a step, for [`Session::exec_then_collect`].
pub struct CollectRequest<'a> {
    pub patterns: &'a [String],
    pub max_file_size: u64,
    /// A run folder to remove afterwards.
    pub cleanup: Option<&'a str>,
}

/// What a line on the collect command's stderr means.
pub fn collect_note(line: String) -> Option<FetchEvent> {
    match line.strip_prefix(shell::TOO_BIG_MARKER) {
        Some(f) => Some(FetchEvent::TooBig(f.to_string())),
        None if line.contains("Removing leading") || line.trim().is_empty() => None,
        None => Some(FetchEvent::Note(line)),
    }
}

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitStatus {
    Code(i32),
    Signal(String),
    /// The channel closed without an exit status.
    Unknown,
}

impl ExitStatus {
    pub fn success(&self) -> bool {
        *self == ExitStatus::Code(0)
    }

    pub fn code(&self) -> Option<i32> {
        match self {
            ExitStatus::Code(c) => Some(*c),
            _ => None,
        }
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitStatus::Code(c) => write!(f, "exit code {c}"),
            ExitStatus::Signal(s) => write!(f, "killed by signal {s}"),
            ExitStatus::Unknown => f.write_str("ended without an exit status"),
        }
    }
}
