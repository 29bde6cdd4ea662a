//! What an execution leaves behind for people: `summary.txt`, `summary.json`, the job's
//! mail, and the closing lines on the terminal.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use ordo_jobs::{Context, Job};

use super::Outcome;
use crate::fanout::NodeResult;
use crate::mail;
use crate::project::ProjectConfig;
use crate::store::ExecutionStatus;

pub(super) fn write_summaries(
    exec_dir: &Path,
    job: &Job,
    id: &str,
    status: ExecutionStatus,
    results: &[NodeResult],
    table: &str,
) -> anyhow::Result<()> {
    std::fs::write(
        exec_dir.join("summary.txt"),
        format!(
            "job {} execution {id}: {status}\n\n{table}\n{}",
            job.name,
            warnings_text(results)
        ),
    )?;
    std::fs::write(
        exec_dir.join("summary.json"),
        summary_json(job, id, status.as_str(), results)?,
    )?;
    Ok(())
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

pub fn summary_json(
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

pub(super) fn print_end(o: &Outcome) {
    say!("\n{}", o.table);
    if let Some(p) = &o.archive {
        say!(
            "archive: {} ({} file(s) collected)",
            p.display(),
            o.collected
        );
    }
    let failed = o.results.iter().filter(|r| !r.status.is_ok()).count();
    if o.results.is_empty() {
        say!(
            "execution {} {} in {:.1}s",
            o.id,
            o.status,
            (o.finished_at - o.started_at) as f64 / 1000.0
        );
        return;
    }
    say!(
        "execution {} {}: {} of {} server(s) succeeded in {:.1}s",
        o.id,
        o.status,
        o.results.len() - failed,
        o.results.len(),
        (o.finished_at - o.started_at) as f64 / 1000.0
    );
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn send_mail(
    cfg: &ProjectConfig,
    job: &Job,
    spec: &ordo_jobs::MailSpec,
    options: &ordo_jobs::OptionValues,
    id: &str,
    status: ExecutionStatus,
    table: &str,
    archive_path: Option<&PathBuf>,
) -> anyhow::Result<String> {
    let cx = Context::execution(&options.values, &job.name, id, Some(status.as_str()));
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
                crate::process::hostname()
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
    Ok(mail::send_or_queue(&cfg.mail, &out).await?)
}
