//! `controller run <job>`: run on every selected server, collect, archive, mail, record.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context as _;
use clap::Args;
use ordo_inventory::Transport;
use ordo_jobs::{Context, Job, MailWhen, StepAction};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{BadInput, Cli, EXIT_FAILED, EXIT_OK};
use crate::config::ProjectConfig;
use crate::engine::{self, Event, NodeResult, RunRequest, now_ms};
use crate::output::{Terminal, summary_table};
use crate::store::{CollectedFile, ExecutionRow, LogLine, NodeRow, Store};
use crate::transport::{AgentSettings, Settings, SshSettings};
use crate::{archive, mail};

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The job's name (its path under the jobs folder, without extension).
    pub job: String,
    /// An option value, NAME=VALUE (repeatable).
    #[arg(short = 'o', long = "opt")]
    pub opts: Vec<String>,
    /// Narrow the job's targets with another filter.
    #[arg(short, long)]
    pub limit: Option<String>,
    /// Override the job's parallelism (servers at once).
    #[arg(short, long)]
    pub parallelism: Option<usize>,
    /// Trust and record host keys not yet in known_hosts (a changed key is still refused).
    #[arg(long)]
    pub accept_new_host_keys: bool,
    /// Do not send the job's mail.
    #[arg(long)]
    pub no_mail: bool,
    /// No progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

