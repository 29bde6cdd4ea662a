//! A small spanned YAML tree and an error-collecting reader over it.
//!
//! serde stops at the first error; operators want every mistake of a file in one go, each
//! with its line and column. So files are parsed into [`Node`]s that keep their position,
//! and decoded by hand with [`Diagnostics`] collecting every problem.
//!
//! Scalars keep their source text: the expected type decides how a scalar is read, so
//! `default: 010` stays `"010"` for a string option and is `10` for an integer.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use saphyr_parser::{Event, Parser, ScalarStyle, Span, SpannedEventReceiver};

/// A position in a source file, both 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

impl Pos {
    pub fn new(line: usize, column: usize) -> Self {
        Pos { line, column }
    }
}

/// One problem found in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub pos: Pos,
    pub message: String,
}

/// Every problem found in one file, in source order.
#[derive(Debug, Clone, Default)]
pub struct Diagnostics {
    pub file: PathBuf,
    pub items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn new(file: impl Into<PathBuf>) -> Self {
        Diagnostics {
            file: file.into(),
            items: Vec::new(),
        }
    }

    pub fn error(&mut self, pos: Pos, message: impl Into<String>) {
        self.items.push(Diagnostic {
            pos,
            message: message.into(),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Sorts by position; keeps the first of identical entries.
    pub fn sort(&mut self) {
        self.items
            .sort_by_key(|d| (d.pos.line, d.pos.column, d.message.clone()));
        self.items.dedup();
    }

    pub fn path(&self) -> &Path {
        &self.file
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.items.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(
                f,
                "{}:{}:{}: {}",
                self.file.display(),
                d.pos.line,
                d.pos.column,
                d.message
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

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

/// Parses one YAML document. An empty file is an empty mapping.
pub fn parse(text: &str, d: &mut Diagnostics) -> Option<Node> {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    if let Err(e) = parser.load(&mut builder, false) {
        let m = e.marker();
        d.error(
            Pos::new(m.line(), m.col() + 1),
            format!("invalid YAML: {}", e.info()),
        );
        return None;
    }
    if let Some((pos, msg)) = builder.error {
        d.error(pos, msg);
        return None;
    }
    Some(builder.root.unwrap_or(Node {
        pos: Pos::new(1, 1),
        kind: Kind::Map(Vec::new()),
    }))
}

enum Frame {
    Seq(Pos, Vec<Node>),
    Map(Pos, Vec<(Node, Node)>, Option<Node>),
}

#[derive(Default)]
struct Builder {
    stack: Vec<(Frame, usize)>,
    anchors: HashMap<usize, Node>,
    root: Option<Node>,
    error: Option<(Pos, String)>,
}

impl Builder {
    fn push_value(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => {
                if self.root.is_none() {
                    self.root = Some(node);
                }
            }
            Some((Frame::Seq(_, items), _)) => items.push(node),
            Some((Frame::Map(_, pairs, key), _)) => match key.take() {
                None => *key = Some(node),
                Some(k) => pairs.push((k, node)),
            },
        }
    }
}

fn pos_of(span: &Span) -> Pos {
    Pos::new(span.start.line(), span.start.col() + 1)
}

impl<'input> SpannedEventReceiver<'input> for Builder {
    fn on_event(&mut self, ev: Event<'input>, span: Span) {
        let pos = pos_of(&span);
        match ev {
            Event::Scalar(text, style, anchor, _tag) => {
                let node = Node {
                    pos,
                    kind: Kind::Scalar {
                        text: text.into_owned(),
                        plain: style == ScalarStyle::Plain,
                    },
                };
                self.push_value(node, anchor);
            }
            Event::SequenceStart(anchor, _) => {
                self.stack.push((Frame::Seq(pos, Vec::new()), anchor))
            }
            Event::MappingStart(anchor, _) => {
                self.stack.push((Frame::Map(pos, Vec::new(), None), anchor))
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some((frame, anchor)) = self.stack.pop() {
                    let node = match frame {
                        Frame::Seq(p, items) => Node {
                            pos: p,
                            kind: Kind::Seq(items),
                        },
                        Frame::Map(p, pairs, _) => Node {
                            pos: p,
                            kind: Kind::Map(merge_keys(pairs)),
                        },
                    };
                    self.push_value(node, anchor);
                }
            }
            Event::Alias(id) => match self.anchors.get(&id).cloned() {
                Some(mut node) => {
                    node.pos = pos;
                    self.push_value(node, 0);
                }
                None => {
                    self.error
                        .get_or_insert((pos, "alias to an unknown anchor".to_string()));
                }
            },
            Event::DocumentStart(_) if self.root.is_some() => {
                self.error.get_or_insert((
                    pos,
                    "only one YAML document per file is supported".to_string(),
                ));
            }
            _ => {}
        }
    }
}

/// Applies YAML merge keys (`<<: *defaults`): explicit keys win over merged ones.
fn merge_keys(pairs: Vec<(Node, Node)>) -> Vec<(Node, Node)> {
    let is_merge = |k: &Node| matches!(&k.kind, Kind::Scalar { text, plain: true } if text == "<<");
    if !pairs.iter().any(|(k, _)| is_merge(k)) {
        return pairs;
    }
    let mut own = Vec::new();
    let mut merged = Vec::new();
    for (k, v) in pairs {
        if is_merge(&k) {
            let sources = match v.kind {
                Kind::Seq(items) => items,
                _ => vec![v],
            };
            for src in sources {
                if let Kind::Map(p) = src.kind {
                    merged.extend(p);
                }
            }
        } else {
            own.push((k, v));
        }
    }
    let key_text = |n: &Node| match &n.kind {
        Kind::Scalar { text, .. } => Some(text.clone()),
        _ => None,
    };
    for (k, v) in merged {
        let kt = key_text(&k);
        if kt.is_some() && own.iter().any(|(ok, _)| key_text(ok) == kt) {
            continue;
        }
        own.push((k, v));
    }
    own
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(text: &str) -> Node {
        let mut d = Diagnostics::new("t.yaml");
        let n = parse(text, &mut d).expect("parses");
        assert!(d.is_empty(), "{d}");
        n
    }

    #[test]
    fn positions_are_one_based() {
        let n = parse_ok("a: 1\nb:\n  - x\n  - 'y'\n");
        let mut d = Diagnostics::new("t.yaml");
        let e = n.entries("root", &mut d);
        assert_eq!(e[0].1.pos, Pos::new(1, 4));
        let Kind::Seq(items) = &e[1].1.kind else {
            panic!()
        };
        assert_eq!(items[1].pos, Pos::new(4, 5));
    }

    #[test]
    fn syntax_error_has_position() {
        let mut d = Diagnostics::new("bad.yaml");
        assert!(parse("a: [1, 2\nb: 3\n", &mut d).is_none());
        assert_eq!(d.len(), 1);
        assert!(d.to_string().starts_with("bad.yaml:"), "{d}");
    }

    #[test]
    fn unknown_and_duplicate_keys_are_all_reported() {
        let n = parse_ok("name: a\nnmae: b\nname: c\nother: 1\n");
        let mut d = Diagnostics::new("t.yaml");
        let _f = n.fields("job", &["name", "description"], &mut d);
        let text = d.to_string();
        assert_eq!(d.len(), 3, "{text}");
        assert!(text.contains("t.yaml:2:1: job: unknown key `nmae` (did you mean `name`?)"));
        assert!(text.contains("t.yaml:3:1: job: duplicate key `name` (first defined at line 1)"));
        assert!(text.contains("t.yaml:4:1: job: unknown key `other` (expected one of"));
    }

    #[test]
    fn anchors_and_merge_keys() {
        let n = parse_ok("d: &d {port: 22, user: a}\ns:\n  <<: *d\n  user: b\n");
        let mut d = Diagnostics::new("t.yaml");
        let e = n.entries("root", &mut d);
        let s = e[1].1.entries("s", &mut d);
        let got: Vec<_> = s
            .iter()
            .map(|(k, v)| (k.clone(), v.str("v", &mut d).unwrap()))
            .collect();
        assert_eq!(
            got,
            vec![("user".into(), "b".into()), ("port".into(), "22".into())]
        );
    }
}
