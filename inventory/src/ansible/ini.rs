//! The INI form of an Ansible inventory: host lines, `[group]`, `[group:vars]` and
//! `[group:children]` sections.

use super::{Builder, expand_range, host_pattern, with_port};
use crate::model::Inventory;
use crate::yaml::{Diagnostics, Pos};

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
