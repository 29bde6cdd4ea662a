//! Writing the controller's uploads: only into a run folder (`<upload dir>/ordo-*`) that
//! this agent made fresh for the run's user, each file created new (never through a link,
//! never over an existing file), owned by that user, without setuid or setgid bits.

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;

use nix::unistd::User;
use ordo_proto::agent::{UploadHeader, UploadInput, upload_input};
use tokio::io::AsyncWriteExt;
use tonic::{Status, Streaming};

use crate::config::AgentConfig;
use crate::policy;

/// The run folders this agent made, and for whom (uid); files go only there.
#[derive(Default)]
pub struct RunFolders {
    /// A plain mutex: held only to look up or insert, never across an await.
    made: Mutex<HashSet<(PathBuf, u32)>>,
}

impl RunFolders {
    /// Makes `dir` for `user` unless this agent already did; a folder that exists and is
    /// not one of ours is refused (it may be a trap laid by someone else).
    fn ensure(&self, dir: &Path, user: &User) -> Result<(), Status> {
        let key = (dir.to_path_buf(), user.uid.as_raw());
        let mut made = self.made.lock().expect("poisoned");
        if made.contains(&key) {
            let meta = std::fs::symlink_metadata(dir)
                .map_err(|e| Status::failed_precondition(format!("{}: {e}", dir.display())))?;
            if meta.is_dir() && std::os::unix::fs::MetadataExt::uid(&meta) == user.uid.as_raw() {
                return Ok(());
            }
            return Err(Status::failed_precondition(format!(
                "upload: {} is no longer the run folder this agent made",
                dir.display()
            )));
        }
        made.retain(|(d, _)| d.exists());
        std::fs::create_dir(dir).map_err(|e| {
            Status::failed_precondition(format!(
                "upload: cannot make the run folder {}: {e} (a run folder is always made fresh)",
                dir.display()
            ))
        })?;
        std::os::unix::fs::chown(dir, Some(user.uid.as_raw()), Some(user.gid.as_raw()))
            .map_err(|e| Status::internal(format!("chown {}: {e}", dir.display())))?;
        let mode: std::fs::Permissions = std::os::unix::fs::PermissionsExt::from_mode(0o755);
        std::fs::set_permissions(dir, mode)
            .map_err(|e| Status::internal(format!("chmod {}: {e}", dir.display())))?;
        made.insert(key);
        Ok(())
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

/// Receives one file; returns its size.
pub async fn receive(
    cfg: &AgentConfig,
    folders: &RunFolders,
    header: UploadHeader,
    mut input: Streaming<UploadInput>,
) -> Result<u64, Status> {
    let user = policy::effective_user(cfg, &header.run_as)
        .map_err(|e| Status::permission_denied(e.to_string()))?;
    let account = policy::account(&user).map_err(|e| Status::failed_precondition(e.to_string()))?;
    let (path, dir) = check_path(cfg, &header.path)?;
    folders.ensure(&dir, &account)?;
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(&path)
        .await
        .map_err(|e| Status::failed_precondition(format!("upload {}: {e}", path.display())))?;
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
}
