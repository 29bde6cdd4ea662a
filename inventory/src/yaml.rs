//! A small spanned YAML tree and an error-collecting reader over it.
//!
//! serde stops at the first error; operators want every mistake of a file in one go, each
//! with its line and column. So files are parsed into [`Node`]s that keep their position,
//! and decoded by hand with [`Diagnostics`] collecting every problem.
//!
//! Scalars keep their source text: the expected type decides how a scalar is read, so
//! `default: 010` stays `"010"` for a string option and is `10` for an integer.

mod diagnostics;
mod parse;

use std::collections::HashMap;

pub use diagnostics::{Diagnostic, Diagnostics, Pos};
pub use parse::parse;

/// A YAML value with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub pos: Pos,
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// A scalar's text as written; `plain` is false for quoted and block scalars.
    Scalar {
        text: String,
        plain: bool,
    },
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// A plain `~`, `null` or empty scalar.
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, Kind::Scalar { text, plain: true }
            if text.is_empty() || text == "~" || text.eq_ignore_ascii_case("null"))
    }

    pub fn type_name(&self) -> &'static str {
        match &self.kind {
            _ if self.is_null() => "nothing",
            Kind::Scalar { .. } => "a scalar",
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a mapping",
        }
    }

    /// The scalar's text, or an error naming `what` was expected.
    pub fn str(&self, what: &str, d: &mut Diagnostics) -> Option<String> {
        match &self.kind {
            Kind::Scalar { text, .. } if !self.is_null() => Some(text.clone()),
            _ => {
                d.error(
                    self.pos,
                    format!("{what}: expected a string, found {}", self.type_name()),
                );
                None
            }
        }
    }

    pub fn u64(&self, what: &str, d: &mut Diagnostics) -> Option<u64> {
        let text = self.str(what, d)?;
        match text.trim().replace('_', "").parse::<u64>() {
            Ok(v) => Some(v),
            Err(_) => {
                d.error(
                    self.pos,
                    format!("{what}: expected a whole number, found `{text}`"),
                );
                None
            }
        }
    }

    pub fn bool(&self, what: &str, d: &mut Diagnostics) -> Option<bool> {
        let text = self.str(what, d)?;
        match text.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" => Some(true),
            "false" | "no" | "off" => Some(false),
            _ => {
                d.error(
                    self.pos,
                    format!("{what}: expected true or false, found `{text}`"),
                );
                None
            }
        }
    }

    /// A list of strings; a single scalar is taken as a one-element list.
    pub fn str_list(&self, what: &str, d: &mut Diagnostics) -> Vec<(String, Pos)> {
        match &self.kind {
            Kind::Seq(items) => items
                .iter()
                .filter_map(|n| n.str(what, d).map(|s| (s, n.pos)))
                .collect(),
            Kind::Scalar { .. } if self.is_null() => Vec::new(),
            Kind::Scalar { text, .. } => vec![(text.clone(), self.pos)],
            Kind::Map(_) => {
                d.error(
                    self.pos,
                    format!("{what}: expected a list, found a mapping"),
                );
                Vec::new()
            }
        }
    }

    /// Mapping entries with string keys, in order; reports duplicate keys.
    pub fn entries<'a>(&'a self, what: &str, d: &mut Diagnostics) -> Vec<(String, &'a Node)> {
        match &self.kind {
            Kind::Map(pairs) => {
                let mut seen: HashMap<String, Pos> = HashMap::new();
                let mut out = Vec::new();
                for (k, v) in pairs {
                    let Some(key) = k.str(&format!("{what} key"), d) else {
                        continue;
                    };
                    if let Some(first) = seen.get(&key) {
                        d.error(
                            k.pos,
                            format!(
                                "{what}: duplicate key `{key}` (first defined at line {})",
                                first.line
                            ),
                        );
                        continue;
                    }
                    seen.insert(key.clone(), k.pos);
                    out.push((key, v));
                }
                out
            }
            _ if self.is_null() => Vec::new(),
            _ => {
                d.error(
                    self.pos,
                    format!("{what}: expected a mapping, found {}", self.type_name()),
                );
                Vec::new()
            }
        }
    }

    /// A mapping with a fixed set of keys: unknown and duplicate keys are reported.
    pub fn fields<'a>(&'a self, what: &str, known: &[&str], d: &mut Diagnostics) -> Fields<'a> {
        let mut map = HashMap::new();
        if let Kind::Map(pairs) = &self.kind {
            for (k, v) in pairs {
                let Some(key) = k.str(&format!("{what} key"), d) else {
                    continue;
                };
                if !known.contains(&key.as_str()) {
                    let hint = match closest(&key, known) {
                        Some(c) => format!(" (did you mean `{c}`?)"),
                        None => format!(" (expected one of: {})", known.join(", ")),
                    };
                    d.error(k.pos, format!("{what}: unknown key `{key}`{hint}"));
                    continue;
                }
                if let Some((kpos, _)) = map.get(&key) {
                    let kpos: &Pos = kpos;
                    d.error(
                        k.pos,
                        format!(
                            "{what}: duplicate key `{key}` (first defined at line {})",
                            kpos.line
                        ),
                    );
                    continue;
                }
                map.insert(key, (k.pos, v));
            }
        } else if !self.is_null() {
            d.error(
                self.pos,
                format!("{what}: expected a mapping, found {}", self.type_name()),
            );
        }
        Fields { pos: self.pos, map }
    }
}

/// The known keys of one mapping, looked up by name.
pub struct Fields<'a> {
    pub pos: Pos,
    map: HashMap<String, (Pos, &'a Node)>,
}

impl<'a> Fields<'a> {
    pub fn get(&self, key: &str) -> Option<&'a Node> {
        self.map.get(key).map(|(_, n)| *n).filter(|n| !n.is_null())
    }

    /// The value, or an error at the mapping's position if it is missing.
    pub fn require(&self, key: &str, what: &str, d: &mut Diagnostics) -> Option<&'a Node> {
        let v = self.get(key);
        if v.is_none() {
            d.error(self.pos, format!("{what}: missing required key `{key}`"));
        }
        v
    }

    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }
}

/// The known name closest to `word`, if it is a likely typo.
pub fn closest<'k>(word: &str, known: &[&'k str]) -> Option<&'k str> {
    known
        .iter()
        .map(|k| (edit_distance(word, k), *k))
        .filter(|(dist, k)| *dist <= 2.max(k.len() / 4) && *dist < k.len())
        .min_by_key(|(dist, _)| *dist)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests;
