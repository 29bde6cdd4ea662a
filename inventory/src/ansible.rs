//! Reading existing Ansible inventories, INI or YAML, as they are.
//!
//! `ansible_host`, `ansible_port`, `ansible_user` (and their `ansible_ssh_*` spellings) and
//! `ansible_connection=local` map onto ordo's fields; every other variable becomes an
//! attribute. Variables are inherited as Ansible does: `all`, then parent groups, then child
//! groups, then the host's own. Host ranges (`web[01:03]`, `db-[a:c]`) are expanded.

mod host_patterns;
mod ini;
mod yaml;

use std::collections::{BTreeMap, BTreeSet};

use crate::model::{Inventory, Node, Transport};
use crate::ordo_yaml::ancestors;
use crate::yaml::{Diagnostics, Pos};

use host_patterns::{expand_range, host_pattern};
pub(crate) use ini::parse_ini;
pub(crate) use yaml::read_yaml;

/// Variables with the position each was set at.
type Vars = Vec<(String, String, Pos)>;

#[derive(Default)]
struct Builder {
    hosts: Vec<(String, Pos, Vars)>,
    group_vars: BTreeMap<String, Vars>,
    members: BTreeMap<String, BTreeSet<String>>,
    parents: BTreeMap<String, BTreeSet<String>>,
    groups: BTreeSet<String>,
}

impl Builder {
    fn add_host(
        &mut self,
        name: &str,
        group: Option<&str>,
        pos: Pos,
        vars: Vec<(String, String, Pos)>,
    ) {
        match self.hosts.iter_mut().find(|(n, _, _)| n == name) {
            Some((_, _, v)) => v.extend(vars),
            None => self.hosts.push((name.to_string(), pos, vars)),
        }
        if let Some(g) = group {
            self.groups.insert(g.to_string());
            self.members
                .entry(g.to_string())
                .or_default()
                .insert(name.to_string());
        }
    }

    fn finish(self, d: &mut Diagnostics) -> Inventory {
        let mut inv = Inventory {
            groups: self.groups.clone(),
            ..Inventory::default()
        };
        inv.groups.remove("all");
        inv.groups.remove("ungrouped");
        for (name, pos, host_vars) in &self.hosts {
            let mut node = Node::new(name, *pos);
            for (g, hosts) in &self.members {
                if hosts.contains(name) {
                    node.groups.insert(g.clone());
                    node.groups.extend(ancestors(g, &self.parents));
                }
            }
            node.groups.remove("all");
            node.groups.remove("ungrouped");
            // Shallow groups first so that deeper (more specific) groups win.
            let mut order: Vec<&String> = node.groups.iter().collect();
            order.sort_by_key(|g| ancestors(g, &self.parents).len());
            let mut vars: Vec<&(String, String, Pos)> = Vec::new();
            vars.extend(self.group_vars.get("all").into_iter().flatten());
            for g in order {
                vars.extend(self.group_vars.get(g).into_iter().flatten());
            }
            vars.extend(host_vars.iter());
            for (k, v, p) in vars {
                apply_var(&mut node, k, v, *p, d);
            }
            inv.nodes.push(node);
        }
        for (g, parents) in &self.parents {
            if ancestors(g, &self.parents).contains(g) {
                let parent = parents.iter().next().cloned().unwrap_or_default();
                d.error(
                    Pos::new(1, 1),
                    format!("group `{g}` is its own ancestor (cycle through `{parent}`)"),
                );
            }
        }
        inv
    }
}

fn apply_var(node: &mut Node, key: &str, value: &str, pos: Pos, d: &mut Diagnostics) {
    match key {
        "ansible_host" | "ansible_ssh_host" => node.host = value.to_string(),
        "ansible_user" | "ansible_ssh_user" => node.user = Some(value.to_string()),
        "ansible_port" | "ansible_ssh_port" => match value.parse::<u16>() {
            Ok(p) if p > 0 => node.port = Some(p),
            _ => d.error(
                pos,
                format!("host `{}`: {key}: `{value}` is not a valid port", node.name),
            ),
        },
        "ansible_connection" => match value {
            "local" => node.transport = Transport::Local,
            "ssh" | "smart" | "paramiko" => node.transport = Transport::Ssh,
            other => {
                node.attributes.insert(key.to_string(), other.to_string());
            }
        },
        _ => {
            node.attributes.insert(key.to_string(), value.to_string());
        }
    }
}

/// The pattern's port as the first host variable, so an `ansible_port` on the host wins.
fn with_port(port: Option<u16>, pos: Pos, vars: Vars) -> Vars {
    match port {
        Some(p) => std::iter::once(("ansible_port".to_string(), p.to_string(), pos))
            .chain(vars)
            .collect(),
        None => vars,
    }
}

#[cfg(test)]
mod tests;