pub async fn run(cli: &Cli, a: &RunArgs) -> anyhow::Result<i32> {
    let cfg = super::config(cli)?;
    let inv = super::inventory(&cfg)?;
    let job = Arc::new(super::job(&cfg, &a.job)?);
    let options = super::options(&job, &a.opts)?;
    let nodes = super::select(&inv, &job, a.limit.as_deref())?;
    let script_files = read_scripts(&job)?;
    let transports = transport_settings(&cfg, &nodes, a.accept_new_host_keys)?;
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("cannot create data folder {}", cfg.data_dir.display()))?;
    let url = cfg
        .database
        .clone()
        .unwrap_or_else(|| crate::store::default_url(&cfg.data_dir));
    let store = Store::open(&url).await?;

    let id = execution_id();
    let exec_dir = cfg.data_dir.join("executions").join(&id);
    std::fs::create_dir_all(&exec_dir)
        .with_context(|| format!("cannot create {}", exec_dir.display()))?;
    let mut row = ExecutionRow {
        id: id.clone(),
        job: job.name.clone(),
        status: "running".into(),
        options: serde_json::to_string(&options.masked())?,
        targets: match &a.limit {
            Some(l) => format!("({}) and ({l})", job.targets),
            None => job.targets.to_string(),
        },
        started_at: now_ms(),
        finished_at: None,
        nodes_total: nodes.len() as i64,
        nodes_ok: 0,
        nodes_failed: 0,
        archive: None,
        mail: None,
        started_by: crate::transport::current_user(),
        error: None,
    };
    store.insert_execution(&row).await?;
    let parallelism = a.parallelism.unwrap_or(job.parallelism).max(1);
    say!(
        "execution {id}: job {} on {} server(s), {} at once",
        job.name,
        nodes.len(),
        parallelism.min(nodes.len())
    );

    let cancel = CancellationToken::new();
    let aborted = Arc::new(AtomicBool::new(false));
    {
        let (cancel, aborted) = (cancel.clone(), aborted.clone());
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!(
                    "\ninterrupted: stopping the job on every server (Ctrl-C again to quit at once)"
                );
                aborted.store(true, std::sync::atomic::Ordering::SeqCst);
                cancel.cancel();
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(130);
                }
            }
        });
    }
    let width = nodes.iter().map(|n| n.name.len()).max().unwrap_or(4);
    let req = Arc::new(RunRequest {
        job: job.clone(),
        options: options.clone(),
        nodes,
        execution_id: id.clone(),
        exec_dir: exec_dir.clone(),
        transports,
        parallelism,
        script_files,
        cancel: cancel.clone(),
        timed_out: AtomicBool::new(false),
    });
    let (tx, rx) = mpsc::channel::<Event>(1024);
    let observer = tokio::spawn(observe(
        rx,
        store.clone(),
        id.clone(),
        Terminal::new(req.nodes.len(), width, !a.no_progress),
    ));
    let results = engine::run(req.clone(), tx).await;
    observer.await.context("the event recorder stopped")??;

    let failed = results.iter().filter(|r| !r.status.is_ok()).count();
    let status = if aborted.load(std::sync::atomic::Ordering::SeqCst) {
        "aborted"
    } else if req.timed_out.load(std::sync::atomic::Ordering::SeqCst) {
        "timed-out"
    } else if failed > 0 {
        "failed"
    } else {
        "succeeded"
    };
    let table = summary_table(&results);
    std::fs::write(
        exec_dir.join("summary.txt"),
        format!(
            "job {} execution {id}: {status}\n\n{table}\n{}",
            job.name,
            warnings_text(&results)
        ),
    )?;
    std::fs::write(
        exec_dir.join("summary.json"),
        summary_json(&job, &id, status, &results)?,
    )?;
    let collected: usize = results.iter().map(|r| r.files.len()).sum();

    let archive_path = if job.archive {
        let (dir, name) = (
            exec_dir.clone(),
            format!("{}-{id}", job.name.replace('/', "_")),
        );
        match tokio::task::spawn_blocking(move || archive::build(&dir, &name)).await? {
            Ok(p) => Some(p),
            Err(e) => {
                row.error = Some(format!("archive: {e}"));
                eprintln!("archive failed: {e}");
                None
            }
        }
    } else {
        None
    };

    let mut mail_note = None;
    if let (Some(spec), false) = (&job.mail, a.no_mail) {
        let wanted = match spec.when {
            MailWhen::Always => true,
            MailWhen::OnFailure => status != "succeeded",
            MailWhen::OnSuccess => status == "succeeded",
            MailWhen::Never => false,
        };
        if wanted && (spec.send_empty || collected > 0) {
            match send_mail(
                &cfg,
                &job,
                spec,
                &options,
                &id,
                status,
                &table,
                archive_path.as_ref(),
            )
            .await
            {
                Ok(where_) => {
                    say!("mail sent: {where_}");
                    mail_note = Some(where_);
                }
                Err(e) => {
                    eprintln!("{e}");
                    mail_note = Some(format!("not sent: {e}"));
                }
            }
        } else if wanted {
            mail_note = Some("not sent: nothing was collected (send_empty: false)".into());
            say!("mail not sent: nothing was collected");
        }
    }

    row.status = status.into();
    row.finished_at = Some(now_ms());
    row.nodes_ok = (results.len() - failed) as i64;
    row.nodes_failed = failed as i64;
    row.archive = archive_path.as_ref().map(|p| p.display().to_string());
    row.mail = mail_note;
    store.finish_execution(&row).await?;
    store.close().await;

    say!("\n{table}");
    if let Some(p) = &archive_path {
        say!("archive: {} ({} file(s) collected)", p.display(), collected);
    }
    say!(
        "execution {id} {status}: {} of {} server(s) succeeded in {:.1}s",
        results.len() - failed,
        results.len(),
        (row.finished_at.unwrap_or(0) - row.started_at) as f64 / 1000.0
    );
    Ok(if failed == 0 && status == "succeeded" {
        EXIT_OK
    } else {
        EXIT_FAILED
    })
}

/// `20261124-070512-4813fa`: date, time, milliseconds (so IDs sort by time even within
/// one second), then three random hex digits.
fn execution_id() -> String {
    let now = chrono::Local::now();
    let u = uuid::Uuid::now_v7().simple().to_string();
    format!(
        "{}-{:03}{}",
        now.format("%Y%m%d-%H%M%S"),
        now.timestamp_subsec_millis().min(999),
        &u[u.len() - 3..]
    )
}

