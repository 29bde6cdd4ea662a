//! Rundeck's XML job format (`<joblist><job>…`), read into the same shape as its YAML
//! export so that one conversion serves both.

use ordo_inventory::yaml::{Diagnostics, Kind, Node, Pos};
use roxmltree::Document;

type X<'a, 'i> = roxmltree::Node<'a, 'i>;

struct Tree<'d> {
    doc: &'d Document<'d>,
}

impl<'d> Tree<'d> {
    fn pos(&self, n: X) -> Pos {
        let p = self.doc.text_pos_at(n.range().start);
        Pos::new(p.row as usize, p.col as usize)
    }

    fn scalar(&self, n: X, text: &str) -> Node {
        Node {
            pos: self.pos(n),
            kind: Kind::Scalar {
                text: text.to_string(),
                plain: false,
            },
        }
    }

    fn map(&self, n: X, entries: Vec<(&str, Node)>) -> Node {
        Node {
            pos: self.pos(n),
            kind: Kind::Map(
                entries
                    .into_iter()
                    .map(|(k, v)| (self.scalar(n, k), v))
                    .collect(),
            ),
        }
    }

    fn seq(&self, n: X, items: Vec<Node>) -> Node {
        Node {
            pos: self.pos(n),
            kind: Kind::Seq(items),
        }
    }

    /// The element's attributes, as scalars.
    fn attrs<'n>(&self, n: X<'n, '_>, names: &[&'n str]) -> Vec<(&'n str, Node)> {
        names
            .iter()
            .filter_map(|a| Some((*a, self.scalar(n, n.attribute(*a)?))))
            .collect()
    }

    /// The text of child `name`, as a scalar.
    fn child_text(&self, n: X, name: &str) -> Option<Node> {
        let c = child(n, name)?;
        Some(self.scalar(c, c.text().unwrap_or("")))
    }
}

fn child<'a, 'i>(n: X<'a, 'i>, name: &str) -> Option<X<'a, 'i>> {
    n.children().find(|c| c.has_tag_name(name))
}

fn option(t: &Tree, o: X) -> Node {
    let mut e = t.attrs(
        o,
        &[
            "name",
            "value",
            "values",
            "required",
            "regex",
            "secure",
            "multivalued",
            "delimiter",
            "valuesUrl",
        ],
    );
    if let Some(v) = o.attribute("enforcedvalues") {
        e.push(("enforced", t.scalar(o, v)));
    }
    if let Some(d) = t.child_text(o, "description") {
        e.push(("description", d));
    }
    t.map(o, e)
}

fn command(t: &Tree, c: X) -> Node {
    let mut e = Vec::new();
    for (tag, key) in [
        ("exec", "exec"),
        ("script", "script"),
        ("scriptfile", "scriptfile"),
        ("description", "description"),
    ] {
        if let Some(v) = t.child_text(c, tag) {
            e.push((key, v));
        }
    }
    if let Some(a) = t.child_text(c, "scriptargs") {
        e.push(("args", a));
    }
    if let Some(r) = child(c, "jobref") {
        let mut j = t.attrs(
            r,
            &["name", "group", "importOptions", "nodeStep", "project"],
        );
        if let Some(line) = child(r, "arg").and_then(|a| a.attribute("line")) {
            j.push(("args", t.scalar(r, line)));
        }
        e.push(("jobref", t.map(r, j)));
    }
    if let Some(h) = child(c, "errorhandler") {
        e.push(("errorhandler", t.map(h, Vec::new())));
    }
    for plugin in ["node-step-plugin", "step-plugin"] {
        if let Some(p) = child(c, plugin) {
            e.push(("type", t.scalar(p, p.attribute("type").unwrap_or(plugin))));
        }
    }
    t.map(c, e)
}

