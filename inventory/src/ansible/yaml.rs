//! The YAML form of an Ansible inventory: `all:` with `hosts`, `vars` and `children`,
//! groups nested in `children`.

use super::{Builder, Vars, expand_range, host_pattern, with_port};
use crate::model::Inventory;
use crate::yaml::{Diagnostics, Kind, Node as Y};

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
