//! `controller alerts show|set|queue`: accounts' alert configurations from the command
//! line, with the API's validation (the operator on the controller is their administrator:
//! no field is hidden or locked here).

use clap::{Args, Subcommand};
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use serde_json::{Value, json};

use super::{BadInput, Cli, EXIT_OK};
use crate::actions::alerts::AlertsCx;
use crate::actions::{self, ActionError, Actor};
use crate::alerts::Mode;
use crate::alerts::{self, AlertConfig};
use crate::clock::local_time;

#[derive(Subcommand, Debug)]
pub enum AlertsCmd {
    /// An account's alert configuration: switches, recipients, rules by project.
    Show {
        account: String,
        /// As the API's JSON.
        #[arg(long)]
        json: bool,
    },
    /// Change an account's alert configuration (what is not given stays).
    Set(SetArgs),
    /// Alerts queued and sent, newest first.
    Queue {
        /// Only this account's.
        account: Option<String>,
        #[arg(long, default_value_t = 50)]
        last: i64,
    },
}

#[derive(Args, Debug)]
pub struct SetArgs {
    pub account: String,
    #[arg(long)]
    pub active: Option<bool>,
    #[arg(long)]
    pub send_admin: Option<bool>,
    #[arg(long)]
    pub secondary_alerts: Option<bool>,
    #[arg(long)]
    pub send_test: Option<bool>,
    /// Replace the recipients (up to 3, separated by commas; "" for the account's own).
    #[arg(long)]
    pub mails: Option<String>,
    /// Add recipients (up to 3, separated by commas).
    #[arg(long)]
    pub add_mails: Option<String>,
    /// Remove recipients (up to 3, separated by commas).
    #[arg(long)]
    pub remove_mails: Option<String>,
    /// Also POST alerts to this URL ("" for none).
    #[arg(long)]
    pub webhook: Option<String>,
    /// A rule: PROJECT:TYPE:+ or PROJECT:TYPE:-[:DAYS], `off` at the end to switch it off
    /// (`vip:job:-:2`, `mandats:ack:-`, `vip:job_start:+:0:off`; `/` for the top-level
    /// folder). Repeat for several.
    #[arg(long = "rule")]
    pub rules: Vec<String>,
}

pub async fn run(cli: &Cli, c: &AlertsCmd) -> anyhow::Result<i32> {
    let cfg = super::config(cli)?;
    crate::project::private_data_dir(&cfg)?;
    let store = crate::store::Store::open(&crate::project::database_url(&cfg)).await?;
    crate::project::private_database(&cfg);
    let result = match c {
        AlertsCmd::Queue { account, last } => queue(&store, account.as_deref(), *last).await,
        AlertsCmd::Show { account, json } => {
            let jobs = jobs(&cfg)?;
            let cx = AlertsCx {
                store: &store,
                cfg: &cfg,
                jobs: &jobs,
            };
            let o = actions::alerts::open(&cx, &Actor::cli(), account)
                .await
                .map_err(super::action_error)?;
            print(&o.config, &o.projects, *json, &o.account.name);
            Ok(EXIT_OK)
        }
        AlertsCmd::Set(a) => {
            let jobs = jobs(&cfg)?;
            let cx = AlertsCx {
                store: &store,
                cfg: &cfg,
                jobs: &jobs,
            };
            let me = Actor::cli();
            let o = actions::alerts::open(&cx, &me, &a.account)
                .await
                .map_err(super::action_error)?;
            let next = match actions::alerts::change(&cx, &me, &o, &body(a)?, Mode::Patch).await {
                Ok(n) => n,
                Err(ActionError::Fields(errs)) => {
                    let lines: Vec<String> =
                        errs.iter().map(|(f, m)| format!("{f}: {m}")).collect();
                    return Err(BadInput(format!(
                        "alerts of {}:\n{}",
                        o.account.name,
                        lines.join("\n")
                    ))
                    .into());
                }
                Err(e) => return Err(super::action_error(e)),
            };
            print(&next, &o.projects, false, &o.account.name);
            Ok(EXIT_OK)
        }
    };
    store.close().await;
    result
}

/// The project's jobs (the projects an account has rules for).
fn jobs(cfg: &crate::project::ProjectConfig) -> anyhow::Result<ordo_jobs::JobSet> {
    Ok(ordo_jobs::load_all(&cfg.jobs).map_err(|e| BadInput(e.to_string()))?)
}

