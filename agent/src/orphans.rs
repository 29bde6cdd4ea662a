//! The process groups this agent started and has not seen end, kept in a small file, so
//! that an agent killed outright (SIGKILL, OOM) stops them when it starts again: nothing
//! a controller started keeps running unseen.
//!
//! The record starts with the machine's boot ID: after a reboot (a `state_dir` on a disk
//! that keeps it), its pids and start times name other processes, and it is ignored.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use nix::fcntl::{Flock, FlockArg};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// The groups running now, by process group id, with their start time.
pub struct RunningGroups {
    path: PathBuf,
    /// This boot's ID, the record's first line.
    boot: String,
    /// A plain mutex: held only to update the map and rewrite the small file.
    state: Mutex<State>,
}

struct State {
    groups: BTreeMap<i32, String>,
    /// The record, held open and rewritten in place: no file is made or renamed per
    /// command (with many agents on one machine, those serialise on the folder's lock).
    /// It is locked (`flock`) for the agent's life: a second agent given the same name and
    /// `state_dir` refuses to start instead of stopping this one's commands.
    file: Option<Flock<std::fs::File>>,
    /// What the last rewrite wrote: a shorter one is padded with spaces to this length,
    /// so that a crash between the write and the truncation leaves no cut line.
    written: usize,
}

/// This boot of the machine (`/proc/sys/kernel/random/boot_id`).
fn boot_id() -> Option<String> {
    let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    Some(id.trim().to_string()).filter(|id| !id.is_empty())
}

/// The record's groups, if it was written during this boot.
fn this_boots_lines(text: &str) -> Option<std::str::Lines<'_>> {
    let mut lines = text.lines();
    let recorded = lines.next()?.strip_prefix("boot ")?;
    (Some(recorded) == boot_id().as_deref()).then_some(lines)
}

/// When process `pid` started (clock ticks since boot): with the pid, one process.
fn start_ticks(pid: i32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19).map(str::to_string)
}

/// The record, if it can be trusted: a regular file (not a link) owned by this user and
/// writable by no one else, in a folder writable by no one else. Anything else could make
/// the agent kill a process group of someone's choosing: it is ignored (and said so).
fn trusted_record(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let me = nix::unistd::geteuid().as_raw();
    let private = |m: &std::fs::Metadata| m.uid() == me && m.mode() & 0o022 == 0;
    let file = std::fs::symlink_metadata(path).ok()?;
    let dir = path.parent().and_then(|d| std::fs::metadata(d).ok())?;
    if !file.is_file() || !private(&file) || !private(&dir) {
        tracing::warn!(
            "{}: not a private file of this agent's: commands it names are not stopped",
            path.display()
        );
        return None;
    }
    std::fs::read_to_string(path).ok()
}

impl RunningGroups {
    /// Stops the groups a previous life of this agent left running (those whose leader
    /// is still the same process), then starts an empty record at `path`. Refused while
    /// another agent process holds the record.
    pub fn recover(path: &Path) -> Result<RunningGroups, String> {
        held_by_another(path)?;
        let text = trusted_record(path);
        let lines = text.as_deref().and_then(|text| {
            let lines = this_boots_lines(text);
            if lines.is_none() && !text.is_empty() {
                tracing::warn!(
                    "{}: written before the machine last started: the commands it names are gone",
                    path.display()
                );
            }
            lines
        });
        if let Some(lines) = lines {
            for line in lines {
                let mut w = line.split_whitespace();
                let (Some(Ok(pgid)), Some(start)) = (w.next().map(str::parse::<i32>), w.next())
                else {
                    continue;
                };
                if pgid > 1 && start_ticks(pgid).as_deref() == Some(start) {
                    tracing::warn!(
                        pgid,
                        "stopping a command left running by a previous agent process"
                    );
                    let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
                }
            }
        }
        let groups = RunningGroups {
            path: path.to_path_buf(),
            boot: boot_id().unwrap_or_default(),
            state: Mutex::new(State {
                groups: BTreeMap::new(),
                file: new_record(path),
                written: 0,
            }),
        };
        groups.save(&mut groups.state.lock().expect("poisoned"));
        Ok(groups)
    }

    /// A command's group started (its leader is `pid`).
    pub fn started(&self, pid: u32) {
        let Ok(pid) = i32::try_from(pid) else { return };
        let Some(start) = start_ticks(pid) else {
            return;
        };
        let mut s = self.state.lock().expect("poisoned");
        s.groups.insert(pid, start);
        self.save(&mut s);
    }

    /// A command's group ended.
    pub fn ended(&self, pid: u32) {
        let Ok(pid) = i32::try_from(pid) else { return };
        let mut s = self.state.lock().expect("poisoned");
        if s.groups.remove(&pid).is_some() {
            self.save(&mut s);
        }
    }

