//! What the agent lets a controller do: run as an allowed user only (the agent's own user
//! too must be allowed: never an implicit root), and with environment variables that
//! cannot change how a privileged program starts.

use nix::unistd::User;

use crate::config::AgentConfig;
use crate::process::{SpawnError, own_user};

/// Who a request runs as, once allowed.
#[derive(Debug)]
pub struct Effective {
    pub name: String,
    /// The account switched to, exactly as the policy checked it (one lookup: a user
    /// database that changes meanwhile cannot swap it); `None`: the agent's own user, no
    /// switch.
    pub account: Option<User>,
}

/// The user a request runs as: the one it names, or the agent's own; refused unless the
/// agent's `allowed_users` lists it, or lists `*` and it is not privileged (see
/// [`privileged`]).
pub fn effective_user(cfg: &AgentConfig, run_as: &str) -> Result<Effective, SpawnError> {
    let own = own_user();
    if !run_as.is_empty() && ordo_proto::shell::check_user_name(run_as).is_err() {
        return Err(SpawnError::NotAllowed(run_as.to_string()));
    }
    let name = if run_as.is_empty() {
        own.clone()
    } else {
        run_as.to_string()
    };
    let account = User::from_name(&name);
    let listed = cfg.allowed_users.contains(&name);
    if !listed {
        let groups = match &account {
            Ok(Some(u)) => Some(groups_of(u)),
            _ => None,
        };
        if !cfg.user_allowed(&name, privileged(&name, &account, groups.as_ref())) {
            return Err(match account {
                // Said as it is: an operator would otherwise edit allowed_users, not the
                // user database.
                Err(e) if cfg.allowed_users.iter().any(|u| u == "*") => {
                    SpawnError::Lookup(name, e.to_string())
                }
                _ => SpawnError::NotAllowed(name),
            });
        }
    }
    let me = nix::unistd::geteuid();
    match account {
        _ if name == own => Ok(Effective {
            name,
            account: None,
        }),
        Ok(Some(u)) if u.uid == me => Ok(Effective {
            name,
            account: None,
        }),
        Ok(Some(u)) => Ok(Effective {
            name,
            account: Some(u),
        }),
        Ok(None) => Err(SpawnError::NoUser(name)),
        Err(e) => Err(SpawnError::Lookup(name, e.to_string())),
    }
}

/// The groups `u` gets when the agent switches to it (`setpriv --init-groups`).
fn groups_of(u: &User) -> nix::Result<Vec<nix::unistd::Gid>> {
    let name = std::ffi::CString::new(u.name.as_bytes()).map_err(|_| nix::Error::EINVAL)?;
    nix::unistd::getgrouplist(&name, u.gid)
}

/// Whether `*` leaves `name` out: an account of uid 0 or in the root group (gid 0, as
/// its primary group or one of its others: `setpriv --init-groups` gives them all, e.g.
/// `operator`), whatever its name, or one that could not be looked up (a failing user
/// database never lets root in). An unknown name is not privileged: it fails later as a
/// missing user, except `0`, the agent's own uid when it has no name.
fn privileged(
    name: &str,
    account: &nix::Result<Option<User>>,
    groups: Option<&nix::Result<Vec<nix::unistd::Gid>>>,
) -> bool {
    match account {
        Ok(Some(u)) => {
            u.uid.is_root()
                || u.gid.as_raw() == 0
                || groups.is_none_or(|g| {
                    g.as_ref().is_ok_and(|g| g.iter().any(|g| g.as_raw() == 0)) || g.is_err()
                })
        }
        Ok(None) => name == "0",
        Err(_) => true,
    }
}

/// The account of an allowed user.
pub fn account(name: &str) -> Result<User, SpawnError> {
    User::from_name(name)
        .ok()
        .flatten()
        .ok_or_else(|| SpawnError::NoUser(name.to_string()))
}

/// Environment variables the shell and the dynamic loader read before any of the job's
/// code runs: a controller may not set them.
const REFUSED: &[&str] = &[
    "BASH_ENV",
    "ENV",
    "SHELLOPTS",
    "BASHOPTS",
    "PS4",
    "IFS",
    "CDPATH",
    "GLOBIGNORE",
    "PROMPT_COMMAND",
    "GCONV_PATH",
    "LOCPATH",
    "NLSPATH",
    "HOSTALIASES",
    "RESOLV_HOST_CONF",
    "RES_OPTIONS",
    "LOCALDOMAIN",
    "TMPDIR",
    "GLIBC_TUNABLES",
    "TZDIR",
];

