//! Reading existing Ansible inventories, INI or YAML, as they are.
//!
//! `ansible_host`, `ansible_port`, `ansible_user` (and their `ansible_ssh_*` spellings) and
//! `ansible_connection=local` map onto ordo's fields; every other variable becomes an
//! attribute. Variables are inherited as Ansible does: `all`, then parent groups, then child
//! groups, then the host's own. Host ranges (`web[01:03]`, `db-[a:c]`) are expanded.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::{Inventory, Node, Transport};
use crate::ordo_yaml::ancestors;
use crate::yaml::{Diagnostics, Kind, Node as Y, Pos};

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

/// A host pattern as Ansible reads it: `name:port`, `[v6::addr]:port`, a bare IPv6
/// address (no port), or a name with ranges (`web[01:03]:2222`). Returns the name
/// pattern and the port, if any.
pub(crate) fn host_pattern(pattern: &str) -> Result<(String, Option<u16>), String> {
    let bad_port =
        |p: &str| format!("host `{pattern}`: `{p}` after the last `:` is not a valid port");
    let parse_port = |p: &str| match p.parse::<u16>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(bad_port(p)),
    };
    // `[2001:db8::1]:2222` or `[2001:db8::1]`: an IPv6 address in brackets.
    if let Some(rest) = pattern.strip_prefix('[')
        && let Some((inner, after)) = rest.split_once(']')
        && inner.matches(':').count() >= 2
    {
        return match after {
            "" => Ok((inner.to_string(), None)),
            _ => match after.strip_prefix(':') {
                Some(p) => Ok((inner.to_string(), Some(parse_port(p)?))),
                None => Err(format!("host `{pattern}`: unexpected `{after}` after `]`")),
            },
        };
    }
    // Colons outside the ranges' brackets.
    let mut depth = 0usize;
    let mut colons = Vec::new();
    for (i, c) in pattern.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            ':' if depth == 0 => colons.push(i),
            _ => {}
        }
    }
    match colons.as_slice() {
        [i] => Ok((
            pattern[..*i].to_string(),
            Some(parse_port(&pattern[i + 1..])?),
        )),
        // No colon, or a bare IPv6 address (several colons): no port.
        _ => Ok((pattern.to_string(), None)),
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

/// Expands Ansible host ranges: `web[01:03]` gives web01, web02, web03.
pub(crate) fn expand_range(pattern: &str) -> Result<Vec<String>, String> {
    let Some(open) = pattern.find('[') else {
        return Ok(vec![pattern.to_string()]);
    };
    let close = pattern[open..]
        .find(']')
        .map(|i| open + i)
        .ok_or_else(|| format!("unclosed `[` in host pattern `{pattern}`"))?;
    let inner = &pattern[open + 1..close];
    let (range, step) = match inner
        .split_once(':')
        .map(|(a, rest)| (a, rest.split_once(':')))
    {
        Some((a, Some((b, s)))) => (
            (a, b),
            s.parse::<usize>()
                .map_err(|_| format!("bad step `{s}` in `{pattern}`"))?,
        ),
        Some((a, None)) => ((a, &inner[a.len() + 1..]), 1),
        None => return Err(format!("host range `[{inner}]` needs a `:` in `{pattern}`")),
    };
    let (start, end) = range;
    let mut items = Vec::new();
    if let (Ok(s), Ok(e)) = (start.parse::<u64>(), end.parse::<u64>()) {
        if s > e || step == 0 {
            return Err(format!("empty host range `[{inner}]` in `{pattern}`"));
        }
        let width = if start.starts_with('0') {
            start.len()
        } else {
            0
        };
        for i in (s..=e).step_by(step) {
            items.push(format!("{i:0width$}"));
        }
    } else if start.len() == 1 && end.len() == 1 && start <= end && step > 0 {
        let (s, e) = (start.as_bytes()[0], end.as_bytes()[0]);
        for c in (s..=e).step_by(step) {
            items.push((c as char).to_string());
        }
    } else {
        return Err(format!("invalid host range `[{inner}]` in `{pattern}`"));
    }
    let (pre, post) = (&pattern[..open], &pattern[close + 1..]);
    let mut out = Vec::new();
    for item in items {
        for rest in expand_range(post)? {
            out.push(format!("{pre}{item}{rest}"));
        }
    }
    Ok(out)
}

/// Splits `k=v k2="a b"` into words, honouring quotes.
fn words(line: &str) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut start = None;
    let mut quote = None;
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                start.get_or_insert(i);
            }
            (None, c) if c.is_whitespace() => {
                if let Some(s) = start.take() {
                    out.push((std::mem::take(&mut cur), s));
                }
            }
            (None, '#') if start.is_none() => break,
            (None, c) => {
                cur.push(c);
                start.get_or_insert(i);
            }
        }
    }
    if let Some(s) = start {
        out.push((cur, s));
    }
    out
}