    fn save(&self, s: &mut State) {
        use std::os::unix::fs::FileExt;
        // Removed under us (a cleanup of the folder): made again.
        if s.file.as_ref().is_some_and(|f| {
            f.metadata()
                .is_ok_and(|m| std::os::unix::fs::MetadataExt::nlink(&m) == 0)
        }) {
            s.file = new_record(&self.path);
            s.written = 0;
        }
        let Some(file) = &s.file else { return };
        let mut text: String = std::iter::once(format!("boot {}\n", self.boot))
            .chain(s.groups.iter().map(|(p, t)| format!("{p} {t}\n")))
            .collect();
        let len = text.len();
        text.extend(std::iter::repeat_n(' ', s.written.saturating_sub(len)));
        let written = file
            .write_all_at(text.as_bytes(), 0)
            .and_then(|()| file.set_len(len as u64));
        s.written = len;
        if let Err(e) = written {
            tracing::warn!(
                "cannot record running commands in {}: {e}",
                self.path.display()
            );
        }
    }
}

/// An error when another agent process holds the record at `path` (same name and
/// `state_dir`): starting would stop its commands.
fn held_by_another(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::OpenOptionsExt;
    let Ok(f) = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
        .open(path)
    else {
        return Ok(());
    };
    match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
        Ok(_) => Ok(()),
        Err((_, nix::Error::EWOULDBLOCK)) => Err(format!(
            "{}: another agent process with this name and state_dir is running: stop it first",
            path.display()
        )),
        Err(_) => Ok(()),
    }
}

/// The record made anew at `path`, private (0600), never through a link, and locked;
/// `None` (and a warning) when it cannot be.
fn new_record(path: &Path) -> Option<Flock<std::fs::File>> {
    use std::os::unix::fs::OpenOptionsExt;
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.is_file() || m.is_symlink()) {
        let _ = std::fs::remove_file(path);
    }
    let made = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
        .open(path);
    match made.and_then(|f| {
        Flock::lock(f, FlockArg::LockExclusiveNonblock).map_err(|(_, e)| std::io::Error::from(e))
    }) {
        Ok(f) => Some(f),
        Err(e) => {
            tracing::warn!(
                "cannot record running commands in {}: {e}: commands left running by a crash will not be stopped",
                path.display()
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;

    use super::*;

    fn sleeper() -> std::process::Child {
        std::process::Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .unwrap()
    }

    /// A record others could have written is ignored; the agent's own private one is
    /// obeyed: the group it names is stopped.
    #[test]
    fn only_a_private_record_stops_the_groups_it_names() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let path = dir.path().join("a.running");
        let mut child = sleeper();
        let pid = child.id() as i32;
        let line = format!(
            "boot {}\n{pid} {}\n",
            boot_id().unwrap(),
            start_ticks(pid).unwrap()
        );
        std::fs::write(&path, &line).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        RunningGroups::recover(&path).unwrap();
        assert!(
            child.try_wait().unwrap().is_none(),
            "a record open to others was obeyed"
        );

        std::fs::write(&path, &line).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        RunningGroups::recover(&path).unwrap();
        let status = child.wait().unwrap();
        assert!(!status.success(), "the recorded group was not stopped");
    }

    /// A record from another boot (or without one) names processes of another life of the
    /// machine: the same pid and start time now are someone else's, never stopped.
    #[test]
    fn a_record_from_another_boot_stops_nothing() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let path = dir.path().join("a.running");
        let mut child = sleeper();
        let pid = child.id() as i32;
        let group = format!("{pid} {}\n", start_ticks(pid).unwrap());
        for record in [
            format!("boot 00000000-0000-0000-0000-000000000000\n{group}"),
            group.clone(),
        ] {
            std::fs::write(&path, record).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
            RunningGroups::recover(&path).unwrap();
            assert!(
                child.try_wait().unwrap().is_none(),
                "another boot's record was obeyed"
            );
        }
        // What the agent writes carries this boot's ID.
        let recorded = std::fs::read_to_string(&path).unwrap();
        assert_eq!(recorded, format!("boot {}\n", boot_id().unwrap()));
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// A second agent with the same name and state_dir refuses to start: it would stop
    /// the first one's commands. The record removed under a running agent is made again.
    #[test]
    fn a_record_in_use_is_never_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let path = dir.path().join("a.running");
        let first = RunningGroups::recover(&path).unwrap();
        let mut child = sleeper();
        first.started(child.id());
        let second = RunningGroups::recover(&path)
            .err()
            .expect("a second agent started");
        assert!(second.contains("another agent process"), "{second}");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the first agent's command was stopped"
        );
        std::fs::remove_file(&path).unwrap();
        first.ended(child.id());
        first.started(child.id());
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.lines()
                .nth(1)
                .is_some_and(|l| l.starts_with(&child.id().to_string())),
            "{text}"
        );
        // A shorter rewrite leaves no cut line behind, only blanks.
        first.ended(child.id());
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("boot {}\n", boot_id().unwrap())
        );
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
