//! Writing the controller's uploads: only into a run folder (`<upload dir>/ordo-*`) that
//! this agent made fresh for the run's user, each file created new (never through a link,
//! never over an existing file), owned by that user, without setuid or setgid bits.

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::fcntl::{OFlag, open, openat};
use nix::sys::stat::{Mode, fchmod, fstat, mkdirat};
use nix::unistd::{User, fchown};
use ordo_proto::agent::{UploadHeader, UploadInput, upload_input};
use tokio::io::AsyncWriteExt;
use tonic::{Status, Streaming};

use crate::config::AgentConfig;
use crate::policy;

/// The run folders this agent made, and for whom (uid); files go only there. Each is
/// held open: files are created relative to the folder itself, never through its path,
/// so a run's user who owns the folder cannot rename it and put a link to `/etc` in its
/// place (in a sticky upload folder or not) between our check and our write.
#[derive(Default)]
pub struct RunFolders {
    /// A plain mutex: held only to look up or insert, never across an await.
    made: Mutex<HashMap<(PathBuf, u32), Made>>,
}

/// A run folder's handle and when it was last used.
type Made = (Arc<OwnedFd>, Instant);

/// How long a run folder stays known without an upload: a run whose controller died
/// before its cleanup does not keep its folder's handle open for ever.
const IDLE: Duration = Duration::from_secs(24 * 3600);

impl RunFolders {
    /// The run folder `dir` for `user`: made now unless this agent already made it; a
    /// folder that exists and is not one of ours is refused (it may be a trap laid by
    /// someone else).
    fn ensure(&self, dir: &Path, user: &User) -> Result<Arc<OwnedFd>, Status> {
        let key = (dir.to_path_buf(), user.uid.as_raw());
        let mut made = self.made.lock().expect("poisoned");
        if let Some((fd, used)) = made.get_mut(&key) {
            if fstat(&**fd).is_ok_and(|st| st.st_nlink > 0) {
                *used = Instant::now();
                return Ok(Arc::clone(fd));
            }
            made.remove(&key);
            return Err(Status::failed_precondition(format!(
                "upload: {} is no longer the run folder this agent made",
                dir.display()
            )));
        }
        // Folders removed since (the run's cleanup) or long idle are forgotten.
        made.retain(|_, (fd, used)| {
            used.elapsed() < IDLE && fstat(fd.as_fd()).is_ok_and(|st| st.st_nlink > 0)
        });
        if made.len() >= MAX_FOLDERS
            && let Some(oldest) = made
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| k.clone())
        {
            made.remove(&oldest);
        }
        let failed = |what: &str, e: nix::Error| {
            Status::failed_precondition(format!("upload: {what} {}: {e}", dir.display()))
        };
        let (Some(parent), Some(name)) = (dir.parent(), dir.file_name()) else {
            return Err(Status::permission_denied("upload: not a run folder"));
        };
        let base = trusted_upload_dir(parent)?;
        let dir_flags = OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_RDONLY;
        mkdirat(&base, name, Mode::from_bits_truncate(0o700)).map_err(|e| {
            let why = if e == nix::Error::EEXIST {
                "it exists already, and is not a folder this agent made for this run (someone \
                 else's, or one it forgot after 24 h without an upload or among more than 4096)"
                    .to_string()
            } else {
                e.to_string()
            };
            Status::failed_precondition(format!(
                "upload: cannot make the run folder {}: {why}; a run folder is always made fresh",
                dir.display()
            ))
        })?;
        let fd = openat(&base, name, dir_flags, Mode::empty())
            .map_err(|e| failed("cannot open the run folder", e))?;
        // Still ours (root's, just made): not a folder someone swapped in meanwhile.
        let st = fstat(&fd).map_err(|e| failed("cannot read", e))?;
        if st.st_uid != nix::unistd::geteuid().as_raw() {
            return Err(Status::failed_precondition(format!(
                "upload: the run folder {} was replaced while it was made",
                dir.display()
            )));
        }
        fchown(&fd, Some(user.uid), Some(user.gid)).map_err(|e| failed("chown", e))?;
        fchmod(&fd, Mode::from_bits_truncate(0o755)).map_err(|e| failed("chmod", e))?;
        let fd = Arc::new(fd);
        made.insert(key, (Arc::clone(&fd), Instant::now()));
        Ok(fd)
    }
}

/// The most run folders held open at once; past it the least recently used is forgotten
/// (an upload into it is then refused).
const MAX_FOLDERS: usize = 4096;

