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
        tokio::select! {
            status = work => {
                let status = status?;
                Ok(match (status.code(), std::os::unix::process::ExitStatusExt::signal(&status)) {
                    (Some(c), _) => ExitStatus::Code(c),
                    (None, Some(s)) => ExitStatus::Signal(s.to_string()),
                    _ => ExitStatus::Unknown,
                })
            }
            _ = cancel.cancelled() => Err(TransportError::Cancelled),
        }
    }
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
