//! `controller transfers list|join`: the transfer history, and rebuilding a segmented file.

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
    /// Rebuild a file sent in segments: give its `.manifest` (the segments next to it).
    Join {
        manifest: PathBuf,
        /// Where to write the file (default: the manifest's folder).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
}

const STATUSES: &[&str] = &[
    "prepared",
    "deposited",
    "delivered",
    "acknowledged",
    "failed",
    "unacknowledged",
    "skipped",
    "received",
];

pub async fn run(cli: &Cli, cmd: &TransfersCmd) -> anyhow::Result<i32> {
    match cmd {
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