/// `[name]` or `[name:kind]`, maybe followed by a comment, as Ansible reads a section
/// header; anything else starting with `[` is a host (`[2001:db8::1]:2222`, `[a:c]web`).
fn section_header(line: &str) -> Option<(&str, Option<&str>)> {
    let body = line.strip_prefix('[')?;
    let (inside, after) = body.split_once(']')?;
    let after = after.trim_start();
    if !(after.is_empty() || after.starts_with('#') || after.starts_with(';')) {
        return None;
    }
    let (name, kind) = match inside.split_once(':') {
        Some((n, k)) => (n, Some(k)),
        None => (inside, None),
    };
    let name_ok = !name.is_empty() && !name.contains(char::is_whitespace);
    let kind_ok =
        kind.is_none_or(|k| !k.is_empty() && k.chars().all(|c| c.is_alphanumeric() || c == '_'));
    (name_ok && kind_ok).then_some((name, kind))
}

pub(crate) fn parse_ini(text: &str, d: &mut Diagnostics) -> Inventory {
    let mut b = Builder::default();
    let mut section: (String, &str) = ("ungrouped".to_string(), "hosts");
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = raw.trim();
        let indent = raw.len() - raw.trim_start().len();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') && !line.contains(']') {
            d.error(
                Pos::new(line_no, indent + 1),
                format!("unclosed section header `{line}`"),
            );
            continue;
        }
        if let Some((name, kind)) = section_header(line) {
            match kind {
                None => section = (name.to_string(), "hosts"),
                Some(k @ ("vars" | "children")) => section = (name.to_string(), k),
                Some(k) => {
                    d.error(
                        Pos::new(line_no, indent + 1),
                        format!("unknown section kind `:{k}` (expected :vars or :children)"),
                    );
                    continue;
                }
            }
            b.groups.insert(name.to_string());
            continue;
        }
        let ws = words(raw);
        let Some((first, col)) = ws.first().cloned() else {
            continue;
        };
        let pos = Pos::new(line_no, col + 1);
        match section.1 {
            "vars" => {
                let Some((k, v)) = line.split_once('=') else {
                    d.error(
                        pos,
                        format!("[{}:vars]: expected `key=value`, found `{line}`", section.0),
                    );
                    continue;
                };
                let v = words(v)
                    .into_iter()
                    .map(|(w, _)| w)
                    .collect::<Vec<_>>()
                    .join(" ");
                b.group_vars.entry(section.0.clone()).or_default().push((
                    k.trim().to_string(),
                    v,
                    pos,
                ));
            }
            "children" => {
                b.groups.insert(first.clone());
                b.parents
                    .entry(first)
                    .or_default()
                    .insert(section.0.clone());
            }
            _ => {
                let mut vars = Vec::new();
                for (w, c) in &ws[1..] {
                    match w.split_once('=') {
                        Some((k, v)) => {
                            vars.push((k.to_string(), v.to_string(), Pos::new(line_no, c + 1)))
                        }
                        None => d.error(
                            Pos::new(line_no, c + 1),
                            format!("host `{first}`: expected `key=value`, found `{w}`"),
                        ),
                    }
                }
                match host_pattern(&first).and_then(|(p, port)| Ok((expand_range(&p)?, port))) {
                    Ok((names, port)) => {
                        let vars = with_port(port, pos, vars);
                        for n in names {
                            b.add_host(&n, Some(&section.0), pos, vars.clone());
                        }
                    }
                    Err(e) => d.error(pos, e),
                }
            }
        }
    }
    b.finish(d)
}