/// An upload folder (`/tmp`) opened, if no one else can swap what is in it: owned by root
/// or this agent's user, and sticky when others may write in it. Otherwise the run folder
/// made there could be replaced, between its making and its opening, by one of someone
/// else's choosing.
fn trusted_upload_dir(dir: &Path) -> Result<OwnedFd, Status> {
    let bad = |why: String| {
        Status::failed_precondition(format!(
            "upload: {} is not a safe upload folder (upload_dirs): {why}",
            dir.display()
        ))
    };
    // Walked from `/`, one folder at a time and never through a link: every folder on the
    // way must be safe too, or its owner could swap what lies below.
    let flags = OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_RDONLY;
    let mut at = PathBuf::from("/");
    let mut fd = open("/", flags, Mode::empty()).map_err(|e| bad(format!("/: {e}")))?;
    safe_folder(&fd, &at).map_err(&bad)?;
    for c in dir.components() {
        match c {
            Component::RootDir => continue,
            Component::Normal(name) => {
                at.push(name);
                fd = openat(&fd, name, flags, Mode::empty()).map_err(|e| {
                    bad(if e == nix::Error::ELOOP || e == nix::Error::ENOTDIR {
                        format!(
                            "{} is a link (or not a folder): give the folder itself",
                            at.display()
                        )
                    } else {
                        format!("{}: {e}", at.display())
                    })
                })?;
                safe_folder(&fd, &at).map_err(&bad)?;
            }
            _ => return Err(bad("not a plain absolute path".into())),
        }
    }
    Ok(fd)
}

/// A folder no one but root (or the agent's user) can change what is in: theirs, and
/// sticky if others may write in it (like /tmp).
fn safe_folder(fd: &OwnedFd, at: &Path) -> Result<(), String> {
    let st = fstat(fd).map_err(|e| format!("{}: {e}", at.display()))?;
    let owner_ok = st.st_uid == 0 || st.st_uid == nix::unistd::geteuid().as_raw();
    let open_to_others = st.st_mode & 0o022 != 0;
    let sticky = st.st_mode & nix::libc::S_ISVTX != 0;
    if owner_ok && (!open_to_others || sticky) {
        Ok(())
    } else {
        Err(format!(
            "{} must belong to root or the agent's user and, if others may write in it, be \
             sticky like /tmp",
            at.display()
        ))
    }
}

/// Where an upload may go: `<one of upload_dirs>/ordo-<...>/<file>`, written plainly (no
/// `.` or `..`).
fn check_path(cfg: &AgentConfig, raw: &str) -> Result<(PathBuf, PathBuf), Status> {
    let path = PathBuf::from(raw);
    let plain = path.is_absolute()
        && path
            .components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
    let refuse = |why: &str| Err(Status::permission_denied(format!("upload: `{raw}`: {why}")));
    if !plain {
        return refuse("not a plain absolute path");
    }
    let (Some(dir), Some(_)) = (path.parent(), path.file_name()) else {
        return refuse("not a file path");
    };
    let in_run_folder = dir
        .file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with("ordo-"));
    let base_allowed = dir
        .parent()
        .is_some_and(|b| cfg.upload_dirs.iter().any(|u| u == b));
    if !in_run_folder || !base_allowed {
        let dirs: Vec<String> = cfg
            .upload_dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect();
        return refuse(&format!(
            "uploads go only into a run folder `ordo-*` directly under {} (upload_dirs)",
            dirs.join(" or ")
        ));
    }
    Ok((path.clone(), dir.to_path_buf()))
}

/// Creates `path`'s file in `folder` (the folder's handle, not its path): new, never over
/// a file, never through a link, 0600 until it is complete.
fn create_in(folder: &OwnedFd, path: &Path) -> Result<std::fs::File, Status> {
    let name = path.file_name().expect("checked by check_path");
    let fd = nix::fcntl::openat(
        folder.as_fd(),
        name,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o600),
    )
    .map_err(|e| Status::failed_precondition(format!("upload {}: {e}", path.display())))?;
    Ok(std::fs::File::from(fd))
}

