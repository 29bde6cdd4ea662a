//! Where a scenario's files are: on the controller, or on a server of the inventory
//! (`transfer: { on: filer1 }`, reached over SSH or its agent) — listed, moved to the
//! backup folder and read there; only the sending happens from the controller.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use ordo_jobs::transfer::Collision;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::files::{self, Found};
use crate::project::Env;
use crate::session::{ExecEvent, Session, exec_collect};

pub enum Source {
    Local,
    Remote {
        node: String,
        session: Box<Session>,
        /// The scenario's: an abort or its `timeout` stops a command that hangs.
        cancel: CancellationToken,
    },
}

/// The longest a command on the files' server may take (listing, backup): a hung mount or
/// a stuck server never holds the scenario for ever, even without a `timeout`.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(600);

/// What a command stopped by the scenario's cancel token says.
const STOPPED: &str = "stopped while the files' server was working (the run was aborted or \
                       its timeout passed)";

/// Runs a short command on the files' server within [`COMMAND_TIMEOUT`], or until the
/// scenario is stopped.
async fn bounded(
    session: &Session,
    script: &str,
    cancel: &CancellationToken,
) -> Result<(crate::session::ExitStatus, Vec<u8>, Vec<u8>), String> {
    // The command's own token: cancelling it ends the command (an agent kills it; over
    // SSH the channel is closed).
    let stop = cancel.child_token();
    tokio::select! {
        r = exec_collect(session, script, Bytes::new(), &stop) => {
            if cancel.is_cancelled() {
                return Err(STOPPED.into());
            }
            r.map_err(|e| e.to_string())
        }
        _ = tokio::time::sleep(COMMAND_TIMEOUT) => {
            stop.cancel();
            Err(format!(
                "the files' server did not answer within {}",
                humantime::format_duration(COMMAND_TIMEOUT)
            ))
        }
    }
}

/// What became of a file at the backup step.
pub enum Backed {
    /// Moved there (the path as shown, the path to read the payload from locally).
    Moved { shown: String, overwrote: bool },
    /// Left in place (collision: skip).
    Skipped,
}

impl Source {
    pub async fn open(
        env: &Env,
        on: Option<&str>,
        cancel: &CancellationToken,
    ) -> Result<Source, String> {
        let Some(name) = on else {
            return Ok(Source::Local);
        };
        let node = env
            .inventory
            .nodes
            .iter()
            .find(|n| n.name == name)
            .ok_or_else(|| format!("server `{name}` is not in the inventory"))?
            .clone();
        let settings =
            crate::session::settings::for_nodes(&env.cfg, std::slice::from_ref(&node), false)
                .map_err(|e| e.0)?;
        let session = tokio::select! {
            s = Session::connect(&node, &settings) => s.map_err(|e| format!("{name}: {e}"))?,
            _ = cancel.cancelled() => return Err(format!("{name}: {STOPPED}")),
        };
        Ok(Source::Remote {
            node: name.to_string(),
            session: Box::new(session),
            cancel: cancel.clone(),
        })
    }

    /// `server:` before remote paths, for logs.
    pub fn prefix(&self) -> String {
        match self {
            Source::Local => String::new(),
            Source::Remote { node, .. } => format!("{node}:"),
        }
    }