pub(crate) fn read_yaml(root: &Y, d: &mut Diagnostics) -> Inventory {
    let mut b = Builder::default();
    for (name, g) in root.entries("inventory", d) {
        read_yaml_group(&name, None, g, &mut b, d);
    }
    b.finish(d)
}

fn read_yaml_group(name: &str, parent: Option<&str>, g: &Y, b: &mut Builder, d: &mut Diagnostics) {
    b.groups.insert(name.to_string());
    if let Some(p) = parent.filter(|p| *p != "all") {
        b.parents
            .entry(name.to_string())
            .or_default()
            .insert(p.to_string());
    }
    let what = format!("group `{name}`");
    let f = g.fields(&what, &["hosts", "vars", "children"], d);
    if let Some(hosts) = f.get("hosts") {
        for (pattern, h) in hosts.entries(&format!("{what}: hosts"), d) {
            let vars = scalar_vars(h, &format!("host `{pattern}`"), d);
            match host_pattern(&pattern).and_then(|(p, port)| Ok((expand_range(&p)?, port))) {
                Ok((names, port)) => {
                    let vars = with_port(port, h.pos, vars);
                    for n in names {
                        b.add_host(&n, Some(name), h.pos, vars.clone());
                    }
                }
                Err(e) => d.error(h.pos, e),
            }
        }
    }
    if let Some(vars) = f.get("vars") {
        let vars = scalar_vars(vars, &format!("{what}: vars"), d);
        b.group_vars
            .entry(name.to_string())
            .or_default()
            .extend(vars);
    }
    if let Some(children) = f.get("children") {
        for (child, c) in children.entries(&format!("{what}: children"), d) {
            read_yaml_group(&child, Some(name), c, b, d);
        }
    }
}

/// Variables as strings; lists and mappings are kept as their flow text.
fn scalar_vars(y: &Y, what: &str, d: &mut Diagnostics) -> Vars {
    y.entries(what, d)
        .into_iter()
        .map(|(k, v)| {
            let text = match &v.kind {
                Kind::Scalar { text, .. } => text.clone(),
                _ => flow(v),
            };
            (k, text, v.pos)
        })
        .collect()
}

