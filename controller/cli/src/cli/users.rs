//! `controller users …`, `controller tokens …` and `controller audit`: accounts, API
//! tokens and the audit log, in the history database (the API's admin pages do the same).
//! Passwords are read from the terminal or standard input, never from the command line.

use clap::{Args, Subcommand};
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};

use super::{BadInput, Cli, EXIT_OK};
use crate::actions::accounts::{self, AccountChange, NewAccount};
use crate::actions::tokens::{self, NewToken};
use crate::actions::{self, Actor};
use crate::clock::{local_time, now_ms};
use crate::store::Store;

#[derive(Subcommand, Debug)]
pub enum UsersCmd {
    /// Add an account; its password is asked for (or read from stdin with --password-stdin).
    Add(AddArgs),
    /// Every account.
    List,
    /// One account.
    Show {
        name: String,
    },
    /// Set an account's password (its sessions end).
    Passwd {
        name: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Stop an account from logging in or using its tokens (its sessions end).
    Disable {
        name: String,
    },
    Enable {
        name: String,
    },
    /// Delete an account, its tokens and sessions; the accounts it managed go to its own
    /// manager, or to --hand-to.
    Delete {
        name: String,
        /// The administrator who takes the accounts it managed.
        #[arg(long)]
        hand_to: Option<String>,
    },
    /// Change an account's role, projects or place in the hierarchy.
    Role(RoleArgs),
}

#[derive(Args, Debug)]
pub struct AddArgs {
    pub name: String,
    /// admin, operator or viewer.
    #[arg(long)]
    pub role: String,
    /// Where login codes and alerts go.
    #[arg(long)]
    pub email: String,
    /// Job folders this account may use (comma-separated; `*` every one, `/` the top level).
    #[arg(long, value_delimiter = ',')]
    pub projects: Vec<String>,
    /// Make it a secondary account of this primary account.
    #[arg(long)]
    pub primary: Option<String>,
    /// The administrator who manages it.
    #[arg(long)]
    pub manager: Option<String>,
    /// The SSO/WSSE tenant it may log in through (`serve: auth: tenants`).
    #[arg(long)]
    pub tenant: Option<String>,
    /// A top administrator: manages every account, the keys and the whole audit log (an
    /// admin added here without --manager is one).
    #[arg(long)]
    pub top: bool,
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Args, Debug)]
pub struct RoleArgs {
    pub name: String,
    /// admin, operator or viewer.
    pub role: Option<String>,
    #[arg(long, value_delimiter = ',')]
    pub projects: Option<Vec<String>>,
    /// The primary account (empty: make it a primary).
    #[arg(long)]
    pub primary: Option<String>,
    /// The managing administrator (empty: none).
    #[arg(long)]
    pub manager: Option<String>,
    /// The tenant (empty: none).
    #[arg(long)]
    pub tenant: Option<String>,
    /// Make it a top administrator (true) or not (false).
    #[arg(long)]
    pub top: Option<bool>,
}

#[derive(Subcommand, Debug)]
pub enum TokensCmd {
    /// Create a personal API token; it is shown once.
    Create {
        #[arg(long)]
        user: String,
        /// e.g. 30d, 12h; none: it never expires.
        #[arg(long)]
        expires: Option<String>,
        #[arg(long, default_value = "")]
        label: String,
    },
    /// Tokens (of one account with --user).
    List {
        #[arg(long)]
        user: Option<String>,
    },
    /// Revoke a token by its id.
    Revoke { id: String },
}

#[derive(Args, Debug)]
pub struct AuditArgs {
    #[arg(long)]
    pub actor: Option<String>,
    #[arg(long)]
    pub action: Option<String>,
    #[arg(short = 'n', long, default_value_t = 50)]
    pub last: i64,
}

async fn store(cli: &Cli) -> anyhow::Result<Store> {
    let cfg = super::config(cli)?;
    crate::project::private_data_dir(&cfg)?;
    let store = Store::open(&crate::project::database_url(&cfg)).await?;
    crate::project::private_database(&cfg);
    Ok(store)
}

