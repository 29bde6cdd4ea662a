//! `controller plan <job>`: what a run would do, without connecting anywhere.

use clap::Args;
use ordo_jobs::{Context, StepAction};

use super::{Cli, EXIT_OK};

#[derive(Args, Debug)]
pub struct PlanArgs {
    /// The job's name (its path under the jobs folder, without extension).
    pub job: String,
    /// An option value, NAME=VALUE (repeatable).
    #[arg(short = 'o', long = "opt")]
    pub opts: Vec<String>,
    /// Narrow the job's targets with another filter.
    #[arg(short, long)]
    pub limit: Option<String>,
}

pub fn run(cli: &Cli, a: &PlanArgs) -> anyhow::Result<i32> {
    let cfg = super::config(cli)?;
    let inv = super::inventory(&cfg)?;
    let job = super::job(&cfg, &a.job)?;
    if let Some(t) = &job.transfer {
        return plan_transfer(&cfg, &job, t);
    }
    let opts = super::options(&job, &a.opts)?;
    let nodes = super::select(&inv, &job, a.limit.as_deref())?;
    say!("job {}: {}", job.name, job.description);
    say!(
        "targets: {}{}",
        job.targets,
        a.limit
            .as_ref()
            .map(|l| format!(" and {l}"))
            .unwrap_or_default()
    );
    for (k, v) in opts.masked() {
        say!("option {k} = {v}");
    }
    say!(
        "\n{} server(s), at most {} at once, on failure: {:?}",
        nodes.len(),
        job.parallelism,
        job.on_failure
    );
    for n in &nodes {
        say!(
            "  {:<20} {}:{} user={} transport={} groups={}",
            n.name,
            n.host,
            n.port.unwrap_or(22),
            n.user.as_deref().unwrap_or("(default)"),
            n.transport.as_str(),
            n.groups.iter().cloned().collect::<Vec<_>>().join(",")
        );
    }
    let first = &nodes[0];
    let cx = Context {
        options: Some(&opts.values),
        node_name: Some(&first.name),
        node_host: Some(&first.host),
        node_port: first.port,
        node_user: first.user.as_deref(),
        node_attrs: Some(&first.attributes),
        job_name: Some(&job.name),
        execution_id: Some("<id>"),
        execution_status: None,
    };
    let show = |t: &ordo_jobs::Template| {
        opts.mask(
            &t.expand(&cx)
                .unwrap_or_else(|e| format!("{} ({e})", t.source())),
        )
    };
    say!("\nsteps (as on {}):", first.name);
    for (i, s) in job.steps.iter().enumerate() {
        let what = match &s.action {
            StepAction::Script(t) => format!("inline script, {} lines", show(t).lines().count()),
            StepAction::ScriptFile(p) => format!("script file {}", p.display()),
            StepAction::Command(t) => format!("command: {}", show(t)),
            StepAction::Job(r) => format!(
                "job {} (once, on the controller, after every server finished the steps before){}",
                r.job,
                if r.options.is_empty() {
                    String::new()
                } else {
                    format!(
                        " options {}",
                        r.options
                            .iter()
                            .map(|(k, t)| format!("{k}={}", show(t)))
                            .collect::<Vec<_>>()
                            .join(" ")
                    )
                }
            ),
        };
        let args: Vec<String> = s.args.iter().map(show).collect();
        let run_as = s
            .run_as
            .as_ref()
            .or(job.run_as.as_ref())
            .map(|r| format!(" as {} ({:?})", show(&r.user), r.method))
            .unwrap_or_default();
        let timeout = s
            .timeout
            .map(|t| format!(", timeout {}", humantime::format_duration(t)))
            .unwrap_or_default();
        say!(
            "  {}. {} — {what}{}{run_as}{timeout}",
            i + 1,
            s.name,
            if args.is_empty() {
                String::new()
            } else {
                format!(" args {args:?}")
            }
        );
    }
    match &job.collect {
        Some(c) => {
            say!("\ncollect (as on {}):", first.name);
            for p in &c.paths {
                say!("  {}", show(p));
            }
            say!(
                "  limits: {} per file, {} per server; timeout {} per server",
                ordo_jobs::units::format_size(c.max_file_size),
                ordo_jobs::units::format_size(c.max_total_size),
                humantime::format_duration(c.timeout)
            );
        }
        None => say!("\ncollect: nothing"),
    }
    if let Some(m) = &job.mail {
        let to: Vec<String> = m.to.iter().map(show).collect();
        let via = match &cfg.mail.smtp {
            Some(s) => format!("SMTP {}", s.host),
            None => format!("outbox {}", cfg.mail.outbox.display()),
        };
        say!("\nmail ({:?}) to {} via {via}", m.when, to.join(", "));
    }
    Ok(EXIT_OK)
}

/// A transfer scenario: its partner, and the files a run would take now.
fn plan_transfer(
    cfg: &crate::config::ProjectConfig,
    job: &ordo_jobs::Job,
    t: &ordo_jobs::transfer::TransferSpec,
) -> anyhow::Result<i32> {
    let mut set = ordo_jobs::JobSet::default();
    set.jobs
        .insert(job.name.clone(), std::sync::Arc::new(job.clone()));
    let profiles = super::profiles(cfg, &set)?;
    let p = &profiles[&t.profile];
    say!("transfer scenario {}: {}", job.name, job.description);
    say!(
        "profile {} ({}): {}",
        p.name,
        p.description,
        p.protocol.describe()
    );
    if t.direction == ordo_jobs::transfer::Direction::Receive {
        say!(
            "fetches the partner's waiting files into {}",
            p.receiving
                .dir
                .clone()
                .unwrap_or_else(|| cfg.data_dir.join("received").join(&p.name))
                .display()
        );
        return Ok(EXIT_OK);
    }
    say!(
        "takes {}/{} -> backup {} (collision: {}){}{}",
        t.source.display(),
        t.pattern,
        t.backup.display(),
        t.collision.as_str(),
        if t.compress { ", gzip" } else { "" },
        t.segment_size
            .map(|s| format!(", segments of {}", ordo_jobs::units::format_size(s)))
            .unwrap_or_default()
    );
    if !t.active {
        say!("inactive: a run does nothing");
    }
    match crate::transfer::files::find(&t.source, &t.matcher) {
        Ok(found) if found.is_empty() => say!("\nno file to send now"),
        Ok(found) => {
            say!("\nwould send now, in this order:");
            for f in found {
                let backup = crate::transfer::files::backup_target(&t.backup, &f.name, t.collision)
                    .map(|b| b.display().to_string())
                    .unwrap_or_else(|| "not sent (collision: skip)".into());
                say!("  {} ({} bytes) -> {backup}", f.name, f.size);
            }
        }
        Err(e) => say!("\ncannot read {}: {e}", t.source.display()),
    }
    Ok(EXIT_OK)
}
