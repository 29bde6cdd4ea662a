//! The `controller` command line. Each subcommand lives in its own file.

mod agents;
mod check;
mod executions;
mod pki;
mod plan;
pub(crate) mod run;
mod serve;
mod transfers;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use ordo_inventory::{Inventory, Node, NodeFilter};
use ordo_jobs::{Job, OptionValues};

use crate::config::ProjectConfig;

/// Exit codes: every server succeeded; some failed; bad input; anything else.
pub const EXIT_OK: i32 = 0;
pub const EXIT_FAILED: i32 = 1;
pub const EXIT_BAD_INPUT: i32 = 2;
pub const EXIT_ERROR: i32 = 3;

/// Input the operator must fix: printed as is, exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

#[derive(Parser, Debug)]
#[command(
    name = "controller",
    version,
    about = "ordo: run jobs across a fleet of servers, collect and mail the results"
)]
pub struct Cli {
    /// Project folder (holds ordo.yaml, the inventory, jobs/ and data/).
    #[arg(
        short = 'C',
        long,
        env = "ORDO_PROJECT",
        default_value = ".",
        global = true
    )]
    pub project: PathBuf,
    /// Inventory file: ordo YAML or an Ansible inventory (INI or YAML).
    #[arg(short, long, env = "ORDO_INVENTORY", global = true)]
    pub inventory: Option<PathBuf>,
    /// Folder of job files.
    #[arg(long, env = "ORDO_JOBS", global = true)]
    pub jobs: Option<PathBuf>,
    /// Folder for executions, archives, the outbox and the database.
    #[arg(long, env = "ORDO_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// Database URL (default: SQLite in the data folder).
    #[arg(long, env = "ORDO_DATABASE", global = true)]
    pub database: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Validate ordo.yaml, the inventory and every job file; report every error.
    Check,
    /// Show which servers, steps and collect patterns a run would use; touch nothing.
    Plan(plan::PlanArgs),
    /// Run a job now.
    Run(run::RunArgs),
    /// The long-running controller: schedules, file triggers, history, notifications.
    Serve(serve::ServeArgs),
    /// Every scheduled or watching job, with its next fire times.
    Schedules(serve::SchedulesArgs),
    /// Read the execution history; retry an execution; purge old ones.
    #[command(subcommand)]
    Executions(executions::ExecutionsCmd),
    /// Transfer history (`list`) and rebuilding segmented files (`join`).
    #[command(subcommand, alias = "transfer")]
    Transfers(transfers::TransfersCmd),
    /// The agents of the inventory.
    #[command(subcommand)]
    Agents(agents::AgentsCmd),
    /// The certificate authority for agents: create it, sign agents' requests.
    #[command(subcommand)]
    Pki(pki::PkiCmd),
}

pub async fn main(cli: Cli) -> anyhow::Result<i32> {
    match &cli.command {
        Command::Check => check::run(&cli),
        Command::Plan(a) => plan::run(&cli, a),
        Command::Run(a) => run::run(&cli, a).await,
        Command::Serve(a) => serve::serve(&cli, a).await,
        Command::Schedules(a) => serve::schedules(&cli, a).await,
        Command::Executions(c) => executions::run(&cli, c).await,
        Command::Pki(c) => pki::run(&cli, c),
        Command::Agents(c) => agents::run(&cli, c).await,
        Command::Transfers(c) => transfers::run(&cli, c).await,
    }
}

/// The project settings with command-line overrides applied.
pub fn config(cli: &Cli) -> Result<ProjectConfig, BadInput> {
    let mut cfg = ProjectConfig::load(&cli.project).map_err(|d| BadInput(d.to_string()))?;
    if let Some(p) = &cli.inventory {
        cfg.inventory = p.clone();
    }
    if let Some(p) = &cli.jobs {
        cfg.jobs = p.clone();
    }
    if let Some(p) = &cli.data_dir {
        cfg.data_dir = p.clone();
        cfg.mail.outbox = p.join("outbox");
        cfg.pki_dir = p.join("pki");
    }
    if cli.database.is_some() {
        cfg.database = cli.database.clone();
    }
    Ok(cfg)
}

pub fn inventory(cfg: &ProjectConfig) -> Result<Inventory, BadInput> {
    ordo_inventory::load(&cfg.inventory).map_err(|e| BadInput(e.to_string()))
}