fn flow(y: &Y) -> String {
    match &y.kind {
        Kind::Scalar { text, .. } => text.clone(),
        Kind::Seq(items) => format!(
            "[{}]",
            items.iter().map(flow).collect::<Vec<_>>().join(", ")
        ),
        Kind::Map(pairs) => format!(
            "{{{}}}",
            pairs
                .iter()
                .map(|(k, v)| format!("{}: {}", flow(k), flow(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::expand_range;
    use crate::{Transport, parse};

    #[test]
    fn ranges() {
        assert_eq!(
            expand_range("web[01:03].x").unwrap(),
            vec!["web01.x", "web02.x", "web03.x"]
        );
        assert_eq!(
            expand_range("db-[a:c]").unwrap(),
            vec!["db-a", "db-b", "db-c"]
        );
        assert_eq!(expand_range("n[0:4:2]").unwrap(), vec!["n0", "n2", "n4"]);
        assert!(expand_range("n[3:1]").is_err());
    }

    #[test]
    fn reads_ini_with_children_vars_and_ranges() {
        let text = "\
# production
solo ansible_host=127.0.0.9
[A]
web[1:2] ansible_user=ops
db1 ansible_host=127.0.0.5 ansible_port=2202 role=\"primary db\"
[A:vars]
ansible_port=2200
dc=paris
[C:children]
A
[C:vars]
dc=lyon
[local]
ctl ansible_connection=local
[all:vars]
ansible_user=root
";
        let inv = parse(text, Path::new("hosts")).unwrap();
        let names: Vec<_> = inv.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, vec!["solo", "web1", "web2", "db1", "ctl"]);
        let web1 = inv.node("web1").unwrap();
        assert_eq!(web1.user.as_deref(), Some("ops"));
        assert_eq!(web1.port, Some(2200));
        assert_eq!(
            web1.attributes["dc"], "paris",
            "child group vars win over parent's"
        );
        assert!(web1.groups.contains("A") && web1.groups.contains("C"));
        let db1 = inv.node("db1").unwrap();
        assert_eq!((db1.host.as_str(), db1.port), ("127.0.0.5", Some(2202)));
        assert_eq!(db1.attributes["role"], "primary db");
        assert_eq!(db1.user.as_deref(), Some("root"));
        assert_eq!(inv.node("solo").unwrap().host, "127.0.0.9");
        assert_eq!(inv.node("ctl").unwrap().transport, Transport::Local);
    }

    #[test]
    fn host_patterns_with_ports_as_ansible_reads_them() {
        use super::host_pattern;
        let ok = |p: &str| host_pattern(p).unwrap();
        assert_eq!(
            ok("web10.example.com:2222"),
            ("web10.example.com".into(), Some(2222))
        );
        assert_eq!(ok("web10.example.com"), ("web10.example.com".into(), None));
        assert_eq!(
            ok("web[01:03].example.com:2200"),
            ("web[01:03].example.com".into(), Some(2200))
        );
        assert_eq!(ok("web[a:c]"), ("web[a:c]".into(), None));
        assert_eq!(ok("[2001:db8::1]:2222"), ("2001:db8::1".into(), Some(2222)));
        assert_eq!(ok("2001:db8::1"), ("2001:db8::1".into(), None));
        assert_eq!(ok("127.0.0.1:22"), ("127.0.0.1".into(), Some(22)));
        assert!(
            host_pattern("web1:ssh")
                .unwrap_err()
                .contains("not a valid port")
        );
        assert!(host_pattern("web1:0").is_err());
        let text = "[A]\nweb10.example.com:2222\nweb11:2201 ansible_port=2299\n";
        let inv = parse(text, Path::new("hosts.ini")).unwrap();
        let web10 = inv.node("web10.example.com").unwrap();
        assert_eq!(
            (web10.host.as_str(), web10.port),
            ("web10.example.com", Some(2222))
        );
        assert_eq!(inv.node("web11").unwrap().port, Some(2299));
    }

    #[test]
    fn ini_errors_have_positions() {
        let text = "[A]\nweb1 ansible_port=x\n[B:bogus]\nweb[3:1]\n";
        let err = parse(text, Path::new("hosts.ini")).unwrap_err().to_string();
        assert!(
            err.contains("hosts.ini:2:6: host `web1`: ansible_port: `x` is not a valid port"),
            "{err}"
        );
        assert!(
            err.contains("hosts.ini:3:1: unknown section kind `:bogus`"),
            "{err}"
        );
        assert!(err.contains("hosts.ini:4:1: empty host range"), "{err}");
    }

    #[test]
    fn reads_yaml_inventory() {
        let text = "\
all:
  vars:
    ansible_user: deploy
  hosts:
    lone:
  children:
    web:
      hosts:
        web[01:02]:
          ansible_host: 127.0.0.3
      vars:
        tier: front
    prod:
      children:
        web:
";
        let inv = parse(text, Path::new("inv.yml")).unwrap();
        let names: Vec<_> = inv.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, vec!["lone", "web01", "web02"]);
        let w = inv.node("web02").unwrap();
        assert_eq!(w.host, "127.0.0.3");
        assert_eq!(w.user.as_deref(), Some("deploy"));
        assert_eq!(w.attributes["tier"], "front");
        assert!(w.groups.contains("web") && w.groups.contains("prod"));
    }
}