fn read_scripts(job: &Job) -> Result<Vec<Option<Vec<u8>>>, BadInput> {
    job.steps
        .iter()
        .map(|s| match &s.action {
            StepAction::ScriptFile(p) => std::fs::read(p).map(Some).map_err(|e| {
                BadInput(format!(
                    "{}: step `{}`: cannot read script_file {}: {e}",
                    job.file.display(),
                    s.name,
                    p.display()
                ))
            }),
            _ => Ok(None),
        })
        .collect()
}

/// Loads what the selected servers' transports need (SSH keys, the agent PKI), only then.
pub fn transport_settings(
    cfg: &ProjectConfig,
    nodes: &[ordo_inventory::Node],
    accept_new: bool,
) -> Result<Settings, BadInput> {
    let mut s = Settings::default();
    if nodes.iter().any(|n| n.transport == Transport::Ssh) {
        s.ssh = Some(ssh_settings(cfg, accept_new)?);
    }
    if nodes.iter().any(|n| n.transport == Transport::Agent) {
        let pki = crate::pki::Pki::new(&cfg.pki_dir);
        s.agent = Some(
            AgentSettings::load(
                &pki.ca_cert(),
                &pki.controller_cert(),
                &pki.controller_key(),
                cfg.ssh.connect_timeout,
            )
            .map_err(|e| BadInput(e.to_string()))?,
        );
    }
    Ok(s)
}

fn ssh_settings(cfg: &ProjectConfig, accept_new: bool) -> Result<SshSettings, BadInput> {
    let known_hosts = cfg.ssh.known_hosts.clone().unwrap_or_else(|| {
        PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into()))
            .join(".ssh/known_hosts")
    });
    SshSettings::new(
        cfg.ssh
            .user
            .clone()
            .unwrap_or_else(crate::transport::current_user),
        &cfg.ssh.identity,
        known_hosts,
        accept_new || cfg.ssh.accept_new_host_keys,
        cfg.ssh.connect_timeout,
        cfg.ssh.connect_attempts,
    )
    .map_err(|e| {
        BadInput(format!(
            "ssh: {e} (set ssh.identity in {})",
            cfg.root.join(crate::config::CONFIG_FILE).display()
        ))
    })
}

/// Prints events and records them; log lines are written in batches.
async fn observe(
    mut rx: mpsc::Receiver<Event>,
    store: Store,
    id: String,
    mut term: Terminal,
) -> anyhow::Result<()> {
    let mut batch: Vec<LogLine> = Vec::new();
    let mut seq = 0i64;
    let mut failed = 0usize;
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(250));
    loop {
        let ev = tokio::select! {
            ev = rx.recv() => ev,
            _ = tick.tick() => {
                store.insert_logs(&id, &std::mem::take(&mut batch)).await?;
                continue;
            }
        };
        let Some(ev) = ev else { break };
        if let Event::NodeDone(r) = &ev
            && !r.status.is_ok()
        {
            failed += 1;
        }
        term.event(&ev, failed);
        if rx.is_empty() {
            term.flush();
        }
        match ev {
            Event::Line {
                node,
                step,
                stderr,
                ts,
                line,
            } => {
                seq += 1;
                batch.push(LogLine {
                    seq,
                    node,
                    step: step as i64,
                    stream: if stderr { "stderr" } else { "stdout" }.into(),
                    ts,
                    line,
                });
                if batch.len() >= 1000 {
                    store.insert_logs(&id, &std::mem::take(&mut batch)).await?;
                }
            }
            Event::Warning { node, message } => {
                seq += 1;
                batch.push(LogLine {
                    seq,
                    node,
                    step: 0,
                    stream: "ordo".into(),
                    ts: now_ms(),
                    line: format!("warning: {message}"),
                });
            }
            Event::AgentSeen(row) => store.upsert_agent(&row).await?,
            Event::NodeDone(r) => {
                store.insert_logs(&id, &std::mem::take(&mut batch)).await?;
                store.upsert_node(&node_row(&id, &r)).await?;
                let files: Vec<CollectedFile> = r
                    .files
                    .iter()
                    .map(|f| CollectedFile {
                        node: r.node.clone(),
                        remote_path: f.remote_path.clone(),
                        local_path: f.local_path.clone(),
                        size: f.size as i64,
                    })
                    .collect();
                store.insert_files(&id, &files).await?;
            }
            _ => {}
        }
    }
    store.insert_logs(&id, &batch).await?;
    term.finish();
    Ok(())
}

