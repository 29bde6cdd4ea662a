//! The execution engine: one task per server, bounded by the job's parallelism, events
//! streamed to whoever watches (terminal, store).

mod collecting;
mod node;
mod step;
mod step_exec;
mod steps;
mod wait_for;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ordo_inventory::{Node, Transport};
use ordo_jobs::{Job, OnFailure, OptionValues};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::{self, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::collect::Received;
use crate::session::Settings;

/// Everything a run needs, prepared and validated.
pub struct RunRequest {
    pub job: Arc<Job>,
    pub options: OptionValues,
    pub nodes: Vec<Node>,
    pub execution_id: String,
    /// `<data dir>/executions/<id>`: each server's files go in a folder of its own here.
    pub exec_dir: PathBuf,
    /// SSH and agent settings, loaded when a selected server needs them.
    pub transports: Settings,
    pub parallelism: usize,
    /// The contents of `script_file` steps, read once per run (index = step index).
    pub script_files: Vec<Option<Vec<u8>>>,
    /// The steps this pass runs (all of them, unless job steps split the job into
    /// phases); files are collected after the pass that ends with the last step.
    pub steps: std::ops::Range<usize>,
    /// Fired by Ctrl-C, an abort, or the job timeout.
    pub cancel: CancellationToken,
    /// Set when `cancel` fired because of the job's timeout.
    pub timed_out: AtomicBool,
}

/// How a server's part of the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeStatus {
    Succeeded,
    Failed,
    Unreachable,
    TimedOut,
    Aborted,
    /// Not started: an earlier server failed and the job stops on failure.
    Skipped,
}

impl NodeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeStatus::Succeeded => "succeeded",
            NodeStatus::Failed => "failed",
            NodeStatus::Unreachable => "unreachable",
            NodeStatus::TimedOut => "timed-out",
            NodeStatus::Aborted => "aborted",
            NodeStatus::Skipped => "skipped",
        }
    }
}

#[derive(Debug, Clone)]
pub struct NodeResult {
    pub node: String,
    pub host: String,
    pub transport: Transport,
    pub status: NodeStatus,
    pub exit_code: Option<i32>,
    pub step_reached: usize,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub files: Vec<Received>,
    pub bytes: u64,
    pub error: Option<String>,
    pub warnings: Vec<String>,
}

impl NodeResult {
    /// The result of a server that has not run anything (yet).
    pub fn not_started(node: &Node) -> Self {
        Self::new(node)
    }

    fn new(node: &Node) -> Self {
        NodeResult {
            node: node.name.clone(),
            host: node.host.clone(),
            transport: node.transport,
            status: NodeStatus::Succeeded,
            exit_code: None,
            step_reached: 0,
            started_at: None,
            finished_at: None,
            files: Vec::new(),
            bytes: 0,
            error: None,
            warnings: Vec::new(),
        }
    }

    pub fn duration(&self) -> Option<Duration> {
        match (self.started_at, self.finished_at) {
            (Some(s), Some(f)) if f >= s => Some(Duration::from_millis((f - s) as u64)),
            _ => None,
        }
    }
}

/// What happens during a run, in order per server.
#[derive(Debug, Clone)]
pub enum Event {
    NodeStarted {
        node: String,
    },
    Line {
        node: String,
        step: usize,
        stderr: bool,
        ts: i64,
        line: String,
    },
    Warning {
        node: String,
        message: String,
    },
    /// A step starts on a server (first attempt).
    StepStarted {
        node: String,
        step: usize,
    },
    StepDone {
        node: String,
        step: usize,
        /// `step 2`, or `step 2 (name)`.
        label: String,
        outcome: String,
        duration: Duration,
    },
    Collected {
        node: String,
        files: usize,
    },
    /// A step's process group on its server (SSH and local), to stop if this controller
    /// dies before the step ends.
    Running {
        node: String,
        pid: u32,
        start: String,
        kill_as: Option<String>,
        /// Run on the controller's own host (the local transport).
        local: bool,
    },
    /// An agent answered its health check on connection.
    AgentSeen(crate::session::agent::AgentSeen),
    NodeDone(Box<NodeResult>),
}