/// A password from stdin (one line) or typed twice on the terminal.
fn read_password(stdin: bool) -> anyhow::Result<String> {
    if stdin {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        return Ok(line.trim_end_matches(['\n', '\r']).to_string());
    }
    let no_terminal = || {
        BadInput(
            "no terminal to ask the password on: give it on standard input with --password-stdin"
                .into(),
        )
    };
    let ask = |prompt: &str| {
        rpassword::prompt_password(prompt).map_err(|e| match e.raw_os_error() {
            // ENXIO / ENOTTY: no controlling terminal (a script, cron, ssh without -t).
            Some(6 | 25) => anyhow::Error::from(no_terminal()),
            _ => anyhow::Error::from(e).context("reading the password from the terminal"),
        })
    };
    let first = ask("password: ")?;
    let again = ask("again: ")?;
    if first != again {
        return Err(BadInput("the two passwords differ".into()).into());
    }
    Ok(first)
}

fn empty_is_none(v: &Option<String>) -> Option<Option<String>> {
    v.as_ref().map(|s| (!s.is_empty()).then(|| s.clone()))
}

pub async fn users(cli: &Cli, cmd: &UsersCmd) -> anyhow::Result<i32> {
    let store = store(cli).await?;
    let me = Actor::cli();
    match cmd {
        UsersCmd::Add(a) => {
            let password = read_password(a.password_stdin)?;
            let new = NewAccount {
                name: a.name.clone(),
                role: a.role.clone(),
                email: a.email.clone(),
                password,
                projects: a.projects.clone(),
                primary: a.primary.clone(),
                manager: a.manager.clone(),
                tenant: a.tenant.clone(),
                top: a.top || (a.role == "admin" && a.manager.is_none()),
            };
            let u = accounts::add(&store, &me, new)
                .await
                .map_err(super::action_error)?;
            let top = if u.top { ", top administrator" } else { "" };
            say!("account {} added ({}{top})", u.name, u.role);
        }
        UsersCmd::List => {
            let mut t = Table::new();
            t.load_preset(UTF8_FULL_CONDENSED);
            t.set_header([
                "name", "role", "email", "projects", "primary", "manager", "tenant", "state",
            ]);
            for u in accounts::list(&store, &me)
                .await
                .map_err(super::action_error)?
            {
                t.add_row([
                    u.name,
                    if u.top {
                        format!("{} (top)", u.role)
                    } else {
                        u.role
                    },
                    u.email,
                    u.projects.join(","),
                    u.primary_user.unwrap_or_default(),
                    u.manager.unwrap_or_default(),
                    u.tenant.unwrap_or_default(),
                    if u.disabled { "disabled" } else { "enabled" }.to_string(),
                ]);
            }
            say!("{t}");
        }
        UsersCmd::Show { name } => {
            let u = accounts::get(&store, &me, name)
                .await
                .map_err(super::action_error)?;
            say!(
                "name:      {}\nrole:      {}{}\nemail:     {}\nprojects:  {}\nprimary:   {}\nmanager:   {}\ntenant:    {}\nstate:     {}\ncreated:   {}\nchanged:   {}",
                u.name,
                u.role,
                if u.top { " (top administrator)" } else { "" },
                u.email,
                u.projects.join(", "),
                u.primary_user.as_deref().unwrap_or("-"),
                u.manager.as_deref().unwrap_or("-"),
                u.tenant.as_deref().unwrap_or("-"),
                if u.disabled { "disabled" } else { "enabled" },
                local_time(u.created_at),
                local_time(u.changed_at)
            );
        }
        UsersCmd::Passwd {
            name,
            password_stdin,
        } => {
            // The account first: no password asked for a name that does not exist.
            accounts::get(&store, &me, name)
                .await
                .map_err(super::action_error)?;
            let change = AccountChange {
                password: Some(read_password(*password_stdin)?),
                ..AccountChange::default()
            };
            accounts::change(&store, &me, name, change)
                .await
                .map_err(super::action_error)?;
            say!("password of {name} changed; its sessions ended");
        }
        UsersCmd::Disable { name } | UsersCmd::Enable { name } => {
            let disabled = matches!(cmd, UsersCmd::Disable { .. });
            let change = AccountChange {
                disabled: Some(disabled),
                ..AccountChange::default()
            };
            accounts::change(&store, &me, name, change)
                .await
                .map_err(super::action_error)?;
            let what = if disabled { "disabled" } else { "enabled" };
            say!("account {name} {what}");
        }
        UsersCmd::Delete { name, hand_to } => {
            let heir = accounts::delete(&store, &me, name, hand_to.as_deref())
                .await
                .map_err(super::action_error)?;
            let to = if heir.is_empty() {
                String::new()
            } else {
                format!("; the accounts it managed now belong to {heir}")
            };
            say!("account {name} deleted, with its tokens and sessions{to}");
        }
        UsersCmd::Role(r) => {
            let change = AccountChange {
                role: r.role.clone(),
                projects: r.projects.clone(),
                primary: empty_is_none(&r.primary),
                manager: empty_is_none(&r.manager),
                tenant: empty_is_none(&r.tenant),
                top: r.top,
                ..AccountChange::default()
            };
            let u = accounts::change(&store, &me, &r.name, change)
                .await
                .map_err(super::action_error)?;
            say!(
                "account {}: {}{}, projects {}",
                u.name,
                u.role,
                if u.top { " (top administrator)" } else { "" },
                u.projects.join(",")
            );
        }
    }
    store.close().await;
    Ok(EXIT_OK)
}

