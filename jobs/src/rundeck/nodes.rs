//! Rundeck node sources (`resources.yaml`: a mapping of node name to its attributes, or a
//! list of nodes) into an ordo inventory.

use ordo_inventory::yaml::{self, Diagnostics, Kind, Node};

use super::parts::{keys, q, text};

/// The attributes that become ordo fields rather than attributes.
const FIELDS: &[&str] = &["nodename", "hostname", "username", "tags", "ssh-port"];

/// The inventory's text, and notes on what did not come across as given.
pub fn import_nodes(
    source: &str,
    file: &std::path::Path,
) -> Result<(String, Vec<String>), Diagnostics> {
    let mut d = Diagnostics::new(file);
    let Some(doc) = yaml::parse(source, &mut d) else {
        return Err(d);
    };
    let nodes: Vec<(String, &Node)> = match &doc.kind {
        Kind::Map(m) => m
            .iter()
            .filter_map(|(k, v)| match &k.kind {
                Kind::Scalar { text, .. } => Some((text.clone(), v)),
                _ => None,
            })
            .collect(),
        Kind::Seq(v) => v
            .iter()
            .filter_map(|n| Some((text(n, "nodename")?, n)))
            .collect(),
        _ => {
            d.error(
                doc.pos,
                "a Rundeck node source is a mapping (or a list) of nodes".to_string(),
            );
            return Err(d);
        }
    };
    let mut notes = Vec::new();
    let mut out = String::from("servers:\n");
    for (name, n) in nodes {
        let name = text(n, "nodename").unwrap_or(name);
        let mut f = Vec::new();
        let mut port = text(n, "ssh-port");
        if let Some(h) = text(n, "hostname") {
            // `host:port`, but not a bare IPv6 address.
            let (host, p) = match h.rsplit_once(':') {
                Some((host, p)) if !host.contains(':') && p.parse::<u16>().is_ok() => {
                    (host.to_string(), Some(p.to_string()))
                }
                _ => (h.clone(), None),
            };
            f.push(format!("host: {}", q(&host)));
            port = port.or(p);
        }
        if let Some(p) = port {
            // A number, written as one: text here would be YAML of its own.
            match p.trim().parse::<u16>() {
                Ok(p) if p > 0 => f.push(format!("port: {p}")),
                _ => {
                    d.error(
                        n.pos,
                        format!(
                            "node `{name}`: ssh-port `{}` is not a port number",
                            p.escape_debug()
                        ),
                    );
                    continue;
                }
            }
        }
        if let Some(u) = text(n, "username").filter(|u| !u.contains("${")) {
            f.push(format!("user: {}", q(&u)));
        } else if text(n, "username").is_some() {
            notes.push(format!(
                "{name}: username with a Rundeck variable: left out (give `user:`)"
            ));
        }
        if let Some(t) = text(n, "tags") {
            let tags: Vec<String> = t
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(q)
                .collect();
            f.push(format!("tags: [{}]", tags.join(", ")));
        }
        let attrs: Vec<String> = keys(n)
            .into_iter()
            .filter(|k| !FIELDS.contains(&k.as_str()))
            .filter_map(|k| Some(format!("{}: {}", q(&k), q(&text(n, &k)?))))
            .collect();
        if !attrs.is_empty() {
            f.push(format!("attributes: {{ {} }}", attrs.join(", ")));
        }
        out.push_str(&format!("  {}: {{ {} }}\n", q(&name), f.join(", ")));
    }
    if !d.is_empty() {
        return Err(d);
    }
    Ok((out, notes))
}