/// Runs the job on every node; returns one result per node, in the order of `req.nodes`.
pub async fn run(req: Arc<RunRequest>, events: mpsc::Sender<Event>) -> Vec<NodeResult> {
    let finished = CancellationToken::new();
    if let Some(t) = req.job.timeout {
        let (req2, finished2) = (req.clone(), finished.clone());
        tokio::spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(t) => {
                    req2.timed_out.store(true, Ordering::SeqCst);
                    req2.cancel.cancel();
                }
                _ = finished2.cancelled() => {}
            }
        });
    }
    let limit = Arc::new(Semaphore::new(req.parallelism.max(1)));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = JoinSet::new();
    let mut slots = HashMap::new();
    // Permits are taken here, in inventory order, so servers start in that order (with
    // `parallelism: 1` and `on_failure: stop`, nothing after the first failure starts).
    for (index, node) in req.nodes.iter().cloned().enumerate() {
        let permit = tokio::select! {
            p = limit.clone().acquire_owned() => p.ok(),
            _ = req.cancel.cancelled() => None,
        };
        let (req, stop, events) = (req.clone(), stop.clone(), events.clone());
        let task = tasks.spawn(async move {
            let result = if permit.is_none() || stop.load(Ordering::SeqCst) {
                let mut r = NodeResult::new(&node);
                if permit.is_none() {
                    r.status = if req.timed_out.load(Ordering::SeqCst) {
                        NodeStatus::TimedOut
                    } else {
                        NodeStatus::Aborted
                    };
                    r.error = Some("not started: the run was stopped".into());
                } else {
                    r.status = NodeStatus::Skipped;
                    r.error = Some(
                        "not started: an earlier server failed and the job stops on failure".into(),
                    );
                }
                r
            } else {
                let r = node::run_node(&req, &node, &events).await;
                if !r.status.is_ok() && req.job.on_failure == OnFailure::Stop {
                    stop.store(true, Ordering::SeqCst);
                }
                r
            };
            let _ = events.send(Event::NodeDone(Box::new(result.clone()))).await;
            drop(permit);
            result
        });
        slots.insert(task.id(), index);
    }
    let results = gather(tasks, &slots, &req.nodes, &events).await;
    finished.cancel();
    results
}

/// Each server's result, in the order of `nodes`, matched by task: a task that panicked
/// leaves a failed result on its own server (recorded like the others), never a gap that
/// would shift the results of the servers after it.
async fn gather(
    mut tasks: JoinSet<NodeResult>,
    slots: &HashMap<task::Id, usize>,
    nodes: &[Node],
    events: &mpsc::Sender<Event>,
) -> Vec<NodeResult> {
    let mut results: Vec<Option<NodeResult>> = vec![None; nodes.len()];
    while let Some(done) = tasks.join_next_with_id().await {
        match done {
            Ok((id, r)) => {
                if let Some(&i) = slots.get(&id) {
                    results[i] = Some(r);
                }
            }
            Err(e) => {
                let Some(&i) = slots.get(&e.id()) else {
                    continue;
                };
                tracing::error!(node = %nodes[i].name, error = %e, "a server task panicked");
                let mut r = NodeResult::new(&nodes[i]);
                r.status = NodeStatus::Failed;
                r.error = Some(format!("internal error: this server's task stopped: {e}"));
                let _ = events.send(Event::NodeDone(Box::new(r.clone()))).await;
                results[i] = Some(r);
            }
        }
    }
    results
        .into_iter()
        .zip(nodes)
        .map(|(r, n)| r.unwrap_or_else(|| NodeResult::new(n)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str) -> Node {
        Node::new(name, ordo_inventory::yaml::Pos::new(1, 1))
    }

    /// A task that panics must not shift the results of the servers after it.
    #[tokio::test]
    async fn a_panicking_server_task_keeps_every_result_on_its_server() {
        let nodes: Vec<Node> = ["web1", "web2", "web3"].into_iter().map(node).collect();
        let mut tasks = JoinSet::new();
        let mut slots = HashMap::new();
        for (i, n) in nodes.iter().cloned().enumerate() {
            let t = tasks.spawn(async move {
                if i == 1 {
                    panic!("boom on {}", n.name);
                }
                let mut r = NodeResult::new(&n);
                r.exit_code = Some(i as i32);
                r
            });
            slots.insert(t.id(), i);
        }
        let (tx, mut rx) = mpsc::channel(8);
        let results = gather(tasks, &slots, &nodes, &tx).await;
        let names: Vec<&str> = results.iter().map(|r| r.node.as_str()).collect();
        assert_eq!(names, ["web1", "web2", "web3"]);
        assert_eq!(results[0].status, NodeStatus::Succeeded);
        assert_eq!(results[2].exit_code, Some(2));
        assert_eq!(results[1].status, NodeStatus::Failed);
        assert!(
            results[1]
                .error
                .as_deref()
                .unwrap_or("")
                .contains("boom on web2")
        );
        match rx.try_recv() {
            Ok(Event::NodeDone(r)) => assert_eq!(r.node, "web2"),
            other => panic!("expected the panicked server's result as an event: {other:?}"),
        }
    }
}
