//! `controller agents list`: every agent of the inventory, contacted now.

use clap::Subcommand;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use ordo_inventory::Transport;

use super::{Cli, EXIT_FAILED, EXIT_OK};
use crate::session::Session;
use crate::store::Store;

#[derive(Subcommand, Debug)]
pub enum AgentsCmd {
    /// Contact every agent of the inventory (or those matching --limit): name, address,
    /// version, user, certificate expiry, last contact.
    List {
        #[arg(short, long)]
        limit: Option<String>,
    },
}

fn date(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        })
        .unwrap_or_else(|| "-".into())
}

pub async fn run(cli: &Cli, cmd: &AgentsCmd) -> anyhow::Result<i32> {
    let AgentsCmd::List { limit } = cmd;
    let cfg = super::config(cli)?;
    let inv = crate::project::inventory(&cfg)?;
    let filter = match limit {
        Some(l) => ordo_inventory::NodeFilter::parse(l)
            .map_err(|e| super::BadInput(format!("--limit: {e}")))?,
        None => ordo_inventory::NodeFilter::all(),
    };
    let nodes: Vec<_> = inv
        .nodes
        .iter()
        .filter(|n| n.transport == Transport::Agent && filter.matches(n))
        .cloned()
        .collect();
    if nodes.is_empty() {
        say!(
            "no agent in {} (servers with `transport: agent`)",
            cfg.inventory.display()
        );
        return Ok(EXIT_OK);
    }
    let settings = crate::session::settings::for_nodes(&cfg, &nodes, false)?;
    crate::project::private_data_dir(&cfg)?;
    let url = cfg
        .database
        .clone()
        .unwrap_or_else(|| crate::store::default_url(&cfg.data_dir));
    let store = Store::open(&url).await?;
    let checks = nodes.iter().map(|n| {
        let settings = settings.clone();
        async move { (n, Session::connect(n, &settings).await) }
    });
    let results = futures::future::join_all(checks).await;
    let known = store.agents().await?;
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(vec![
        "NAME",
        "ADDRESS",
        "STATUS",
        "VERSION",
        "USER",
        "RUNNING",
        "CERTIFICATE EXPIRES",
        "LAST CONTACT",
    ]);
    let mut down = 0;
    for (node, result) in results {
        let addr = format!(
            "{}:{}",
            node.host,
            node.port.unwrap_or(crate::session::agent::DEFAULT_PORT)
        );
        match result {
            Ok(Session::Agent(a)) => {
                let row = crate::exec::record::agent_row(a.seen(node));
                store.upsert_agent(&row).await?;
                let h = a.health();
                t.add_row(vec![
                    node.name.clone(),
                    addr,
                    "up".into(),
                    h.version.clone(),
                    h.user.clone(),
                    format!("{}/{}", h.running, h.max_concurrent),
                    date(h.certificate_not_after * 1000),
                    date(row.last_contact),
                ]);
            }
            Ok(_) => {}
            Err(e) => {
                down += 1;
                let last = known.iter().find(|k| k.name == node.name);
                t.add_row(vec![
                    node.name.clone(),
                    addr,
                    format!("down: {e}"),
                    last.map(|l| l.version.clone())
                        .unwrap_or_else(|| "-".into()),
                    last.map(|l| l.run_user.clone())
                        .unwrap_or_else(|| "-".into()),
                    "-".into(),
                    last.map(|l| date(l.cert_not_after * 1000))
                        .unwrap_or_else(|| "-".into()),
                    last.map(|l| date(l.last_contact))
                        .unwrap_or_else(|| "never".into()),
                ]);
            }
        }
    }
    store.close().await;
    say!("{t}");
    Ok(if down == 0 { EXIT_OK } else { EXIT_FAILED })
}
