//! `controller executions list|show|log`: the execution history.

use clap::Subcommand;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};

use super::{Cli, EXIT_OK};
use crate::store::{ExecutionRow, Store};

#[derive(Subcommand, Debug)]
pub enum ExecutionsCmd {
    /// Recent executions, newest first.
    List {
        /// Only this job's executions.
        #[arg(long)]
        job: Option<String>,
        /// How many.
        #[arg(short = 'n', long, default_value_t = 20)]
        limit: i64,
    },
    /// One execution: options, per-server results, collected files.
    Show {
        /// Execution ID, a unique prefix of it, or `latest`.
        id: String,
    },
    /// The recorded output of an execution.
    Log {
        /// Execution ID, a unique prefix of it, or `latest`.
        id: String,
        /// Only this server's lines.
        #[arg(short, long)]
        server: Option<String>,
    },
}

fn when(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        })
        .unwrap_or_default()
}

fn took(e: &ExecutionRow) -> String {
    e.finished_at
        .map(|f| format!("{:.1}s", (f - e.started_at) as f64 / 1000.0))
        .unwrap_or_else(|| "-".into())
}

pub async fn run(cli: &Cli, cmd: &ExecutionsCmd) -> anyhow::Result<i32> {
    let cfg = super::config(cli)?;
    let url = cfg
        .database
        .clone()
        .unwrap_or_else(|| crate::store::default_url(&cfg.data_dir));
    let store = Store::open(&url).await?;
    match cmd {
        ExecutionsCmd::List { job, limit } => {
            let rows = store.list_executions(job.as_deref(), *limit).await?;
            let mut t = Table::new();
            t.load_preset(UTF8_FULL_CONDENSED);
            t.set_header(vec![
                "ID", "JOB", "STATUS", "STARTED", "DURATION", "SERVERS", "FAILED",
            ]);
            for e in &rows {
                t.add_row(vec![
                    e.id.clone(),
                    e.job.clone(),
                    e.status.clone(),
                    when(e.started_at),
                    took(e),
                    e.nodes_total.to_string(),
                    e.nodes_failed.to_string(),
                ]);
            }
            say!("{t}");
        }
        ExecutionsCmd::Show { id } => {
            let e = store.find_execution(id).await?;
            say!(
                "execution {}\njob       {}\nstatus    {}\nstarted   {} by {}\nduration  {}",
                e.id,
                e.job,
                e.status,
                when(e.started_at),
                e.started_by,
                took(&e)
            );
            say!("targets   {}\noptions   {}", e.targets, e.options);
            if let Some(a) = &e.archive {
                say!("archive   {a}");
            }
            if let Some(m) = &e.mail {
                say!("mail      {m}");
            }
            if let Some(err) = &e.error {
                say!("error     {err}");
            }
            let mut t = Table::new();
            t.load_preset(UTF8_FULL_CONDENSED);
            t.set_header(vec![
                "SERVER", "HOST", "STATUS", "EXIT", "STEP", "DURATION", "FILES", "ERROR",
            ]);
            for n in store.nodes(&e.id).await? {
                let dur = match (n.started_at, n.finished_at) {
                    (Some(s), Some(f)) => format!("{:.1}s", (f - s) as f64 / 1000.0),
                    _ => "-".into(),
                };
                t.add_row(vec![
                    n.node,
                    n.host,
                    n.status,
                    n.exit_code
                        .map(|c| c.to_string())
                        .unwrap_or_else(|| "-".into()),
                    n.step_reached.to_string(),
                    dur,
                    n.files.to_string(),
                    n.error.unwrap_or_default(),
                ]);
            }
            say!("\n{t}");
            let files = store.files(&e.id).await?;
            if !files.is_empty() {
                say!("\ncollected files:");
                for f in files {
                    say!(
                        "  {}/{}  ({} bytes, from {})",
                        f.node,
                        f.local_path,
                        f.size,
                        f.remote_path
                    );
                }
            }
        }
        ExecutionsCmd::Log { id, server } => {
            let e = store.find_execution(id).await?;
            let lines = store.logs(&e.id, server.as_deref()).await?;
            let width = lines.iter().map(|l| l.node.len()).max().unwrap_or(4);
            for l in lines {
                let sep = if l.stream == "stdout" { '|' } else { '!' };
                let ts = chrono::DateTime::from_timestamp_millis(l.ts)
                    .map(|t| {
                        t.with_timezone(&chrono::Local)
                            .format("%H:%M:%S%.3f")
                            .to_string()
                    })
                    .unwrap_or_default();
                say!("{ts} {:<width$} {sep} {}", l.node, l.line);
            }
        }
    }
    store.close().await;
    Ok(EXIT_OK)
}
