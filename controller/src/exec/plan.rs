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

/// The filter a run of `job` uses, as recorded with the execution.
pub fn targets_text(job: &Job, limit: Option<&str>) -> String {
    match (limit, job.runs_on_servers()) {
        (_, false) => String::new(),
        (Some(l), true) => format!("({}) and ({l})", job.targets),
        (None, true) => job.targets.to_string(),
    }
}
