//! `controller executions list|show|log`: the execution history.

use clap::Subcommand;
use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};

use super::{BadInput, Cli, EXIT_OK};
use crate::project::ProjectConfig;
use crate::store::ExecutionRow;

#[derive(Subcommand, Debug)]
pub enum ExecutionsCmd {
    /// Recent executions, newest first.
    List {
        /// Only this job's executions.
        #[arg(long)]
        job: Option<String>,
        /// How many, newest first.
        #[arg(short = 'n', long, default_value_t = 20)]
        last: i64,
    },
    /// One execution: options, per-server results, collected files.
    Show {
        /// Execution ID, a unique prefix of it, or `latest`.
        id: String,
    },
    /// Run an execution again: same job, options and servers (secret options must be
    /// given again: --opt-file NAME=FILE, ORDO_OPT_<NAME> or the prompt).
    Retry {
        /// Execution ID, a unique prefix of it, or `latest`.
        id: String,
        /// Only the servers that did not succeed.
        #[arg(long)]
        failed_only: bool,
        /// Option values that override the recorded ones (secret options, never recorded,
        /// must be given again: --opt-file, ORDO_OPT_<NAME> or the prompt).
        #[command(flatten)]
        opts: super::opts::OptArgs,
        /// Trust and record host keys not yet in known_hosts.
        #[arg(long)]
        accept_new_host_keys: bool,
        /// Do not send the job's mail.
        #[arg(long)]
        no_mail: bool,
        /// No progress bar.
        #[arg(long)]
        no_progress: bool,
    },
    /// Abort a running execution, whichever controller (`run` or `serve`) runs it; waits
    /// until it stopped.
    Abort {
        /// Execution ID or a unique prefix of it.
        id: String,
    },
    /// Delete old executions and their files, by each job's retention (or ordo.yaml's).
    Purge {
        /// Only this job's executions.
        #[arg(long)]
        job: Option<String>,
        /// Show what would be deleted; delete nothing.
        #[arg(long)]
        dry_run: bool,
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

fn took(e: &ExecutionRow) -> String {
    e.finished_at
        .map(|f| format!("{:.1}s", (f - e.started_at) as f64 / 1000.0))
        .unwrap_or_else(|| "-".into())
}

pub async fn run(cli: &Cli, cmd: &ExecutionsCmd) -> anyhow::Result<i32> {
    let cfg = super::config(cli)?;
    let Some(store) = super::history(&cfg).await? else {
        return no_history(&cfg, cmd);
    };
    match cmd {
        ExecutionsCmd::List { job, last } => {
            if *last < 1 {
                return Err(BadInput(format!("--last {last}: at least 1")).into());
            }
            let rows = store.list_executions(job.as_deref(), *last).await?;
            if rows.is_empty() {
                store.close().await;
                return nothing_listed(&cfg, job.as_deref());
            }
            let mut t = Table::new();
            t.load_preset(UTF8_FULL_CONDENSED);
            t.set_header(vec![
                "ID", "JOB", "STATUS", "CAUSE", "STARTED", "DURATION", "SERVERS", "FAILED",
            ]);
            for e in &rows {
                t.add_row(vec![
                    e.id.clone(),
                    e.job.clone(),
                    e.status.to_string(),
                    e.cause.clone(),
                    crate::clock::local_time(e.started_at),
                    took(e),
                    e.nodes_total.to_string(),
                    e.nodes_failed.to_string(),
                ]);
            }
            say!("{t}");
        }
        ExecutionsCmd::Abort { id } => {
            let code = super::executions_act::abort(&store, id).await?;
            store.close().await;
            return Ok(code);
        }
        ExecutionsCmd::Show { id } => {
            let e = store.find_execution(id).await?;
            say!(
                "execution {}\njob       {}\nstatus    {}\nstarted   {} by {}\nduration  {}",
                e.id,
                e.job,
                e.status,
                crate::clock::local_time(e.started_at),
                e.started_by,
                took(&e)
            );
            say!("targets   {}\noptions   {}", e.targets, e.options);
            say!("cause     {}", e.cause);
            if let Some(r) = &e.retry_of {
                say!("retry of  {r}");
            }
            if let Some(i) = e.resumed_from {
                say!(
                    "resumed   at step {}: the members before it succeeded before",
                    i + 1
                );
            }
            if let Some(p) = &e.parent_id {
                say!("started by execution {p}");
            }
            if let Some(a) = &e.archive {
                say!("archive   {a}");
            }
            if let Some(m) = &e.mail {
                say!("mail      {m}");
            }
            if let Some(err) = &e.error {
                say!("error     {err}");
            }
            let children = store.children(&e.id).await?;
            let nodes = store.nodes(&e.id).await?;
            if !children.is_empty() {
                let mut t = Table::new();
                t.load_preset(UTF8_FULL_CONDENSED);
                t.set_header(vec!["AS", "ID", "JOB", "STATUS", "DURATION"]);
                for c in &children {
                    let role = if c.cause == "job-step" {
                        "member"
                    } else {
                        c.cause.as_str()
                    };
                    t.add_row(vec![
                        role.to_string(),
                        c.id.clone(),
                        c.job.clone(),
                        c.status.to_string(),
                        took(c),
                    ]);
                }
                say!("\njobs it started (members in order, then follow-ups):\n{t}");
            }
            let mut t = Table::new();
            t.load_preset(UTF8_FULL_CONDENSED);
            t.set_content_arrangement(ContentArrangement::Dynamic);
            t.set_header(vec![
                "SERVER", "HOST", "STATUS", "EXIT", "STEP", "DURATION", "FILES", "ERROR",
            ]);
            let group = nodes.is_empty() && !children.is_empty();
            for n in nodes {
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
            if !group {
                say!("\n{t}");
            }
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
        ExecutionsCmd::Retry {
            id,
            failed_only,
            opts,
            accept_new_host_keys,
            no_mail,
            no_progress,
        } => {
            let e = store.find_execution(id).await?;
            store.close().await;
            return super::executions_act::retry(
                cfg,
                e,
                *failed_only,
                opts,
                (*accept_new_host_keys, *no_mail, *no_progress),
            )
            .await;
        }
        ExecutionsCmd::Purge { job, dry_run } => {
            // A broken job file does not stop a purge: its executions keep ordo.yaml's
            // retention.
            let jobs = crate::project::jobset(&cfg).unwrap_or_default();
            let ids = crate::serve::purge(&store, &cfg, &jobs, *dry_run, job.as_deref()).await?;
            let verb = if *dry_run { "would purge" } else { "purged" };
            say!("{verb} {} execution(s)", ids.len());
            for id in ids {
                say!("  {id}");
            }
        }
        ExecutionsCmd::Log { id, server } => {
            let e = store.find_execution(id).await?;
            if let Some(name) = server {
                let nodes = store.nodes(&e.id).await?;
                if !nodes.iter().any(|n| n.node == *name) {
                    let names: Vec<String> = nodes.into_iter().map(|n| n.node).collect();
                    store.close().await;
                    return Err(BadInput(format!(
                        "execution {} has no server `{name}` (its servers: {})",
                        e.id,
                        if names.is_empty() {
                            "none".to_string()
                        } else {
                            names.join(", ")
                        }
                    ))
                    .into());
                }
            }
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

/// A project where nothing has run yet: listing shows nothing, the rest finds nothing.
fn no_history(cfg: &ProjectConfig, cmd: &ExecutionsCmd) -> anyhow::Result<i32> {
    match cmd {
        ExecutionsCmd::List { job, .. } => nothing_listed(cfg, job.as_deref()),
        ExecutionsCmd::Purge { .. } => {
            say!("nothing to purge: no execution is recorded in this project");
            Ok(EXIT_OK)
        }
        ExecutionsCmd::Show { id }
        | ExecutionsCmd::Abort { id }
        | ExecutionsCmd::Retry { id, .. }
        | ExecutionsCmd::Log { id, .. } => Err(BadInput(format!(
            "no execution matches `{id}`: nothing has run in this project yet ({} does not exist)",
            cfg.data_dir.join("ordo.db").display()
        ))
        .into()),
    }
}

/// An empty list: fine, unless the job asked for does not exist either.
fn nothing_listed(cfg: &ProjectConfig, job: Option<&str>) -> anyhow::Result<i32> {
    if let Some(name) = job
        && crate::project::job(cfg, name).is_err()
    {
        return Err(BadInput(format!(
            "no job named `{name}` in {}, and no execution of it in the history",
            cfg.jobs.display()
        ))
        .into());
    }
    match job {
        Some(name) => say!("no execution of {name} recorded yet"),
        None => say!("no execution recorded yet"),
    }
    Ok(EXIT_OK)
}
