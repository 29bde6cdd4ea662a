//! ordo's own inventory format.
//!
//! ```yaml
//! defaults: { user: ops, port: 22, transport: ssh }
//! servers:
//!   web1: { host: 10.0.0.1, groups: [A], tags: [prod], attributes: { dc: paris } }
//!   web2: {}                      # host defaults to the name
//! groups:
//!   B: { servers: [web2], children: [A] }   # membership may also be given here
//! ```

use std::collections::{BTreeMap, BTreeSet};

use crate::model::{Inventory, Node, Transport};
use crate::yaml::{Diagnostics, Node as Y, Pos};

const TOP: &[&str] = &["defaults", "servers", "groups"];
/// Keys of a server, and of `defaults` (which gives any of them to every server).
const SERVER: &[&str] = &[
    "host",
    "port",
    "user",
    "transport",
    "groups",
    "tags",
    "attributes",
];
const GROUP: &[&str] = &["servers", "children", "description"];

pub(crate) fn read(root: &Y, d: &mut Diagnostics) -> Inventory {
    let top = root.fields("inventory", TOP, d);
    let defaults = match top.get("defaults") {
        Some(n) => read_server("defaults", n, Node::new("defaults", n.pos), SERVER, d),
        None => Node::new("defaults", root.pos),
    };
    let mut inv = Inventory::default();
    if let Some(servers) = top.get("servers") {
        for (name, node) in servers.entries("servers", d) {
            let mut base = defaults.clone();
            base.name = name.clone();
            base.host = if defaults.host == "defaults" {
                name.clone()
            } else {
                defaults.host.clone()
            };
            base.pos = node.pos;
            if name.trim().is_empty() {
                d.error(node.pos, "servers: a server name cannot be empty");
            }
            let what = format!("server `{name}`");
            let n = read_server(&what, node, base, SERVER, d);
            inv.groups.extend(n.groups.iter().cloned());
            inv.nodes.push(n);
        }
    } else {
        d.error(top.pos, "inventory: missing required key `servers`");
    }
    if let Some(groups) = top.get("groups") {
        read_groups(groups, &mut inv, d);
    }
    inv
}

fn read_server(what: &str, y: &Y, mut n: Node, known: &[&str], d: &mut Diagnostics) -> Node {
    let f = y.fields(what, known, d);
    if let Some(v) = f
        .get("host")
        .and_then(|v| v.str(&format!("{what}: host"), d))
    {
        n.host = v;
    }
    if let Some(v) = f.get("port") {
        n.port = port(v, &format!("{what}: port"), d).or(n.port);
    }
    if let Some(v) = f
        .get("user")
        .and_then(|v| v.str(&format!("{what}: user"), d))
    {
        n.user = Some(v);
    }
    if let Some((v, s)) = f
        .get("transport")
        .and_then(|v| v.str(&format!("{what}: transport"), d).map(|s| (v, s)))
    {
        match Transport::parse(&s) {
            Some(t) => n.transport = t,
            None => d.error(
                v.pos,
                format!("{what}: unknown transport `{s}` (expected ssh, agent or local)"),
            ),
        }
    }
    if let Some(v) = f.get("groups") {
        n.groups.extend(names(v, &format!("{what}: groups"), d));
    }
    if let Some(v) = f.get("tags") {
        n.tags.extend(names(v, &format!("{what}: tags"), d));
    }
    if let Some(v) = f.get("attributes") {
        for (k, val) in v.entries(&format!("{what}: attributes"), d) {
            if let Some(s) = val.str(&format!("{what}: attribute `{k}`"), d) {
                n.attributes.insert(k, s);
            }
        }
    }
    n
}

pub(crate) fn port(v: &Y, what: &str, d: &mut Diagnostics) -> Option<u16> {
    let p = v.u64(what, d)?;
    match u16::try_from(p) {
        Ok(p) if p > 0 => Some(p),
        _ => {
            d.error(v.pos, format!("{what}: {p} is not a valid port (1-65535)"));
            None
        }
    }
}

fn names(v: &Y, what: &str, d: &mut Diagnostics) -> Vec<String> {
    let mut out = Vec::new();
    for (s, pos) in v.str_list(what, d) {
        if s.is_empty() || s.contains(|c: char| c.is_whitespace() || "(),!&|".contains(c)) {
            d.error(
                pos,
                format!("{what}: invalid name `{s}` (no spaces or ( ) , ! & |)"),
            );
        } else {
            out.push(s);
        }
    }
    out
}

