//! Starting commands as a permitted user in their own process group, and stopping the
//! whole group.

use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::{Pid, User};
use tokio::process::{Child, Command};

/// Why a command could not start.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("user `{0}` is not allowed to run commands on this agent")]
    NotAllowed(String),
    #[error("no such user `{0}` on this server")]
    NoUser(String),
    #[error("the agent runs as `{0}` and cannot switch to `{1}` (run it as root)")]
    CannotSwitch(String, String),
    #[error("cannot start /bin/sh: {0}")]
    Io(#[from] std::io::Error),
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
/// own process group, with piped stdio. The caller checks that the user is allowed.
pub fn shell(
    script: &str,
    run_as: Option<&str>,
    env: &[(String, String)],
    workdir: Option<&str>,
) -> Result<Command, SpawnError> {
    let me = own_user();
    let mut cmd = match run_as.filter(|u| *u != me) {
        None => {
            let mut c = Command::new("/bin/sh");
            c.arg("-c").arg(script);
            c
        }
        Some(user) => {
            let u = User::from_name(user)
                .ok()
                .flatten()
                .ok_or_else(|| SpawnError::NoUser(user.to_string()))?;
            if !nix::unistd::geteuid().is_root() {
                return Err(SpawnError::CannotSwitch(me, user.to_string()));
            }
            // setpriv (util-linux): real user switch with the user's groups and a login
            // environment (HOME, USER, LOGNAME, SHELL, PATH), no PAM, no password. Its
            // --reset-env drops inherited variables, so `env` is exported by the script.
            let script = format!("{}{script}", ordo_proto::shell::env_block(env));
            let mut c = Command::new("setpriv");
            c.arg(format!("--reuid={}", u.uid))
                .arg(format!("--regid={}", u.gid))
                .arg("--init-groups")
                .arg("--reset-env")
                .arg("--")
                .arg("/bin/sh")
                .arg("-c")
                .arg(script);
            c.current_dir(&u.dir);
            c
        }
    };
    if run_as.is_none_or(|u| u == me) {
        cmd.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    }
    if run_as.is_none_or(|u| u == me)
        && let Ok(Some(u)) = User::from_uid(nix::unistd::geteuid())
    {
        cmd.current_dir(&u.dir);
    }
    if let Some(w) = workdir.filter(|w| !w.is_empty()) {
        cmd.current_dir(w);
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    Ok(cmd)
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
