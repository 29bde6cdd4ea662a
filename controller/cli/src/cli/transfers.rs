//! `controller transfers list|resend|join`: the transfer history, sending files again, and
//! rebuilding a segmented file.

use std::path::PathBuf;

use clap::Subcommand;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};

use super::{BadInput, Cli, EXIT_OK};

#[derive(Subcommand, Debug)]
pub enum TransfersCmd {
    /// Files sent and received, newest first.
    List {
        /// Only this scenario (job).
        #[arg(long)]
        scenario: Option<String>,
        /// Only these statuses (prepared, deposited, delivered, acknowledged, failed,
        /// unacknowledged, skipped, received); repeatable or comma-separated.
        #[arg(long, value_delimiter = ',')]
        status: Vec<String>,
        /// How many, newest first.
        #[arg(short = 'n', long, default_value_t = 50)]
        last: i64,
    },
    /// Send files again, now: one transfer by its ID (even one delivered or acknowledged:
    /// the partner lost it), or every failed one (`--failed`, of one `--scenario` or all).
    /// The scenario runs, and sends them from the backup folder before its new files.
    Resend {
        /// A transfer ID (or a unique beginning of one), from `transfers list`.
        id: Option<String>,
        /// Every transfer that failed (or was cut by a crash).
        #[arg(long, conflicts_with = "id")]
        failed: bool,
        /// With --failed: only this scenario's.
        #[arg(long)]
        scenario: Option<String>,
    },
    /// Rebuild a file sent in segments: give its `.manifest` (the segments next to it).
    Join {
        manifest: PathBuf,
        /// Where to write the file (default: the manifest's folder).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
}

use crate::store::TRANSFER_STATUSES as STATUSES;

pub async fn run(cli: &Cli, cmd: &TransfersCmd) -> anyhow::Result<i32> {
    match cmd {
        TransfersCmd::Resend {
            id,
            failed,
            scenario,
        } => resend(cli, id.as_deref(), *failed, scenario.as_deref()).await,
        TransfersCmd::Join { manifest, output } => {
            let out = output.clone().unwrap_or_else(|| {
                manifest
                    .parent()
                    .map(|p| p.to_path_buf())
                    .unwrap_or_else(|| PathBuf::from("."))
            });
            let file = crate::transfer::files::join(manifest, &out).map_err(BadInput)?;
            say!(
                "joined: {} ({} bytes, checked against the manifest)",
                file.display(),
                std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0)
            );
            Ok(EXIT_OK)
        }
        TransfersCmd::List {
            scenario,
            status,
            last,
        } => {
            if let Some(bad) = status.iter().find(|s| !STATUSES.contains(&s.as_str())) {
                return Err(BadInput(format!(
                    "--status `{bad}` is not one of: {}",
                    STATUSES.join(", ")
                ))
                .into());
            }
            let cfg = super::config(cli)?;
            let Some(store) = super::history(&cfg).await? else {
                say!("no transfer recorded yet");
                return Ok(EXIT_OK);
            };
            let rows = store.transfers(scenario.as_deref(), status, *last).await?;
            store.close().await;
            let mut t = Table::new();
            t.load_preset(UTF8_FULL_CONDENSED);
            t.set_header([
                "TRANSFER",
                "SCENARIO",
                "PROFILE",
                "DIR",
                "FILE",
                "BYTES",
                "STATUS",
                "TRIES",
                "WHEN",
                "WHERE / WHY",
            ]);
            for r in &rows {
                t.add_row([
                    r.id[r.id.len().saturating_sub(12)..].to_string(),
                    r.scenario.clone(),
                    r.profile.clone(),
                    r.direction.clone(),
                    r.file_name.clone(),
                    r.size.to_string(),
                    r.status.clone(),
                    r.attempts.to_string(),
                    crate::clock::local_time(r.updated_at),
                    r.error
                        .clone()
                        .or_else(|| r.remote.clone())
                        .unwrap_or_else(|| r.stored_path.clone()),
                ]);
            }
            if rows.is_empty() {
                say!("no transfer recorded");
            } else {
                say!("{t}");
            }
            Ok(EXIT_OK)
        }
    }
}

/// `transfers resend`: marks the transfer (or finds the failed ones), then runs each
/// scenario concerned in the foreground; the worst exit code.
async fn resend(
    cli: &Cli,
    id: Option<&str>,
    failed: bool,
    scenario: Option<&str>,
) -> anyhow::Result<i32> {
    let cfg = super::config(cli)?;
    let Some(store) = super::history(&cfg).await? else {
        return Err(BadInput("no transfer is recorded in this project yet".into()).into());
    };
    let mut scenarios: Vec<String> = Vec::new();
    match (id, failed) {
        (Some(id), _) => {
            let all = store.transfers(None, &[], 1_000_000).await?;
            let found: Vec<_> = all.into_iter().filter(|t| t.id.starts_with(id)).collect();
            let mut t = match found.len() {
                1 => found.into_iter().next().expect("one"),
                0 => return Err(BadInput(format!("no transfer matches `{id}`")).into()),
                _ => {
                    return Err(BadInput(format!(
                        "`{id}` matches several transfers: give more characters"
                    ))
                    .into());
                }
            };
            if t.direction != "send" || t.stored_path.is_empty() {
                return Err(BadInput(format!(
                    "transfer {} ({}) was not sent from a backup folder: nothing to send again",
                    t.id, t.status
                ))
                .into());
            }
            say!("sending again {} ({}, {})", t.file_name, t.id, t.status);
            t.error = Some(format!(
                "sent again at the request of {} (was {})",
                crate::session::current_user(),
                t.status
            ));
            t.status = "failed".into();
            t.updated_at = crate::clock::now_ms();
            store.save_transfer(&t).await?;
            scenarios.push(t.scenario);
        }
        (None, true) => {
            for t in store
                .transfers(scenario, &["failed".into(), "prepared".into()], 1_000_000)
                .await?
            {
                if t.direction == "send" && !scenarios.contains(&t.scenario) {
                    scenarios.push(t.scenario);
                }
            }
            if scenarios.is_empty() {
                say!("no failed transfer to send again");
            }
        }
        (None, false) => {
            return Err(BadInput("give a transfer ID, or --failed".into()).into());
        }
    }
    store.close().await;
    let mut code = EXIT_OK;
    for name in scenarios {
        let (loaded, job) = crate::project::Loaded::for_job(cfg.clone(), &name)?;
        let req = crate::actions::runs::StartRun {
            job: job.name.clone(),
            cause: "resend".into(),
            ..Default::default()
        };
        let base = crate::exec::Launch {
            terminal: true,
            ..crate::exec::Launch::default()
        };
        let admit = super::run::Admit::Start(req, base);
        code = code.max(super::run::run_in_foreground(loaded, admit).await?);
    }
    Ok(code)
}