    pub async fn find(
        &self,
        dir: &Path,
        matcher: &globset::GlobMatcher,
    ) -> Result<Vec<Found>, String> {
        match self {
            Source::Local => files::find(dir, matcher).map_err(|e| e.to_string()),
            Source::Remote {
                session, cancel, ..
            } => {
                let d = ordo_proto::shell::quote(&dir.display().to_string());
                let script = format!(
                    "cd {d} || exit 3\nfor f in * .[!.]*; do\n  if [ -f \"$f\" ] && [ ! -L \"$f\" ]; then printf '%s\\t%s\\t%s\\n' \"$(stat -c %Y -- \"$f\")\" \"$(stat -c %s -- \"$f\")\" \"$f\"; fi\ndone\n"
                );
                let (st, out, err) = bounded(session, &script, cancel).await?;
                if !st.success() {
                    return Err(format!(
                        "cannot read {}: {}",
                        dir.display(),
                        String::from_utf8_lossy(&err).trim()
                    ));
                }
                let mut found: Vec<(i64, Found)> = String::from_utf8_lossy(&out)
                    .lines()
                    .filter_map(|l| {
                        let mut it = l.splitn(3, '\t');
                        let mtime: i64 = it.next()?.parse().ok()?;
                        let size: u64 = it.next()?.parse().ok()?;
                        let name = it.next()?.to_string();
                        matcher.is_match(Path::new(&name)).then(|| {
                            (
                                mtime,
                                Found {
                                    path: dir.join(&name),
                                    name,
                                    size,
                                },
                            )
                        })
                    })
                    .collect();
                found.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.name.cmp(&b.1.name)));
                Ok(found.into_iter().map(|(_, f)| f).collect())
            }
        }
    }

    /// Moves the file into the backup folder by the collision policy.
    pub async fn backup(
        &self,
        f: &Found,
        dir: &Path,
        policy: Collision,
    ) -> Result<(Backed, PathBuf), String> {
        match self {
            Source::Local => {
                let Some(target) = files::backup_target(dir, &f.name, policy) else {
                    return Ok((Backed::Skipped, PathBuf::new()));
                };
                let overwrote = policy == Collision::Overwrite && target.exists();
                files::move_file(&f.path, &target)
                    .map_err(|e| format!("cannot move to {}: {e}", target.display()))?;
                Ok((
                    Backed::Moved {
                        shown: target.display().to_string(),
                        overwrote,
                    },
                    target,
                ))
            }
            Source::Remote { session, .. } => {
                let q = |p: &Path| ordo_proto::shell::quote(&p.display().to_string());
                let script = format!(
                    "src={src}; t={t}; over=\n\
                     if [ -e \"$t\" ]; then\n\
                       case {policy} in\n\
                         overwrite) over=1 ;;\n\
                         skip) echo SKIP; exit 0 ;;\n\
                         *) i=1; while [ -e \"$t.$i\" ]; do i=$((i+1)); done; t=\"$t.$i\" ;;\n\
                       esac\n\
                     fi\n\
                     mkdir -p {dir} && mv -f -- \"$src\" \"$t\" && printf 'MOVED%s %s\\n' \"$over\" \"$t\"\n",
                    src = q(&f.path),
                    t = q(&dir.join(&f.name)),
                    dir = q(dir),
                    policy = policy.as_str(),
                );
                // Never stopped half-way by the scenario's cancel: a move that happened
                // must be recorded (a file in the backup folder the history does not know
                // would never be sent again). Bounded by the command's own limit only.
                let (st, out, err) = bounded(session, &script, &CancellationToken::new()).await?;
                let out = String::from_utf8_lossy(&out);
                let line = out.lines().next().unwrap_or("");
                if line == "SKIP" {
                    return Ok((Backed::Skipped, PathBuf::new()));
                }
                let Some((tag, path)) = line.split_once(' ') else {
                    return Err(format!(
                        "cannot move {} to {} ({st}): {}",
                        f.path.display(),
                        dir.display(),
                        String::from_utf8_lossy(&err).trim()
                    ));
                };
                Ok((
                    Backed::Moved {
                        shown: format!("{}{path}", self.prefix()),
                        overwrote: tag == "MOVED1",
                    },
                    PathBuf::from(path),
                ))
            }
        }
    }

    /// A local file with the backup's content: the backup itself on the controller, a copy
    /// in `work` from a server (size checked).
    pub async fn local_copy(
        &self,
        backup: &Path,
        size: u64,
        work: &Path,
    ) -> Result<PathBuf, String> {
        match self {
            Source::Local => Ok(backup.to_path_buf()),
            Source::Remote {
                session, cancel, ..
            } => {
                tokio::fs::create_dir_all(work)
                    .await
                    .map_err(|e| e.to_string())?;
                let name = backup
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "file".into());
                let dest = work.join(format!("source-{name}"));
                let mut file = tokio::fs::File::create(&dest)
                    .await
                    .map_err(|e| e.to_string())?;
                let (tx, mut rx) = mpsc::channel::<ExecEvent>(64);
                let stop = cancel.child_token();
                let cmd = format!(
                    "exec cat -- {}",
                    ordo_proto::shell::quote(&backup.display().to_string())
                );
                // Bounded too: the command's time, plus the file at 100 KiB/s at least.
                let limit = COMMAND_TIMEOUT + Duration::from_secs(size / (100 * 1024));
                let run = async move {
                    let tx = tx;
                    let command = crate::session::Command::plain(&cmd);
                    tokio::select! {
                        r = session.exec(&command, &tx, &stop) => r,
                        _ = tokio::time::sleep(limit) => {
                            stop.cancel();
                            Err(crate::session::TransportError::Io(std::io::Error::other(format!(
                                "copying {} took longer than {}",
                                cmd.trim_start_matches("exec cat -- "),
                                humantime::format_duration(limit)
                            ))))
                        }
                    }
                };
                let write = async {
                    let mut err = Vec::new();
                    let mut failed: Option<std::io::Error> = None;
                    while let Some(ev) = rx.recv().await {
                        match ev {
                            ExecEvent::Stdout(b) => {
                                if failed.is_none()
                                    && let Err(e) = file.write_all(&b).await
                                {
                                    failed = Some(e);
                                }
                            }
                            ExecEvent::Stderr(b) => err.extend_from_slice(&b),
                            ExecEvent::Started { .. } => {}
                        }
                    }
                    (err, failed)
                };
                let (st, (err, failed)) = tokio::join!(run, write);
                if cancel.is_cancelled() {
                    return Err(STOPPED.into());
                }
                let st = st.map_err(|e| e.to_string())?;
                if let Some(e) = failed {
                    return Err(format!("{}: {e}", dest.display()));
                }
                file.sync_all().await.map_err(|e| e.to_string())?;
                if !st.success() {
                    return Err(format!(
                        "cannot read {}: {}",
                        backup.display(),
                        String::from_utf8_lossy(&err).trim()
                    ));
                }
                let got = tokio::fs::metadata(&dest)
                    .await
                    .map_err(|e| e.to_string())?
                    .len();
                if got != size {
                    return Err(format!(
                        "read {got} bytes of {}, expected {size}",
                        backup.display()
                    ));
                }
                Ok(dest)
            }
        }
    }

    pub async fn close(self) {
        if let Source::Remote { session, .. } = self {
            (*session).close().await;
        }
    }
}