pub async fn tokens(cli: &Cli, cmd: &TokensCmd) -> anyhow::Result<i32> {
    let store = store(cli).await?;
    let me = Actor::cli();
    match cmd {
        TokensCmd::Create {
            user,
            expires,
            label,
        } => {
            let valid_for = expires
                .as_deref()
                .map(ordo_jobs::units::parse_duration)
                .transpose()
                .map_err(|e| BadInput(format!("--expires: {e}")))?;
            let t = NewToken {
                user: Some(user.clone()),
                label: label.clone(),
                valid_for,
            };
            let (row, shown) = tokens::create(&store, &me, t)
                .await
                .map_err(super::action_error)?;
            eprintln!(
                "token {} for {user}{}: shown once, keep it safe",
                row.id,
                row.expires_at
                    .map(|e| format!(", expires {}", local_time(e)))
                    .unwrap_or_default()
            );
            say!("{shown}");
        }
        TokensCmd::List { user } => {
            let now = now_ms();
            let mut t = Table::new();
            t.load_preset(UTF8_FULL_CONDENSED);
            t.set_header([
                "id",
                "user",
                "label",
                "created",
                "expires",
                "last used",
                "state",
            ]);
            for r in tokens::list(&store, &me, user.as_deref())
                .await
                .map_err(super::action_error)?
            {
                let state = if r.revoked_at.is_some() {
                    "revoked"
                } else if r.expires_at.is_some_and(|e| e <= now) {
                    "expired"
                } else {
                    "valid"
                };
                let when = |t: Option<i64>| t.map(local_time).unwrap_or_else(|| "-".into());
                t.add_row([
                    r.id,
                    r.user_name,
                    r.label,
                    local_time(r.created_at),
                    when(r.expires_at),
                    when(r.last_used_at),
                    state.to_string(),
                ]);
            }
            say!("{t}");
        }
        TokensCmd::Revoke { id } => {
            tokens::revoke(&store, &me, id)
                .await
                .map_err(super::action_error)?;
            say!("token {id} revoked");
        }
    }
    store.close().await;
    Ok(EXIT_OK)
}

pub async fn audit_log(cli: &Cli, a: &AuditArgs) -> anyhow::Result<i32> {
    let store = store(cli).await?;
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(["time", "who", "from", "action", "target", "detail"]);
    let rows = actions::audit::read(
        &store,
        &Actor::cli(),
        a.actor.as_deref(),
        a.action.as_deref(),
        a.last,
    )
    .await
    .map_err(super::action_error)?;
    for r in rows {
        t.add_row([
            local_time(r.at),
            r.actor,
            r.address,
            r.action,
            r.target,
            r.detail,
        ]);
    }
    say!("{t}");
    store.close().await;
    Ok(EXIT_OK)
}
