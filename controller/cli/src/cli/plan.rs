//! `controller plan <job>`: what a run would do, without connecting anywhere.

use std::sync::Arc;

use ordo_inventory::{Node, Transport};
use ordo_jobs::{Context, Job, OptionValues, Step, StepAction};

use super::{Cli, EXIT_OK};
use crate::exec::{Launch, Plan};
use crate::project::ProjectConfig;

/// `plan` takes what `run` takes to choose the run.
pub type PlanArgs = super::opts::JobArgs;

pub fn run(cli: &Cli, a: &PlanArgs) -> anyhow::Result<i32> {
    let cfg = super::config(cli)?;
    let inv = crate::project::inventory(&cfg)?;
    let job = Arc::new(crate::project::job(&cfg, &a.job)?);
    if let Some(t) = &job.transfer {
        return plan_transfer(&cfg, &job, t);
    }
    let options = a.opts.resolve(&job)?;
    let launch = Launch {
        options,
        limit: a.limit.clone(),
        parallelism: a.parallelism,
        ..Launch::default()
    };
    let plan = Plan::new(&inv, job, &launch)?;
    print_plan(&cfg, &plan, &launch.options);
    // What a run would read here before connecting (script files, SSH keys, the agents'
    // certificates): refused now rather than at `run`.
    if let Err(e) = crate::exec::ready(&cfg, &plan, &launch) {
        eprintln!("error: a run would be refused: {e}");
        return Ok(super::EXIT_BAD_INPUT);
    }
    Ok(EXIT_OK)
}

fn print_plan(cfg: &ProjectConfig, plan: &Plan, opts: &OptionValues) {
    let job = &plan.job;
    say!("job {}: {}", job.name, job.description);
    if job.runs_on_servers() {
        say!("targets: {}", plan.targets);
    }
    for (k, v) in opts.masked() {
        say!("option {k} = {v}");
    }
    if job.runs_on_servers() {
        say!(
            "\n{} server(s), at most {} at once, on failure: {}",
            plan.nodes.len(),
            plan.at_once(),
            job.on_failure.as_str()
        );
    }
    for n in &plan.nodes {
        let address = match n.transport {
            Transport::Ssh => format!("{}:{}", n.host, n.port.unwrap_or(22)),
            Transport::Agent => format!(
                "{}:{}",
                n.host,
                n.port.unwrap_or(crate::session::agent::DEFAULT_PORT)
            ),
            Transport::Local => "this machine".into(),
        };
        say!(
            "  {:<20} {address} user={} transport={} groups={}",
            n.name,
            login_user(cfg, n),
            n.transport.as_str(),
            n.groups.iter().cloned().collect::<Vec<_>>().join(",")
        );
    }
    let base = Context::execution(&opts.values, &job.name, "<id>", None);
    let (cx, on) = match plan.nodes.first() {
        Some(first) => (base.on_node(first), format!(" (as on {})", first.name)),
        None => (base, String::new()),
    };
    let show = |t: &ordo_jobs::Template| {
        opts.mask(
            &t.expand(&cx)
                .unwrap_or_else(|e| format!("{} ({e})", t.source())),
        )
    };
    say!("\nsteps{on}:");
    for (i, s) in job.steps.iter().enumerate() {
        say!("  {}", step_line(job, i, s, &show));
    }
    match &job.collect {
        Some(c) => {
            say!("\ncollect{on}:");
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
        let to: Vec<String> = m.to.iter().map(&show).collect();
        let via = match &cfg.mail.smtp {
            Some(s) => format!("SMTP {}", s.host),
            None => format!("the outbox {}", cfg.mail.outbox.display()),
        };
        say!(
            "\nmail ({}) to {} via {via}",
            m.when.as_str(),
            to.join(", ")
        );
    }
}

/// One step as the plan shows it: what it runs, its arguments, as whom, how long.
fn step_line(
    job: &Job,
    i: usize,
    s: &Step,
    show: &dyn Fn(&ordo_jobs::Template) -> String,
) -> String {
    let what = match &s.action {
        StepAction::Script(t) => format!("inline script, {} lines", show(t).lines().count()),
        StepAction::ScriptFile(p) => format!("script file {}", p.display()),
        StepAction::Command(t) => format!("command: {}", show(t)),
        StepAction::WaitFor(w) => format!(
            "wait up to {} for /{}/ in {}",
            show(&w.within),
            show(&w.pattern),
            match &w.source {
                ordo_jobs::WaitSource::File(f) =>
                    format!("{} (from the {})", show(f), w.from.as_str()),
                ordo_jobs::WaitSource::Command(c) => format!("the output of `{}`", show(c)),
            }
        ),
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
    let run_as = match s.run_as.as_ref().or(job.run_as.as_ref()) {
        Some(r) if !show(&r.user).is_empty() => {
            format!(" as {} ({})", show(&r.user), r.method.as_str())
        }
        _ => String::new(),
    };
    let timeout = s
        .timeout
        .map(|t| format!(", timeout {}", humantime::format_duration(t)))
        .unwrap_or_default();
    let args = if args.is_empty() {
        String::new()
    } else {
        format!(" args {args:?}")
    };
    format!("{} — {what}{args}{run_as}{timeout}", s.label(i))
}

/// The user a run logs in as on `n`: the server's own, else `ssh.user`, else ours; an
/// agent runs as its own user, a local server as this process.
fn login_user(cfg: &ProjectConfig, n: &Node) -> String {
    match n.transport {
        Transport::Ssh => n
            .user
            .clone()
            .or_else(|| cfg.ssh.user.clone())
            .unwrap_or_else(crate::session::current_user),
        Transport::Agent => "(the agent's)".into(),
        Transport::Local => crate::session::current_user(),
    }
}

/// A transfer scenario: its partner, and the files a run would take now.
fn plan_transfer(
    cfg: &ProjectConfig,
    job: &ordo_jobs::Job,
    t: &ordo_jobs::transfer::TransferSpec,
) -> anyhow::Result<i32> {
    let mut set = ordo_jobs::JobSet::default();
    set.jobs
        .insert(job.name.clone(), std::sync::Arc::new(job.clone()));
    let profiles = crate::project::profiles(cfg, &set)?;
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
