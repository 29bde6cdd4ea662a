//! YAML text to a [`Node`] tree: saphyr's events, with anchors resolved and merge keys
//! (`<<: *defaults`) applied.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span, SpannedEventReceiver};

use super::{Diagnostics, Kind, Node, Pos};

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

/// The most values a document may hold once its aliases are expanded: aliases of aliases
/// double at each level (a "billion laughs" grows to gigabytes from a few lines).
pub const MAX_VALUES: usize = 1_000_000;

/// The most bytes of text aliases may copy (a long scalar aliased many times).
pub const MAX_ALIAS_BYTES: usize = 64 * 1024 * 1024;

#[derive(Default)]
struct Builder {
    stack: Vec<(Frame, usize)>,
    /// Each anchored value, how many values it holds, and its text's bytes.
    anchors: HashMap<usize, (Node, usize, usize)>,
    root: Option<Node>,
    error: Option<(Pos, String)>,
    /// Values so far, aliases expanded.
    values: usize,
    /// Bytes of text copied by aliases so far.
    alias_bytes: usize,
}

/// How many values `node` holds (itself included), and the bytes of its text.
fn size(node: &Node) -> (usize, usize) {
    match &node.kind {
        Kind::Scalar { text, .. } => (1, text.len()),
        Kind::Seq(items) => items
            .iter()
            .map(size)
            .fold((1, 0), |a, b| (a.0 + b.0, a.1 + b.1)),
        Kind::Map(pairs) => pairs
            .iter()
            .flat_map(|(k, v)| [size(k), size(v)])
            .fold((1, 0), |a, b| (a.0 + b.0, a.1 + b.1)),
    }
}

impl Builder {
    fn push_value(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            let (n, bytes) = size(&node);
            self.anchors.insert(anchor, (node.clone(), n, bytes));
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
        if self.error.is_some() {
            return;
        }
        let pos = pos_of(&span);
        if matches!(
            ev,
            Event::Scalar(..) | Event::SequenceStart(..) | Event::MappingStart(..)
        ) {
            self.values += 1;
        }
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
            Event::Alias(id) => match self.anchors.get(&id) {
                Some((_, n, bytes))
                    if self.values + n > MAX_VALUES
                        || self.alias_bytes + bytes > MAX_ALIAS_BYTES =>
                {
                    self.error.get_or_insert((
                        pos,
                        format!(
                            "aliases expand to more than {MAX_VALUES} values or {MAX_ALIAS_BYTES} bytes: refused (nested aliases grow exponentially)"
                        ),
                    ));
                }
                Some((node, n, bytes)) => {
                    let (mut node, n, bytes) = (node.clone(), *n, *bytes);
                    self.values += n;
                    self.alias_bytes += bytes;
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