fn schedule(t: &Tree, s: X) -> Node {
    if let Some(c) = s.attribute("crontab") {
        return t.map(s, vec![("crontab", t.scalar(s, c))]);
    }
    let mut e = Vec::new();
    if let Some(time) = child(s, "time") {
        e.push((
            "time",
            t.map(time, t.attrs(time, &["hour", "minute", "seconds"])),
        ));
    }
    for (tag, attr) in [("month", "month"), ("year", "year")] {
        if let Some(v) = child(s, tag).and_then(|c| c.attribute(attr)) {
            e.push((tag, t.scalar(s, v)));
        }
    }
    for tag in ["weekday", "dayofmonth"] {
        if let Some(c) = child(s, tag) {
            e.push((tag, t.map(c, t.attrs(c, &["day"]))));
        }
    }
    t.map(s, e)
}

fn notification(t: &Tree, n: X) -> Node {
    let mut e = Vec::new();
    for key in ["onsuccess", "onfailure", "onstart"] {
        let Some(on) = child(n, key) else { continue };
        let mut v = Vec::new();
        if let Some(m) = child(on, "email") {
            v.push(("email", t.map(m, t.attrs(m, &["recipients", "attachLog"]))));
        }
        if let Some(w) = child(on, "webhook").and_then(|w| w.attribute("urls")) {
            v.push(("urls", t.scalar(on, w)));
        }
        if let Some(p) = child(on, "plugin") {
            v.push(("plugin", t.map(p, t.attrs(p, &["type"]))));
        }
        e.push((key, t.map(on, v)));
    }
    t.map(n, e)
}

fn job(t: &Tree, j: X) -> Node {
    let mut e = Vec::new();
    for key in [
        "name",
        "group",
        "description",
        "timeout",
        "retry",
        "loglevel",
        "uuid",
        "scheduleEnabled",
        "executionEnabled",
    ] {
        if let Some(v) = t.child_text(j, key) {
            e.push((key, v));
        }
    }
    if let Some(f) = child(j, "nodefilters").and_then(|n| child(n, "filter")) {
        e.push((
            "nodefilters",
            t.map(f, vec![("filter", t.scalar(f, f.text().unwrap_or("")))]),
        ));
    }
    if let Some(d) = child(j, "dispatch") {
        if let Some(v) = t.child_text(d, "threadcount") {
            e.push(("nodeThreadcount", v));
        }
        if let Some(v) = t.child_text(d, "keepgoing") {
            e.push(("nodeKeepgoing", v));
        }
    }
    if let Some(opts) = child(j, "context").and_then(|c| child(c, "options")) {
        let items = opts
            .children()
            .filter(|c| c.has_tag_name("option"))
            .map(|o| option(t, o))
            .collect();
        e.push(("options", t.seq(opts, items)));
    }
    if let Some(s) = child(j, "sequence") {
        let mut v = t.attrs(s, &["keepgoing", "strategy"]);
        let cmds = s
            .children()
            .filter(|c| c.has_tag_name("command"))
            .map(|c| command(t, c))
            .collect();
        v.push(("commands", t.seq(s, cmds)));
        e.push(("sequence", t.map(s, v)));
    }
    if let Some(s) = child(j, "schedule") {
        e.push(("schedule", schedule(t, s)));
    }
    if let Some(n) = child(j, "notification") {
        e.push(("notification", notification(t, n)));
    }
    t.map(j, e)
}

/// The jobs of a `<joblist>` as the YAML export's list.
pub(super) fn read(source: &str, file: &std::path::Path) -> Result<Node, Diagnostics> {
    let mut d = Diagnostics::new(file);
    let doc = match Document::parse(source) {
        Ok(doc) => doc,
        Err(e) => {
            let p = e.pos();
            d.error(
                Pos::new(p.row as usize, p.col as usize),
                format!("XML: {e}"),
            );
            return Err(d);
        }
    };
    let t = Tree { doc: &doc };
    let root = doc.root_element();
    if !root.has_tag_name("joblist") {
        d.error(
            t.pos(root),
            "a Rundeck XML export starts with <joblist>".to_string(),
        );
        return Err(d);
    }
    let jobs = root
        .children()
        .filter(|c| c.has_tag_name("job"))
        .map(|j| job(&t, j))
        .collect();
    Ok(t.seq(root, jobs))
}