/// Refuses a name that is not a plain shell name or that changes how programs start
/// (`LD_*`, `BASH_FUNC_*`, `BASH_ENV`...): those would reach the privileged `setpriv`.
pub fn check_env(env: &[(String, String)]) -> Result<(), String> {
    for (k, v) in env {
        let plain = k
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !plain {
            return Err(format!("environment variable `{k}`: not a valid name"));
        }
        if k.starts_with("LD_")
            || k.starts_with("BASH_FUNC_")
            || k.starts_with("MALLOC_")
            || k.starts_with("NSS_")
            || k.starts_with("RESOLV_")
            || REFUSED.contains(&k.as_str())
        {
            return Err(format!(
                "environment variable `{k}` is refused: it changes how programs start"
            ));
        }
        // A locale or a time zone by name only: a path would make the privileged setpriv
        // load files of the caller's choice.
        let by_name = matches!(k.as_str(), "LANG" | "LANGUAGE" | "TZ") || k.starts_with("LC_");
        if by_name && (v.contains('/') && (k != "TZ" || v.starts_with('/') || v.contains(".."))) {
            return Err(format!(
                "environment variable `{k}`: `{v}` must name a locale or time zone, not a path"
            ));
        }
        if v.contains('\0') {
            return Err(format!(
                "environment variable `{k}`: the value holds a NUL byte"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Accounts of uid 0 or in group 0 (primary or not), and names the user database
    /// failed to look up, are privileged: `*` never includes them.
    #[test]
    fn privileged_accounts_are_uid_0_gid_0_or_unknown_to_a_failing_database() {
        let account = |uid: u32, gid: u32| {
            Ok(Some(User {
                name: "x".into(),
                passwd: Default::default(),
                uid: nix::unistd::Uid::from_raw(uid),
                gid: nix::unistd::Gid::from_raw(gid),
                gecos: Default::default(),
                dir: "/".into(),
                shell: "/bin/sh".into(),
            }))
        };
        use nix::unistd::Gid;
        let own = |gids: &[u32]| Ok(gids.iter().map(|g| Gid::from_raw(*g)).collect());
        assert!(privileged("toor", &account(0, 0), Some(&own(&[0]))));
        assert!(privileged("operator", &account(11, 0), Some(&own(&[0]))));
        assert!(!privileged(
            "dollaru",
            &account(1001, 1001),
            Some(&own(&[1001, 27]))
        ));
        // In the root group as a secondary group (`root:x:0:alice`).
        assert!(privileged(
            "alice",
            &account(1002, 1002),
            Some(&own(&[1002, 0]))
        ));
        // Groups that cannot be read: privileged.
        assert!(privileged(
            "bob",
            &account(1003, 1003),
            Some(&Err(nix::Error::EIO))
        ));
        assert!(privileged("ldapuser", &Err(nix::Error::EIO), None));
        assert!(!privileged("nosuchuser", &Ok(None), None));
        assert!(privileged("0", &Ok(None), None));
    }

    /// `*` is any user but a superuser: root, or another name for uid 0, only by name.
    /// These tests run as root, so no `run_as` is root too.
    #[test]
    fn the_wildcard_never_includes_root() {
        let any = AgentConfig::for_tests(&["*"]);
        for user in ["nobody", "daemon"] {
            assert_eq!(effective_user(&any, user).unwrap().name, user);
        }
        for user in ["root", "0"] {
            let e = effective_user(&any, user).unwrap_err();
            assert!(
                matches!(e, SpawnError::NotAllowed(ref u) if u == user),
                "{e}"
            );
        }
        if own_user() == "root" {
            assert!(effective_user(&any, "").is_err());
        }
        let with_root = AgentConfig::for_tests(&["*", "root"]);
        assert_eq!(effective_user(&with_root, "root").unwrap().name, "root");
        let nobody = effective_user(&with_root, "nobody").unwrap();
        assert_eq!(nobody.account.map(|u| u.name).as_deref(), Some("nobody"));
        let only = AgentConfig::for_tests(&["nobody"]);
        assert!(effective_user(&only, "daemon").is_err());
    }

    #[test]
    fn loader_and_shell_startup_variables_are_refused() {
        let env = |k: &str| vec![(k.to_string(), "x".to_string())];
        for k in [
            "LD_PRELOAD",
            "LD_LIBRARY_PATH",
            "BASH_ENV",
            "BASH_FUNC_x%%",
            "IFS",
            "A-B",
            "1X",
            "",
        ] {
            assert!(check_env(&env(k)).is_err(), "{k} accepted");
        }
        for k in ["ORDO_OPTION_X", "PATH", "JAVA_HOME", "_x1"] {
            assert!(check_env(&env(k)).is_ok(), "{k} refused");
        }
        let kv = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
        assert!(check_env(&kv("LANG", "fr_FR.UTF-8")).is_ok());
        assert!(check_env(&kv("TZ", "Europe/Paris")).is_ok());
        assert!(check_env(&kv("LC_ALL", "/tmp/evil")).is_err());
        assert!(check_env(&kv("TZ", "/tmp/evil")).is_err());
        assert!(check_env(&kv("TZ", "../../tmp/evil")).is_err());
    }
}