/// The database URL: `--database`, `database:` in ordo.yaml, or SQLite in the data folder.
pub fn database_url(cfg: &ProjectConfig) -> String {
    cfg.database
        .clone()
        .unwrap_or_else(|| crate::store::default_url(&cfg.data_dir))
}

/// The transfer profiles, and every transfer job's profile checked to exist; every
/// problem of every file at once.
pub fn profiles(
    cfg: &ProjectConfig,
    jobs: &ordo_jobs::JobSet,
) -> Result<std::collections::BTreeMap<String, ordo_jobs::transfer::Profile>, BadInput> {
    let loaded = ordo_jobs::load_profiles(&cfg.profiles).map_err(|ds| {
        BadInput(
            ds.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join("\n"),
        )
    })?;
    let mut problems = Vec::new();
    for job in jobs.jobs.values() {
        if let Some(t) = &job.transfer
            && !loaded.contains_key(&t.profile)
        {
            let known: Vec<&str> = loaded.keys().map(String::as_str).collect();
            problems.push(format!(
                "{}: transfer: profile `{}` does not exist in {} (known: {})",
                job.file.display(),
                t.profile,
                cfg.profiles.display(),
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ));
        }
    }
    if problems.is_empty() {
        Ok(loaded)
    } else {
        Err(BadInput(problems.join("\n")))
    }
}

/// Every job, checked together; an error names every problem of every file.
pub fn jobset(cfg: &ProjectConfig) -> Result<ordo_jobs::JobSet, BadInput> {
    ordo_jobs::load_all(&cfg.jobs).map_err(|e| BadInput(e.to_string()))
}

/// A job and the jobs it may start. When another job file is broken, a job that starts
/// no other job still runs; one that does needs the whole set valid.
pub fn job_in_set(
    cfg: &ProjectConfig,
    name: &str,
) -> Result<(ordo_jobs::JobSet, std::sync::Arc<Job>), BadInput> {
    match ordo_jobs::load_all(&cfg.jobs) {
        Ok(set) => match set.get(name).cloned() {
            Some(j) => Ok((set, j)),
            None => Err(job(cfg, name)
                .err()
                .unwrap_or_else(|| BadInput(format!("job `{name}` not found")))),
        },
        Err(set_err) => {
            let j = std::sync::Arc::new(job(cfg, name)?);
            if j.references().is_empty() {
                let mut set = ordo_jobs::JobSet::default();
                set.jobs.insert(name.to_string(), j.clone());
                Ok((set, j))
            } else {
                Err(BadInput(format!(
                    "{set_err}
job `{name}` starts other jobs: every job file must be valid"
                )))
            }
        }
    }
}

pub fn job(cfg: &ProjectConfig, name: &str) -> Result<Job, BadInput> {
    match ordo_jobs::load_job(&cfg.jobs, name) {
        Ok(Ok(job)) => Ok(job),
        Ok(Err(d)) => Err(BadInput(format!(
            "{d}\n{} error(s) in job `{name}`",
            d.len()
        ))),
        Err(e) => Err(BadInput(e.to_string())),
    }
}

/// `k=v` pairs from `--opt`.
pub fn parse_opts(raw: &[String]) -> Result<Vec<(String, String)>, BadInput> {
    raw.iter()
        .map(|s| {
            s.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.to_string()))
                .ok_or_else(|| BadInput(format!("--opt `{s}`: expected NAME=VALUE")))
        })
        .collect()
}

pub fn options(job: &Job, raw: &[String]) -> Result<OptionValues, BadInput> {
    ordo_jobs::resolve_options(job, &parse_opts(raw)?).map_err(|errs| BadInput(errs.join("\n")))
}

/// The job's targets, narrowed by `--limit`.
pub fn select(inv: &Inventory, job: &Job, limit: Option<&str>) -> Result<Vec<Node>, BadInput> {
    let mut filter = job.targets.clone();
    if let Some(l) = limit {
        let extra = NodeFilter::parse(l).map_err(|e| BadInput(format!("--limit: {e}")))?;
        filter = filter.and(extra);
    }
    let nodes: Vec<Node> = inv
        .nodes
        .iter()
        .filter(|n| filter.matches(n))
        .cloned()
        .collect();
    if nodes.is_empty() {
        return Err(BadInput(format!(
            "no server matches `{filter}` in {} ({} servers)",
            inv.nodes
                .first()
                .map(|_| "the inventory")
                .unwrap_or("the (empty) inventory"),
            inv.nodes.len()
        )));
    }
    Ok(nodes)
}
