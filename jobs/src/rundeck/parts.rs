//! Reading Rundeck's YAML by hand (any key may be missing), and the pieces that are
//! translated on their own: node filters, schedules, job-reference arguments.

use ordo_inventory::yaml::{Kind, Node};

/// A YAML scalar written so that any text stays what it is (JSON strings are YAML).
pub(super) fn q(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

pub(super) fn get<'a>(n: &'a Node, key: &str) -> Option<&'a Node> {
    match &n.kind {
        Kind::Map(m) => m
            .iter()
            .find(|(k, _)| matches!(&k.kind, Kind::Scalar { text, .. } if text == key))
            .map(|(_, v)| v),
        _ => None,
    }
}

pub(super) fn text(n: &Node, key: &str) -> Option<String> {
    match &get(n, key)?.kind {
        Kind::Scalar { text, .. } if !get(n, key)?.is_null() => Some(text.clone()),
        _ => None,
    }
}

pub(super) fn flag(n: &Node, key: &str) -> bool {
    text(n, key).is_some_and(|t| t == "true")
}

pub(super) fn keys(n: &Node) -> Vec<String> {
    match &n.kind {
        Kind::Map(m) => m
            .iter()
            .filter_map(|(k, _)| match &k.kind {
                Kind::Scalar { text, .. } => Some(text.clone()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

pub(super) fn items(n: Option<&Node>) -> Vec<&Node> {
    match n.map(|n| &n.kind) {
        Some(Kind::Seq(v)) => v.iter().collect(),
        _ => Vec::new(),
    }
}

/// One term of an ordo filter, quoted when it holds anything the filter language reads
/// (a Rundeck value such as `web1|all`, a regex, is one value, never `web1 or all`);
/// none when it holds both kinds of quotes.
fn filter_word(term: &str) -> Option<String> {
    let plain = term
        .chars()
        .all(|c| c.is_alphanumeric() || "_.:=*?/-[]@+".contains(c));
    if plain && !matches!(term, "and" | "AND" | "or" | "OR" | "not" | "NOT" | "all") {
        Some(term.to_string())
    } else if !term.contains('"') {
        Some(format!("\"{term}\""))
    } else if !term.contains('\'') {
        Some(format!("'{term}'"))
    } else {
        None
    }
}

/// A Rundeck node filter (`tags: web+prod name: a,b !hostname: x`) as an ordo filter.
pub fn node_filter(filter: &str, notes: &mut Vec<String>) -> String {
    let mut terms = Vec::new();
    let mut words = filter.split_whitespace().peekable();
    while let Some(w) = words.next() {
        let (key, value) = match w.strip_suffix(':') {
            Some(k) => (k.to_string(), words.next().unwrap_or("").to_string()),
            None => match w.split_once(':') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => ("name".to_string(), w.to_string()),
            },
        };
        let (neg, key) = match key.strip_prefix('!') {
            Some(k) => (true, k.to_string()),
            None => (false, key),
        };
        if value.contains(".*") || value.contains('^') || value.contains('$') {
            notes.push(format!(
                "node filter `{key}: {value}`: a regular expression, read as a glob"
            ));
        }
        let value = value.replace(".*", "*");
        let one = |v: &str| match key.as_str() {
            "name" | "nodename" => filter_word(&format!("name:{v}")),
            "hostname" => filter_word(&format!("host:{v}")),
            "tags" => v
                .split('+')
                .map(|t| filter_word(&format!("tag:{t}")))
                .collect::<Option<Vec<_>>>()
                .map(|t| t.join(" and ")),
            other => filter_word(&format!("attr.{other}={v}")),
        };
        let mut alts: Vec<String> = Vec::new();
        for v in value.split(',').filter(|v| !v.is_empty()) {
            match one(v) {
                Some(t) => alts.push(t),
                None => notes.push(format!(
                    "node filter `{key}: {v}`: holds both kinds of quotes: left out"
                )),
            }
        }
        if alts.is_empty() {
            continue;
        }
        let term = if alts.len() == 1 {
            alts[0].clone()
        } else {
            format!("({})", alts.join(" or "))
        };
        terms.push(if neg { format!("not {term}") } else { term });
    }
    if terms.is_empty() {
        "all".into()
    } else {
        terms.join(" and ")
    }
}

/// Rundeck's structured schedule (or its `crontab`) as a Quartz expression.
pub(super) fn schedule(s: &Node) -> Option<String> {
    if let Some(c) = text(s, "crontab") {
        return Some(c);
    }
    let time = get(s, "time")?;
    let field = |n: Option<&Node>, key: &str, default: &str| {
        n.and_then(|n| text(n, key))
            .unwrap_or_else(|| default.to_string())
    };
    let weekday = get(s, "weekday").and_then(|w| text(w, "day"));
    let dom = get(s, "dayofmonth").and_then(|w| text(w, "day"));
    let (dom, dow) = match (dom, weekday) {
        (Some(d), _) => (d, "?".to_string()),
        (None, Some(w)) => ("?".to_string(), w),
        (None, None) => ("?".to_string(), "*".to_string()),
    };
    Some(format!(
        "{} {} {} {dom} {} {dow} {}",
        field(Some(time), "seconds", "0"),
        field(Some(time), "minute", "0"),
        field(Some(time), "hour", "0"),
        text(s, "month").unwrap_or_else(|| "*".into()),
        text(s, "year").unwrap_or_else(|| "*".into()),
    ))
}

/// `-name value` pairs of a job reference's `args`.
pub(super) fn jobref_args(args: &str, notes: &mut Vec<String>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut words = args.split_whitespace();
    while let Some(w) = words.next() {
        match w.strip_prefix('-') {
            Some(name) => out.push((
                name.to_string(),
                words.next().unwrap_or("").trim_matches('"').to_string(),
            )),
            None => notes.push(format!(
                "job reference argument `{w}` is not `-option value`: left out"
            )),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_filters_become_ordo_filters() {
        let mut n = Vec::new();
        assert_eq!(
            node_filter("tags: web+prod name: a,b !hostname: x", &mut n),
            "tag:web and tag:prod and (name:a or name:b) and not host:x"
        );
        assert_eq!(node_filter("web1", &mut n), "name:web1");
        assert_eq!(node_filter("osFamily: unix", &mut n), "attr.osFamily=unix");
        assert!(n.is_empty());
        assert_eq!(node_filter("name: web.*", &mut n), "name:web*");
        assert_eq!(n.len(), 1);
    }
}
