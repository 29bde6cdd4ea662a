//! The `options:` section: each option's type, default, allowed values, regex and
//! secrecy.

use ordo_inventory::yaml::Node;

use super::Cx;
use crate::model::{JobOption, OptionType, ValuesFrom};
use crate::options::check_value;

const OPTION: &[&str] = &[
    "description",
    "type",
    "default",
    "required",
    "allowed",
    "regex",
    "secret",
    "min",
    "max",
    "multivalued",
    "delimiter",
    "values_from",
];

/// `min:` or `max:` of an integer option.
fn bound(
    f: &ordo_inventory::yaml::Fields<'_>,
    key: &str,
    what: &str,
    cx: &mut Cx<'_>,
) -> Option<i64> {
    let v = f.get(key)?;
    let text = v.str(&format!("{what}: {key}"), cx.d)?;
    text.trim()
        .parse()
        .map_err(|_| {
            cx.d.error(v.pos, format!("{what}: {key} `{text}` is not an integer"))
        })
        .ok()
}

/// `multivalued: true` (values separated by `delimiter`, `,` by default).
fn delimiter(f: &ordo_inventory::yaml::Fields<'_>, what: &str, cx: &mut Cx<'_>) -> Option<String> {
    let multi = f
        .get("multivalued")
        .and_then(|v| v.bool(&format!("{what}: multivalued"), cx.d))
        .unwrap_or(false);
    let given = f.get("delimiter").and_then(|v| {
        let d = v.str(&format!("{what}: delimiter"), cx.d)?;
        if d.is_empty() {
            cx.d.error(v.pos, format!("{what}: delimiter: empty"));
            return None;
        }
        Some(d)
    });
    if given.is_some() && !multi {
        cx.d.error(
            f.get("delimiter")
                .map_or(ordo_inventory::yaml::Pos::new(1, 1), |v| v.pos),
            format!("{what}: delimiter needs multivalued: true"),
        );
    }
    multi.then(|| given.unwrap_or_else(|| ",".to_string()))
}

/// `values_from: {file: PATH}` (relative to the job file) or `{command: [ARGV...],
/// timeout: 10s}` (no shell; 60 s at most).
fn values_from(
    f: &ordo_inventory::yaml::Fields<'_>,
    what: &str,
    base: &std::path::Path,
    cx: &mut Cx<'_>,
) -> Option<ValuesFrom> {
    let n = f.get("values_from")?;
    let w = format!("{what}: values_from");
    let v = n.fields(&w, &["file", "command", "timeout"], cx.d);
    match (v.get("file"), v.get("command")) {
        (Some(p), None) => {
            let p = p.str(&format!("{w}: file"), cx.d)?;
            Some(ValuesFrom::File(base.join(p)))
        }
        (None, Some(c)) => {
            let argv: Vec<String> = c
                .str_list(&format!("{w}: command"), cx.d)
                .into_iter()
                .map(|(s, _)| s)
                .collect();
            if argv.is_empty() {
                cx.d.error(
                    c.pos,
                    format!("{w}: command: give the program and its arguments as a list"),
                );
                return None;
            }
            let timeout = match v.get("timeout") {
                None => std::time::Duration::from_secs(10),
                Some(t) => {
                    let text = t.str(&format!("{w}: timeout"), cx.d)?;
                    match crate::units::parse_duration(&text) {
                        Ok(d) if d <= std::time::Duration::from_secs(60) && !d.is_zero() => d,
                        Ok(_) => {
                            cx.d.error(t.pos, format!("{w}: timeout: from 1s to 60s"));
                            return None;
                        }
                        Err(e) => {
                            cx.d.error(t.pos, format!("{w}: timeout: {e}"));
                            return None;
                        }
                    }
                }
            };
            Some(ValuesFrom::Command { argv, timeout })
        }
        _ => {
            cx.d.error(n.pos, format!("{w}: give either file or command"));
            None
        }
    }
}

pub(super) fn read_options(n: &Node, cx: &mut Cx<'_>, base: &std::path::Path) -> Vec<JobOption> {
    let mut out = Vec::new();
    for (name, o) in n.entries("options", cx.d) {
        let what = format!("option `{name}`");
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            cx.d.error(
                o.pos,
                format!("{what}: names use letters, digits, `_` and `-` only"),
            );
        }
        let f = o.fields(&what, OPTION, cx.d);
        let kind = match f
            .get("type")
            .and_then(|t| t.str(&format!("{what}: type"), cx.d))
            .as_deref()
        {
            None | Some("string") => OptionType::String,
            Some("integer" | "int") => OptionType::Integer,
            Some("boolean" | "bool") => OptionType::Boolean,
            Some("ip") => OptionType::Ip,
            Some("duration") => OptionType::Duration,
            Some("email") => OptionType::Email,
            Some("date") => OptionType::Date,
            Some(other) => {
                cx.d.error(
                    f.get("type").map_or(o.pos, |t| t.pos),
                    format!("{what}: unknown type `{other}` (expected string, integer, boolean, ip, duration, email or date)"),
                );
                OptionType::String
            }
        };
        let regex = f.get("regex").and_then(|r| {
            let text = r.str(&format!("{what}: regex"), cx.d)?;
            regex::Regex::new(&format!("^(?:{text})$"))
                .map_err(|e| {
                    cx.d.error(
                        r.pos,
                        format!(
                            "{what}: invalid regex: {}",
                            e.to_string().lines().last().unwrap_or("")
                        ),
                    )
                })
                .ok()
        });
        let opt = JobOption {
            description: f
                .get("description")
                .and_then(|v| v.str(&format!("{what}: description"), cx.d))
                .unwrap_or_default(),
            kind,
            default: f
                .get("default")
                .and_then(|v| v.str(&format!("{what}: default"), cx.d)),
            required: f
                .get("required")
                .and_then(|v| v.bool(&format!("{what}: required"), cx.d))
                .unwrap_or(false),
            allowed: f
                .get("allowed")
                .map(|v| {
                    v.str_list(&format!("{what}: allowed"), cx.d)
                        .into_iter()
                        .map(|(s, _)| s)
                        .collect()
                })
                .unwrap_or_default(),
            regex,
            secret: f
                .get("secret")
                .and_then(|v| v.bool(&format!("{what}: secret"), cx.d))
                .unwrap_or(false),
            min: bound(&f, "min", &what, cx),
            max: bound(&f, "max", &what, cx),
            delimiter: delimiter(&f, &what, cx),
            values_from: values_from(&f, &what, base, cx),
            name: name.clone(),
            pos: o.pos,
        };
        if opt.values_from.is_some() && !opt.allowed.is_empty() {
            cx.d.error(
                o.pos,
                format!("{what}: give allowed or values_from, not both"),
            );
        }
        if (opt.min.is_some() || opt.max.is_some()) && kind != OptionType::Integer {
            cx.d.error(
                o.pos,
                format!("{what}: min and max are for `type: integer`"),
            );
        }
        if let (Some(lo), Some(hi)) = (opt.min, opt.max)
            && lo > hi
        {
            cx.d.error(o.pos, format!("{what}: min {lo} is above max {hi}"));
        }
        // Values read at each use are not read while loading.
        if let (Some(def), Some(node), None) = (&opt.default, f.get("default"), &opt.values_from)
            && let Err(e) = check_value(&opt, def)
        {
            cx.d.error(node.pos, format!("{what}: default {e}"));
        }
        out.push(opt);
    }
    out
}
