use std::collections::{BTreeMap, BTreeSet};

use crate::yaml::{Diagnostics, Pos};

/// How the controller reaches a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Ssh,
    Local,
    Agent,
}

impl Transport {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ssh" => Some(Transport::Ssh),
            "local" => Some(Transport::Local),
            "agent" => Some(Transport::Agent),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Ssh => "ssh",
            Transport::Local => "local",
            Transport::Agent => "agent",
        }
    }
}

/// One server of the inventory.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub name: String,
    pub host: String,
    /// `None` means the transport's default (22 for SSH).
    pub port: Option<u16>,
    /// `None` means the controller's default login user.
    pub user: Option<String>,
    pub transport: Transport,
    /// Every group the node is in, nested groups resolved.
    pub groups: BTreeSet<String>,
    pub tags: BTreeSet<String>,
    pub attributes: BTreeMap<String, String>,
    /// Where the node was defined, for messages.
    pub pos: Pos,
}

impl Node {
    pub fn new(name: &str, pos: Pos) -> Self {
        Node {
            name: name.to_string(),
            host: name.to_string(),
            port: None,
            user: None,
            transport: Transport::Ssh,
            groups: BTreeSet::new(),
            tags: BTreeSet::new(),
            attributes: BTreeMap::new(),
            pos,
        }
    }

    /// A name safe to use as a folder name (`/` and other oddities replaced).
    pub fn folder_name(&self) -> String {
        folder_name_of(&self.name)
    }
}

/// The folder a server named `name` gets in an execution's folder.
pub fn folder_name_of(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '@') {
                c
            } else {
                '_'
            }
        })
        .collect();
    match s.as_str() {
        "" | "." | ".." => format!("_{s}"),
        _ => s,
    }
}

/// The whole inventory: nodes in file order, and group names.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inventory {
    pub nodes: Vec<Node>,
    pub groups: BTreeSet<String>,
}

impl Inventory {
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// Checks what holds across formats: unique names, valid hosts.
    pub(crate) fn check(&self, d: &mut Diagnostics) {
        let mut seen: BTreeMap<&str, Pos> = BTreeMap::new();
        for n in &self.nodes {
            if let Some(first) = seen.get(n.name.as_str()) {
                d.error(
                    n.pos,
                    format!(
                        "server `{}` is defined twice (first at line {})",
                        n.name, first.line
                    ),
                );
            } else {
                seen.insert(&n.name, n.pos);
            }
            if n.host.trim().is_empty() || n.host.contains(char::is_whitespace) {
                d.error(
                    n.pos,
                    format!("server `{}`: invalid host `{}`", n.name, n.host),
                );
            }
        }
    }
}
