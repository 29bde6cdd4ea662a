//! Starting commands as a permitted user in their own process group, and stopping the
//! whole group.

use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::{Pid, User};
use ordo_proto::shell::ARGV0;
use tokio::process::{Child, Command};

/// Why a command could not start.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("user `{0}` is not allowed to run commands on this agent")]
    NotAllowed(String),
    #[error("no such user `{0}` on this server")]
    NoUser(String),
    #[error("cannot look up user `{0}` in this server's user database: {1}")]
    Lookup(String, String),
    #[error("the agent runs as `{0}` and cannot switch to `{1}` (run it as root)")]
    CannotSwitch(String, String),
    #[error("cannot start /bin/sh: {0}")]
    Io(#[from] std::io::Error),
}

/// The gRPC status each refusal answers with (one map, for exec, fetch and upload).
impl From<SpawnError> for tonic::Status {
    fn from(e: SpawnError) -> Self {
        match e {
            SpawnError::NotAllowed(_) => tonic::Status::permission_denied(e.to_string()),
            SpawnError::NoUser(_) | SpawnError::CannotSwitch(..) | SpawnError::Lookup(..) => {
                tonic::Status::failed_precondition(e.to_string())
            }
            SpawnError::Io(_) => tonic::Status::internal(e.to_string()),
        }
    }
}

/// The user the agent runs as.
pub fn own_user() -> String {
    User::from_uid(nix::unistd::geteuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| nix::unistd::geteuid().to_string())
}

/// A `/bin/sh -c <script>` command, as `run_as` when given (login environment), in its
/// own process group, with piped stdio. The caller checks that the user is allowed, and
/// gives the very account it checked (`policy::effective_user`); `None`: the agent's own.
pub fn shell(
    script: &str,
    run_as: Option<&User>,
    env: &[(String, String)],
    workdir: Option<&str>,
) -> Result<Command, SpawnError> {
    let me = own_user();
    let switched = run_as.is_some();
    // A switched user enters the working folder after the switch, with its own rights:
    // the agent (root) never opens a folder for it.
    let script = match workdir.filter(|w| switched && !w.is_empty()) {
        Some(w) => format!(
            "cd -- {} || exit 126\n{script}",
            ordo_proto::shell::quote(w)
        ),
        None => script.to_string(),
    };
    let script = script.as_str();
    let mut cmd = match run_as {
        None => {
            let mut c = Command::new("/bin/sh");
            c.arg("-c").arg(script).arg(ARGV0);
            c
        }
        Some(u) => {
            if !nix::unistd::geteuid().is_root() {
                return Err(SpawnError::CannotSwitch(me, u.name.clone()));
            }
            // setpriv (util-linux): real user switch with the user's groups, no PAM, no
            // password. The environment is the login one setpriv's --reset-env would make
            // (HOME, USER, LOGNAME, SHELL, PATH), plus `env`, set here rather than in the
            // script so that no value shows on a command line.
            // By its full path: a PATH in the job's environment never chooses what runs as root.
            let mut c = Command::new("/usr/bin/setpriv");
            c.arg(format!("--reuid={}", u.uid))
                .arg(format!("--regid={}", u.gid))
                .arg("--init-groups")
                .arg("--")
                .arg("/bin/sh")
                .arg("-c")
                .arg(script)
                .arg(ARGV0);
            let path = if u.uid.is_root() {
                "/usr/local/sbin:/usr/local/bin:/sbin:/bin:/usr/sbin:/usr/bin"
            } else {
                "/usr/local/bin:/bin:/usr/bin"
            };
            c.env_clear()
                .env("HOME", &u.dir)
                .env("USER", &u.name)
                .env("LOGNAME", &u.name)
                .env("SHELL", &u.shell)
                .env("PATH", path);
            c.current_dir(home_or_root(u));
            c
        }
    };
    cmd.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    if run_as.is_none()
        && let Ok(Some(u)) = User::from_uid(nix::unistd::geteuid())
    {
        cmd.current_dir(home_or_root(&u));
    }
    if let Some(w) = workdir.filter(|w| !w.is_empty() && !switched) {
        cmd.current_dir(w);
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    Ok(cmd)
}

/// Where a user's commands start: the home folder, or `/` for a user without one
/// (nobody's is /nonexistent).
fn home_or_root(u: &User) -> &std::path::Path {
    if u.dir.is_dir() {
        &u.dir
    } else {
        std::path::Path::new("/")
    }
}

/// Stops a child's whole process group: TERM, then KILL once `grace` has passed (or at
/// once when the group is already gone).
pub async fn stop_group(child: &mut Child, grace: Duration) {
    let Some(pid) = child.id() else { return };
    let group = Pid::from_raw(pid as i32);
    let _ = killpg(group, Signal::SIGTERM);
    let deadline = tokio::time::Instant::now() + grace;
    while tokio::time::Instant::now() < deadline {
        if killpg(group, None).is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = killpg(group, Signal::SIGKILL);
}

/// The name of a signal number (`TERM`), for exit statuses.
pub fn signal_name(n: i32) -> String {
    Signal::try_from(n)
        .map(|s| s.as_str().trim_start_matches("SIG").to_string())
        .unwrap_or_else(|_| n.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A switched user enters its working folder itself, after the switch: the agent's
    /// root never opens a folder on its behalf.
    #[test]
    fn a_switched_user_changes_folder_after_the_switch() {
        if !nix::unistd::geteuid().is_root() || User::from_name("nobody").ok().flatten().is_none() {
            return;
        }
        let nobody = User::from_name("nobody").unwrap().unwrap();
        let cmd = shell("id -un", Some(&nobody), &[], Some("/root/private")).unwrap();
        let std = cmd.as_std();
        assert_eq!(std.get_current_dir(), Some(std::path::Path::new("/")));
        let args: Vec<String> = std
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert!(
            args.iter()
                .any(|a| a.starts_with("cd -- /root/private || exit 126\n")),
            "{args:?}"
        );
    }

    /// As another user, `env` reaches the script's environment, not its command line.
    #[tokio::test]
    async fn env_for_another_user_stays_off_the_command_line() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: switching user needs root");
            return;
        }
        let env = [("ORDO_SECRET".to_string(), "s3cret value".to_string())];
        let script = "echo \"$(id -un)|$0|$ORDO_SECRET|$HOME\"; tr '\\0' ' ' </proc/$$/cmdline";
        let nobody = User::from_name("nobody").unwrap().unwrap();
        let out = shell(script, Some(&nobody), &env, None)
            .unwrap()
            .output()
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let mut lines = stdout.lines();
        let home = User::from_name("nobody").unwrap().unwrap().dir;
        assert_eq!(
            lines.next().unwrap(),
            format!("nobody|ordo|s3cret value|{}", home.display())
        );
        let cmdline = lines.next().unwrap();
        assert!(cmdline.starts_with("/bin/sh -c"), "{cmdline}");
        assert!(!cmdline.contains("s3cret"), "{cmdline}");
    }
}