fn node_row(id: &str, r: &NodeResult) -> NodeRow {
    NodeRow {
        execution_id: id.to_string(),
        node: r.node.clone(),
        host: r.host.clone(),
        transport: r.transport.as_str().into(),
        status: r.status.as_str().into(),
        exit_code: r.exit_code.map(i64::from),
        step_reached: r.step_reached as i64,
        started_at: r.started_at,
        finished_at: r.finished_at,
        files: r.files.len() as i64,
        bytes: r.bytes as i64,
        error: r.error.clone(),
    }
}

fn warnings_text(results: &[NodeResult]) -> String {
    let mut out = String::new();
    for r in results.iter().filter(|r| !r.warnings.is_empty()) {
        out.push_str(&format!("\nwarnings on {}:\n", r.node));
        for w in &r.warnings {
            out.push_str(&format!("  - {w}\n"));
        }
    }
    out
}

fn summary_json(
    job: &Job,
    id: &str,
    status: &str,
    results: &[NodeResult],
) -> anyhow::Result<String> {
    let servers: Vec<serde_json::Value> = results
        .iter()
        .map(|r| {
            serde_json::json!({
                "server": r.node, "host": r.host, "status": r.status.as_str(), "exit_code": r.exit_code,
                "duration_ms": r.duration().map(|d| d.as_millis() as u64), "files": r.files.iter().map(|f| &f.local_path).collect::<Vec<_>>(),
                "error": r.error, "warnings": r.warnings,
            })
        })
        .collect();
    Ok(serde_json::to_string_pretty(
        &serde_json::json!({"job": job.name, "execution": id, "status": status, "servers": servers}),
    )?)
}

#[allow(clippy::too_many_arguments)]
async fn send_mail(
    cfg: &ProjectConfig,
    job: &Job,
    spec: &ordo_jobs::MailSpec,
    options: &ordo_jobs::OptionValues,
    id: &str,
    status: &str,
    table: &str,
    archive_path: Option<&PathBuf>,
) -> anyhow::Result<String> {
    let cx = Context {
        options: Some(&options.values),
        job_name: Some(&job.name),
        execution_id: Some(id),
        execution_status: Some(status),
        ..Context::default()
    };
    let expand = |t: &ordo_jobs::Template| {
        t.expand(&cx)
            .map_err(|e| anyhow::anyhow!("mail: {e} in `{}`", t.source()))
    };
    let mut seen = HashSet::new();
    let to: Vec<String> = spec
        .to
        .iter()
        .map(expand)
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .filter(|a| seen.insert(a.clone()))
        .collect();
    let cc: Vec<String> = spec.cc.iter().map(expand).collect::<Result<_, _>>()?;
    let mut body = options.mask(&expand(&spec.body)?);
    body.push_str(&format!("\n\n{table}\n"));
    let mut attachment = None;
    if let Some(p) = archive_path {
        let size = mail::file_size(p);
        if size <= spec.max_attachment_size {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "results.tar.gz".into());
            attachment = Some((name, tokio::fs::read(p).await?));
        } else {
            body.push_str(&format!(
                "\nThe archive ({}) is over the mail limit ({}) and is not attached: it is at {} on {}.\n",
                ordo_jobs::units::format_size(size),
                ordo_jobs::units::format_size(spec.max_attachment_size),
                p.display(),
                crate::config::hostname()
            ));
        }
    }
    let out = mail::Outgoing {
        to,
        cc,
        subject: options.mask(&expand(&spec.subject)?),
        body,
        attachment,
    };
    Ok(mail::send(&cfg.mail, &out).await?)
}
