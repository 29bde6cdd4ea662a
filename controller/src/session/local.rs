//! The `local` transport: the same commands, run on the controller host with `/bin/sh`.

use std::process::Stdio;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{ExecEvent, ExitStatus, TransportError};

pub struct LocalSession {
    user: String,
}

impl Default for LocalSession {
    fn default() -> Self {
        Self::new()
    }
}

impl LocalSession {
    pub fn new() -> Self {
        LocalSession {
            user: current_user(),
        }
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    pub async fn exec(
        &self,
        command: &str,
        stdin: Bytes,
        out: &mpsc::Sender<ExecEvent>,
        cancel: &CancellationToken,
    ) -> Result<ExitStatus, TransportError> {
        let mut child = Command::new("/bin/sh")
            .arg("-c")
            .arg(command)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so that a kill reaches the whole tree, as over SSH.
            .process_group(0)
            .kill_on_drop(true)
            .spawn()?;
        let watchdog = child.id().and_then(|pgid| watchdog(pgid).ok());
        let mut child_in = child.stdin.take().expect("piped");
        let mut child_out = child.stdout.take().expect("piped");
        let mut child_err = child.stderr.take().expect("piped");
        let feed = async move {
            // A command that does not read its stdin closes it: not an error.
            let _ = child_in.write_all(&stdin).await;
            drop(child_in);
        };
        let pump = |mut r: Box<dyn tokio::io::AsyncRead + Unpin + Send>, err: bool| {
            let out = out.clone();
            async move {
                let mut buf = vec![0u8; 32 * 1024];
                loop {
                    match r.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            let b = Bytes::copy_from_slice(&buf[..n]);
                            let ev = if err {
                                ExecEvent::Stderr(b)
                            } else {
                                ExecEvent::Stdout(b)
                            };
                            if out.send(ev).await.is_err() {
                                break;
                            }
                        }
                    }
                }
            }
        };
        let work = async {
            tokio::join!(
                feed,
                pump(Box::new(&mut child_out), false),
                pump(Box::new(&mut child_err), true)
            );
            child.wait().await
        };
        let result = tokio::select! {
            status = work => {
                let status = status?;
                Ok(match (status.code(), std::os::unix::process::ExitStatusExt::signal(&status)) {
                    (Some(c), _) => ExitStatus::Code(c),
                    (None, Some(s)) => ExitStatus::Signal(s.to_string()),
                    _ => ExitStatus::Unknown,
                })
            }
            _ = cancel.cancelled() => Err(TransportError::Cancelled),
        };
        // The step is over (or stopped by the caller): the watchdog goes first, so that
        // closing its pipe signals nothing.
        if let Some((mut w, pipe)) = watchdog {
            let _ = w.start_kill();
            let _ = w.wait().await;
            drop(pipe);
        }
        result
    }
}

/// A watchdog for a local step's process group: a small shell reading a pipe this
/// process holds. If this controller dies (even by SIGKILL), the kernel closes the pipe,
/// the read returns, and the group is stopped (TERM, then KILL after 2 s): local steps
/// never outlive their controller. (`PR_SET_PDEATHSIG` would reach only the first
/// process, and fires when the spawning thread ends.)
fn watchdog(pgid: u32) -> std::io::Result<(tokio::process::Child, tokio::process::ChildStdin)> {
    let mut w = Command::new("/bin/sh")
        .arg("-c")
        .arg(r#"read -r _; kill -TERM "-$ORDO_PGID" 2>/dev/null; sleep 2; kill -KILL "-$ORDO_PGID" 2>/dev/null"#)
        .env("ORDO_PGID", pgid.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Not in the step's group: it outlives the group it stops.
        .process_group(0)
        .kill_on_drop(true)
        .spawn()?;
    let pipe = w.stdin.take().expect("piped");
    Ok((w, pipe))
}

/// The user this process runs as, by name when the system knows it.
pub fn current_user() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(|| {
            std::process::Command::new("id")
                .arg("-un")
                .output()
                .ok()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        })
        .unwrap_or_else(|| "root".to_string())
}
