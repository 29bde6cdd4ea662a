//! The `controller` command line. Each subcommand lives in its own file.

mod agents;
mod alerts;
mod check;
mod executions;
mod executions_act;
mod import;
mod keys;
mod opts;
mod pki;
mod plan;
pub(crate) mod run;
mod serve;
mod transfers;
mod users;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::project::ProjectConfig;
use crate::store::Store;

/// Exit codes: every server succeeded; some failed; bad input; anything else.
pub const EXIT_OK: i32 = 0;
pub const EXIT_FAILED: i32 = 1;
pub const EXIT_BAD_INPUT: i32 = 2;
pub const EXIT_ERROR: i32 = 3;

pub use crate::project::BadInput;

/// An action's refusal as the command line says it: bad input (exit 2) with its message;
/// a database error or anything else as an error (exit 3).
pub(crate) fn action_error(e: crate::actions::ActionError) -> anyhow::Error {
    use crate::actions::ActionError;
    match e {
        ActionError::Store(s) | ActionError::Auth(crate::auth::AuthError::Store(s)) => s.into(),
        ActionError::Internal(e) => e,
        other => BadInput(other.to_string()).into(),
    }
}

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
    /// Accounts of the API and console: add, list, show, passwd, disable, enable, delete, role.
    #[command(subcommand)]
    Users(users::UsersCmd),
    /// Personal API tokens: create (shown once), list, revoke.
    #[command(subcommand)]
    Tokens(users::TokensCmd),
    /// The audit log: logins, failures, runs, changes to accounts and tokens.
    Audit(users::AuditArgs),
    /// Accounts' alert configurations: show, set; the alerts queued and sent.
    #[command(subcommand)]
    Alerts(alerts::AlertsCmd),
    /// Encryption keys: the certificates results are encrypted to (personal and backup).
    #[command(subcommand)]
    Keys(keys::KeysCmd),
    /// Read an encrypted result (.p7m) with a private key (.p12 or PEM).
    Decrypt(keys::DecryptArgs),
    /// Job definitions from another tool (Rundeck).
    #[command(subcommand)]
    Import(import::ImportCmd),
    /// Job definitions for another tool (Rundeck).
    #[command(subcommand)]
    Export(import::ExportCmd),
}

pub async fn main(cli: Cli) -> anyhow::Result<i32> {
    match &cli.command {
        Command::Check => check::run(&cli).await,
        Command::Plan(a) => plan::run(&cli, a),
        Command::Run(a) => run::run(&cli, a).await,
        Command::Serve(a) => serve::serve(&cli, a).await,
        Command::Schedules(a) => serve::schedules(&cli, a).await,
        Command::Executions(c) => executions::run(&cli, c).await,
        Command::Pki(c) => pki::run(&cli, c),
        Command::Agents(c) => agents::run(&cli, c).await,
        Command::Transfers(c) => transfers::run(&cli, c).await,
        Command::Users(c) => users::users(&cli, c).await,
        Command::Tokens(c) => users::tokens(&cli, c).await,
        Command::Audit(a) => users::audit_log(&cli, a).await,
        Command::Alerts(c) => alerts::run(&cli, c).await,
        Command::Keys(c) => keys::run(&cli, c).await,
        Command::Decrypt(a) => keys::decrypt(a),
        Command::Import(c) => import::run(&cli, c),
        Command::Export(c) => import::export(&cli, c),
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

/// The history, or `None` when this project has none yet (the default SQLite file does
/// not exist): reading an empty history is not an error, and creates nothing.
/// Runs whose controller died are marked `interrupted` first, so what is read is true.
pub(crate) async fn history(cfg: &ProjectConfig) -> anyhow::Result<Option<Store>> {
    if cfg.database.is_none() && !cfg.data_dir.join("ordo.db").exists() {
        return Ok(None);
    }
    let store = Store::open(&crate::project::database_url(cfg)).await?;
    crate::project::private_database(cfg);
    if let Err(e) = crate::process::sweep(&store, cfg.serve.dead_after).await {
        tracing::warn!("cannot check for interrupted executions: {e}");
    }
    Ok(Some(store))
}