fn read_groups(y: &Y, inv: &mut Inventory, d: &mut Diagnostics) {
    type Names = Vec<(String, Pos)>;
    let mut members: BTreeMap<String, (Pos, Names, Names)> = BTreeMap::new();
    for (name, g) in y.entries("groups", d) {
        let what = format!("group `{name}`");
        let f = g.fields(&what, GROUP, d);
        let servers = f
            .get("servers")
            .map(|v| v.str_list(&format!("{what}: servers"), d))
            .unwrap_or_default();
        let children = f
            .get("children")
            .map(|v| v.str_list(&format!("{what}: children"), d))
            .unwrap_or_default();
        members.insert(name, (g.pos, servers, children));
    }
    for (group, (_, servers, _)) in &members {
        for (s, pos) in servers {
            match inv.nodes.iter_mut().find(|n| &n.name == s) {
                Some(n) => {
                    n.groups.insert(group.clone());
                }
                None => d.error(*pos, format!("group `{group}`: unknown server `{s}`")),
            }
        }
    }
    inv.groups.extend(members.keys().cloned());
    // Nested groups: a member of a child is a member of the parent, to any depth.
    let mut parents: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (group, (_, _, children)) in &members {
        for (c, pos) in children {
            if !inv.groups.contains(c) {
                d.error(*pos, format!("group `{group}`: unknown child group `{c}`"));
            }
            parents.entry(c.clone()).or_default().insert(group.clone());
        }
    }
    resolve_parents(inv, &parents);
    for (group, (pos, _, _)) in &members {
        if ancestors(group, &parents).contains(group) {
            d.error(
                *pos,
                format!("group `{group}` is its own ancestor (cycle in children)"),
            );
        }
    }
}

/// Adds every ancestor group of each node's groups.
pub(crate) fn resolve_parents(inv: &mut Inventory, parents: &BTreeMap<String, BTreeSet<String>>) {
    for n in &mut inv.nodes {
        let direct: Vec<String> = n.groups.iter().cloned().collect();
        for g in direct {
            n.groups.extend(ancestors(&g, parents));
        }
    }
}

pub(crate) fn ancestors(g: &str, parents: &BTreeMap<String, BTreeSet<String>>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut todo: Vec<&str> = vec![g];
    while let Some(cur) = todo.pop() {
        for p in parents.get(cur).into_iter().flatten() {
            if out.insert(p.clone()) {
                todo.push(p);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::{Transport, parse};

    #[test]
    fn reads_servers_defaults_and_nested_groups() {
        let text = "\
defaults: { user: ops, port: 2222 }
servers:
  web1: { host: 127.0.0.2, groups: [A], tags: [prod], attributes: { dc: paris } }
  db1: { port: 22, transport: local }
groups:
  B: { servers: [db1], children: [A] }
";
        let inv = parse(text, Path::new("inv.yaml")).unwrap();
        let web = inv.node("web1").unwrap();
        assert_eq!(web.host, "127.0.0.2");
        assert_eq!(web.port, Some(2222));
        assert_eq!(web.user.as_deref(), Some("ops"));
        assert!(web.groups.contains("A") && web.groups.contains("B"));
        assert_eq!(web.attributes["dc"], "paris");
        let db = inv.node("db1").unwrap();
        assert_eq!(db.host, "db1");
        assert_eq!(db.port, Some(22));
        assert_eq!(db.transport, Transport::Local);
    }

    #[test]
    fn every_error_is_reported_with_its_position() {
        let text = "\
servers:
  web1: { host: a, prot: 22 }
  web2: { port: 70000, transport: telnet }
groups:
  A: { servers: [web3] }
";
        let err = parse(text, Path::new("inv.yaml")).unwrap_err().to_string();
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(
            lines,
            vec![
                "inv.yaml:2:20: server `web1`: unknown key `prot` (did you mean `port`?)",
                "inv.yaml:3:17: server `web2`: port: 70000 is not a valid port (1-65535)",
                "inv.yaml:3:35: server `web2`: unknown transport `telnet` (expected ssh, agent or local)",
                "inv.yaml:5:18: group `A`: unknown server `web3`",
            ],
            "{err}"
        );
    }

    #[test]
    fn group_cycle_is_rejected() {
        let text = "servers: { a: {} }\ngroups:\n  X: { children: [Y] }\n  Y: { children: [X] }\n";
        let err = parse(text, Path::new("i.yaml")).unwrap_err().to_string();
        assert!(err.contains("group `X` is its own ancestor"), "{err}");
    }
}