/// The command's flags as the API's PATCH body.
fn body(a: &SetArgs) -> Result<Value, BadInput> {
    let mut v = json!({});
    for (k, x) in [
        ("active", a.active),
        ("send_admin", a.send_admin),
        ("secondary_alerts", a.secondary_alerts),
        ("send_test", a.send_test),
    ] {
        if let Some(b) = x {
            v[k] = json!(b);
        }
    }
    for (k, x) in [
        ("mails", &a.mails),
        ("mails_to_add", &a.add_mails),
        ("mails_to_delete", &a.remove_mails),
        ("webhook", &a.webhook),
    ] {
        if let Some(t) = x {
            v[k] = json!(t);
        }
    }
    if !a.rules.is_empty() {
        let mut by_project: Vec<(String, Vec<Value>)> = Vec::new();
        for r in &a.rules {
            let parts: Vec<&str> = r.split(':').collect();
            let (project, kind, sign) = match parts.as_slice() {
                [p, t, s, ..] => (*p, *t, *s),
                _ => {
                    return Err(BadInput(format!(
                        "--rule `{r}`: PROJECT:TYPE:+ or PROJECT:TYPE:-[:DAYS][:off]"
                    )));
                }
            };
            let positive = match sign {
                "+" => true,
                "-" => false,
                other => return Err(BadInput(format!("--rule `{r}`: `{other}` is not + or -"))),
            };
            let rest = &parts[3..];
            let off = rest.last() == Some(&"off");
            let delay = match rest.first().filter(|d| **d != "off") {
                Some(d) => d.parse::<i64>().map_err(|_| {
                    BadInput(format!("--rule `{r}`: `{d}` is not a number of days"))
                })?,
                None => 0,
            };
            let rule = json!({"type": kind, "positive": positive, "active": !off, "delay": delay});
            // `/` is the top level, as `show` prints it.
            let project = if project == "/" { "" } else { project };
            match by_project.iter_mut().find(|(p, _)| p == project) {
                Some((_, list)) => list.push(rule),
                None => by_project.push((project.to_string(), vec![rule])),
            }
        }
        v["projects"] = by_project
            .into_iter()
            .map(|(p, rules)| json!({"project": p, "rules": rules}))
            .collect();
    }
    Ok(v)
}

fn print(c: &AlertConfig, projects: &[String], as_json: bool, account: &str) {
    if as_json {
        let v = alerts::to_json(c, projects, None);
        say!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return;
    }
    let s = &c.settings;
    say!("account           {account}");
    say!("active            {}", s.active);
    say!("send_admin        {}", s.send_admin);
    say!("secondary_alerts  {}", s.secondary_alerts);
    say!("send_test         {}", s.send_test);
    let mails = if s.mails.is_empty() {
        "(the account's own address)".to_string()
    } else {
        s.mails.join(", ")
    };
    say!("mails             {mails}");
    say!(
        "webhook           {}",
        if s.webhook.is_empty() {
            "-"
        } else {
            &s.webhook
        }
    );
    if !s.changed_by.is_empty() {
        say!(
            "changed           {} by {}",
            local_time(s.changed_at),
            s.changed_by
        );
    }
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(["PROJECT", "TYPE", "SIGN", "ACTIVE", "DELAY (DAYS)"]);
    for r in &c.rules {
        t.add_row([
            if r.project.is_empty() {
                "/".to_string()
            } else {
                r.project.clone()
            },
            r.kind.clone(),
            if r.positive { "+" } else { "-" }.to_string(),
            r.active.to_string(),
            r.delay_days.to_string(),
        ]);
    }
    say!("rules (projects: {}):\n{t}", projects.join(", "));
}

async fn queue(
    store: &crate::store::Store,
    account: Option<&str>,
    last: i64,
) -> anyhow::Result<i32> {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(["DUE", "ACCOUNT", "TO", "EVENT", "STATE", "TRIES", "NOTE"]);
    for o in store.alert_outbox(account, last.clamp(1, 10_000)).await? {
        t.add_row([
            local_time(o.due_at),
            o.account,
            o.address,
            o.event_id,
            o.state,
            o.attempts.to_string(),
            o.last_error.unwrap_or_default(),
        ]);
    }
    say!("{t}");
    Ok(EXIT_OK)
}