/// Receives one file; returns its size.
pub async fn receive(
    cfg: &AgentConfig,
    folders: &RunFolders,
    header: UploadHeader,
    mut input: Streaming<UploadInput>,
) -> Result<u64, Status> {
    let user = policy::effective_user(cfg, &header.run_as).map_err(tonic::Status::from)?;
    // The account the policy checked; the agent's own when there is no switch.
    let account = match user.account {
        Some(u) => u,
        None => {
            policy::account(&user.name).map_err(|e| Status::failed_precondition(e.to_string()))?
        }
    };
    let (path, dir) = check_path(cfg, &header.path)?;
    let folder = folders.ensure(&dir, &account)?;
    let mut file = tokio::fs::File::from_std(create_in(&folder, &path)?);
    let mut bytes = 0u64;
    while let Some(msg) = input.message().await? {
        if let Some(upload_input::Msg::Data(d)) = msg.msg {
            file.write_all(&d)
                .await
                .map_err(|e| Status::internal(format!("{}: {e}", path.display())))?;
            bytes += d.len() as u64;
        }
    }
    file.sync_all()
        .await
        .map_err(|e| Status::internal(e.to_string()))?;
    let file = file.into_std().await;
    std::os::unix::fs::fchown(
        &file,
        Some(account.uid.as_raw()),
        Some(account.gid.as_raw()),
    )
    .map_err(|e| Status::internal(format!("chown {}: {e}", path.display())))?;
    // Never setuid, setgid or sticky: only the permission bits.
    let mode = if header.mode == 0 {
        0o644
    } else {
        header.mode & 0o777
    };
    let perms: std::fs::Permissions = std::os::unix::fs::PermissionsExt::from_mode(mode);
    file.set_permissions(perms)
        .map_err(|e| Status::internal(e.to_string()))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> AgentConfig {
        AgentConfig::for_tests(&["*"])
    }

    #[test]
    fn uploads_go_only_into_a_run_folder_under_an_upload_dir() {
        let c = cfg();
        assert!(check_path(&c, "/tmp/ordo-1-web1/step-2").is_ok());
        for bad in [
            "/etc/cron.d/x",
            "/tmp/x",
            "/tmp/other/step-1",
            "/tmp/ordo-1/../../etc/passwd",
            "tmp/ordo-1/step-1",
            "/var/tmp/ordo-1/step-1",
        ] {
            assert!(check_path(&c, bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn a_run_folder_that_exists_already_is_refused() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("ordo-trap");
        std::fs::create_dir(&dir).unwrap();
        let me = User::from_uid(nix::unistd::geteuid()).unwrap().unwrap();
        let folders = RunFolders::default();
        assert!(folders.ensure(&dir, &me).is_err());
        let fresh = base.path().join("ordo-fresh");
        folders.ensure(&fresh, &me).unwrap();
        folders.ensure(&fresh, &me).unwrap();
    }

    /// An upload folder others may write in must be sticky: there, no one else can rename
    /// the run folder between its making and its opening.
    #[test]
    fn an_upload_folder_open_to_others_must_be_sticky() {
        use std::os::unix::fs::PermissionsExt;
        let base = tempfile::tempdir().unwrap();
        let me = User::from_uid(nix::unistd::geteuid()).unwrap().unwrap();
        let folders = RunFolders::default();
        let set = |mode: u32| {
            std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(mode)).unwrap()
        };
        set(0o777);
        let e = folders
            .ensure(&base.path().join("ordo-a"), &me)
            .unwrap_err();
        assert!(e.message().contains("is not a safe upload folder"), "{e}");
        assert!(!base.path().join("ordo-a").exists());
        set(0o1777);
        folders.ensure(&base.path().join("ordo-b"), &me).unwrap();
        set(0o755);
        folders.ensure(&base.path().join("ordo-c"), &me).unwrap();
        // A folder below one open to others (not sticky) is no safer; nor is a link.
        set(0o777);
        let below = base.path().join("uploads");
        std::fs::create_dir(&below).unwrap();
        let e = folders.ensure(&below.join("ordo-d"), &me).unwrap_err();
        assert!(e.message().contains("must belong to root"), "{e}");
        set(0o755);
        let link = base.path().join("link");
        std::os::unix::fs::symlink(&below, &link).unwrap();
        let e = folders.ensure(&link.join("ordo-e"), &me).unwrap_err();
        assert!(e.message().contains("is a link"), "{e}");
        folders.ensure(&below.join("ordo-f"), &me).unwrap();
    }

    /// The run's user owns the run folder, so may rename it and leave a link to `/etc`
    /// (here a folder standing for it) in its place: the next upload still lands in the
    /// folder this agent made, never through the link. Once the folder is removed, it is
    /// no longer a run folder.
    #[test]
    fn a_run_folder_swapped_for_a_link_is_never_followed() {
        let base = tempfile::tempdir().unwrap();
        let etc = base.path().join("etc");
        std::fs::create_dir(&etc).unwrap();
        let me = User::from_uid(nix::unistd::geteuid()).unwrap().unwrap();
        let folders = RunFolders::default();
        let dir = base.path().join("ordo-run");
        let first = folders.ensure(&dir, &me).unwrap();
        create_in(&first, &dir.join("step-1")).unwrap();
        let moved = base.path().join("moved");
        std::fs::rename(&dir, &moved).unwrap();
        std::os::unix::fs::symlink(&etc, &dir).unwrap();
        let again = folders.ensure(&dir, &me).unwrap();
        create_in(&again, &dir.join("step-2")).unwrap();
        assert!(moved.join("step-2").exists());
        assert!(!etc.join("step-2").exists(), "written through the link");
        // An existing file or a link in the folder is never opened.
        assert!(create_in(&again, &dir.join("step-1")).is_err());
        std::os::unix::fs::symlink(etc.join("passwd"), moved.join("step-3")).unwrap();
        assert!(create_in(&again, &dir.join("step-3")).is_err());
        assert!(!etc.join("passwd").exists());
        // Removed (the run's cleanup): the path is no longer a run folder of ours.
        std::fs::remove_dir_all(&moved).unwrap();
        assert!(folders.ensure(&dir, &me).is_err());
    }
}
