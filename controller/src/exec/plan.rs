//! What a run will do, decided once before anything is touched: `controller plan` prints
//! it, every start (`run`, schedules, triggers, the API, follow-ups, retries) executes it.

use std::sync::Arc;

use ordo_inventory::{Inventory, Node, NodeFilter};
use ordo_jobs::Job;

use super::Launch;
use crate::project::BadInput;

/// The servers and the pace of one run of a job.
#[derive(Debug, Clone)]
pub struct Plan {
    pub job: Arc<Job>,
    /// The selected servers, in inventory order (none for a job made only of job steps).
    pub nodes: Vec<Node>,
    /// The filter they were chosen with: the job's targets, and-ed with `--limit`.
    pub targets: String,
    /// Servers at once.
    pub parallelism: usize,
}

impl Plan {
    /// Selects the servers for `launch`; refuses what cannot run (no server matches, a
    /// bad `--limit`, a parallelism of 0).
    pub fn new(inv: &Inventory, job: Arc<Job>, launch: &Launch) -> Result<Plan, BadInput> {
        let parallelism = launch.parallelism.unwrap_or(job.parallelism);
        if parallelism == 0 {
            return Err(BadInput(
                "--parallelism 0: at least one server must run at a time".into(),
            ));
        }
        if !job.runs_on_servers() {
            return Ok(Plan {
                job,
                nodes: Vec::new(),
                targets: String::new(),
                parallelism,
            });
        }
        let mut filter = job.targets.clone();
        if let Some(l) = &launch.limit {
            let extra = NodeFilter::parse(l).map_err(|e| BadInput(format!("--limit: {e}")))?;
            filter = filter.and(extra);
        }
        let nodes: Vec<Node> = inv
            .nodes
            .iter()
            .filter(|n| filter.matches(n))
            .filter(|n| {
                launch
                    .only_nodes
                    .as_ref()
                    .is_none_or(|only| only.contains(&n.name))
            })
            .cloned()
            .collect();
        if nodes.is_empty() {
            return Err(BadInput(format!(
                "job {}: no server matches `{filter}`{} in the inventory ({} servers)",
                job.name,
                if launch.only_nodes.is_some() {
                    " among the servers to retry"
                } else {
                    ""
                },
                inv.nodes.len()
            )));
        }
        check_run_as(&job, &nodes, launch)?;
        Ok(Plan {
            targets: targets_text(&job, launch.limit.as_deref()),
            job,
            nodes,
            parallelism,
        })
    }

    /// How many servers run at once (never more than there are).
    pub fn at_once(&self) -> usize {
        self.parallelism.min(self.nodes.len()).max(1)
    }
}

/// Every `run_as` that can be expanded before the run (from the options and each server's
/// attributes; one from a `wait_for` match is checked when it is known) must be a user
/// name: a value chosen by whoever starts the run never reaches `su` or `sudo` as an
/// option.
fn check_run_as(job: &Job, nodes: &[Node], launch: &Launch) -> Result<(), BadInput> {
    let specs = job
        .run_as
        .iter()
        .chain(job.steps.iter().filter_map(|s| s.run_as.as_ref()));
    for spec in specs {
        for node in nodes {
            let cx = ordo_jobs::Context::execution(&launch.options.values, &job.name, "", None)
                .on_node(node);
            let Ok(user) = spec.user.expand(&cx) else {
                continue;
            };
            if user.is_empty() {
                continue;
            }
            if let Err(e) = ordo_proto::shell::check_user_name(&user) {
                return Err(BadInput(launch.options.mask(&format!(
                    "job {}: server {}: run_as: {e}",
                    job.name, node.name
                ))));
            }
        }
    }
    Ok(())
}

/// The filter a run of `job` uses, as recorded with the execution.
pub fn targets_text(job: &Job, limit: Option<&str>) -> String {
    match (limit, job.runs_on_servers()) {
        (_, false) => String::new(),
        (Some(l), true) => format!("({}) and ({l})", job.targets),
        (None, true) => job.targets.to_string(),
    }
}
