//! Moving in from Rundeck: its job definitions (YAML, as `rd jobs list --format yaml` or
//! the GUI export write them) into ordo job files. What has no ordo equivalent is listed
//! per job with the reason; nothing is dropped silently.

mod export;
mod nodes;
mod parts;
mod xml;

pub use export::export_yaml;
pub use nodes::import_nodes;

use ordo_inventory::yaml::{self, Diagnostics, Kind, Node};

use parts::{flag, get, items, jobref_args, keys, node_filter, q, schedule, text};

/// One converted job: its ordo name (`group/name`), its file text, and what did not come
/// across (or came across approximately).
#[derive(Debug, Clone)]
pub struct Imported {
    pub name: String,
    pub text: String,
    pub notes: Vec<String>,
}

/// Converts every job of a Rundeck YAML export; errors name the file, line and column.
pub fn import_yaml(source: &str, file: &std::path::Path) -> Result<Vec<Imported>, Diagnostics> {
    let mut d = Diagnostics::new(file);
    let Some(doc) = yaml::parse(source, &mut d) else {
        return Err(d);
    };
    import_tree(&doc, d)
}

/// Converts every job of a Rundeck XML export (`<joblist>`).
pub fn import_xml(source: &str, file: &std::path::Path) -> Result<Vec<Imported>, Diagnostics> {
    let doc = xml::read(source, file)?;
    import_tree(&doc, Diagnostics::new(file))
}

fn import_tree(doc: &Node, mut d: Diagnostics) -> Result<Vec<Imported>, Diagnostics> {
    let Kind::Seq(jobs) = &doc.kind else {
        d.error(
            doc.pos,
            "a Rundeck job export is a list of jobs".to_string(),
        );
        return Err(d);
    };
    let mut out = Vec::new();
    for j in jobs {
        let Some(name) = text(j, "name") else {
            d.error(j.pos, "a job without a name".to_string());
            continue;
        };
        match convert(j, &name) {
            Ok(imported) => out.push(imported),
            Err(e) => d.error(j.pos, format!("job `{name}`: {e}")),
        }
    }
    if d.is_empty() { Ok(out) } else { Err(d) }
}

/// A Rundeck name made safe as a path segment: letters, digits, `-`, `_`, `.`; anything
/// else becomes `_`.
fn safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `group/name` as an ordo job name, which is also its file's path under `jobs/`: a
/// segment `.` or `..` (which would climb out of `jobs/`) is refused.
fn job_name(group: &str, name: &str) -> Result<String, String> {
    let segments: Vec<String> = group
        .split('/')
        .filter(|g| !g.is_empty())
        .map(safe)
        .chain([safe(name)])
        .collect();
    if let Some(bad) = segments
        .iter()
        .find(|s| *s == "." || *s == ".." || s.is_empty())
    {
        return Err(format!(
            "group or name segment `{bad}`: a job is a file under jobs/, and `.`, `..` or an empty name would put it elsewhere"
        ));
    }
    Ok(segments.join("/"))
}

/// A whole number Rundeck wrote as text (`nodeThreadcount: '4'`), written as a number;
/// anything else (a template, a new line and more YAML) is refused.
fn number(what: &str, v: &str) -> Result<u32, String> {
    v.trim()
        .parse::<u32>()
        .map_err(|_| format!("{what} `{}` is not a whole number", v.escape_debug()))
}

const KNOWN: &[&str] = &[
    "name",
    "group",
    "description",
    "options",
    "sequence",
    "nodefilters",
    "schedule",
    "notification",
    "timeout",
    "retry",
    "nodeKeepgoing",
    "nodeThreadcount",
    "uuid",
    "id",
    "loglevel",
    "executionEnabled",
    "scheduleEnabled",
    "nodesSelectedByDefault",
    "defaultTab",
    "plugins",
];

fn convert(j: &Node, name: &str) -> Result<Imported, String> {
    let mut notes = Vec::new();
    let group = text(j, "group").unwrap_or_default();
    let full = job_name(&group, name)?;
    let mut y = String::new();
    for k in keys(j) {
        if !KNOWN.contains(&k.as_str()) {
            notes.push(format!("`{k}` has no ordo equivalent: left out"));
        }
    }
    if let Some(desc) = text(j, "description") {
        y.push_str(&format!("description: {}\n", q(&desc)));
    }
    match get(j, "nodefilters").and_then(|n| text(n, "filter")) {
        Some(f) => y.push_str(&format!("targets: {}\n", q(&node_filter(&f, &mut notes)))),
        None => {
            notes.push(
                "no node filter: Rundeck ran it on its own server; it targets `localhost` here"
                    .into(),
            );
            y.push_str("targets: \"name:localhost\"\n");
        }
    }
    if let Some(n) = text(j, "nodeThreadcount") {
        let n = number("nodeThreadcount", &n)?.max(1);
        y.push_str(&format!("parallelism: {n}\n"));
    }
    if let Some(t) = text(j, "timeout") {
        y.push_str(&format!("timeout: {}\n", q(t.trim())));
    }
    if text(j, "nodeKeepgoing").is_some_and(|v| v == "false") {
        notes.push(
            "nodeKeepgoing: false: ordo always finishes the other servers when one fails".into(),
        );
    }
    let opts = items(get(j, "options"));
    if !opts.is_empty() {
        y.push_str("options:\n");
    }
    for o in opts {
        let Some(oname) = text(o, "name") else {
            continue;
        };
        let mut f = Vec::new();
        if let Some(v) = text(o, "description") {
            f.push(format!("description: {}", q(&v)));
        }
        if let Some(v) = text(o, "value") {
            f.push(format!("default: {}", q(&v)));
        }
        if flag(o, "required") {
            f.push("required: true".into());
        }
        if flag(o, "secure") {
            f.push("secret: true".into());
        }
        if let Some(r) = text(o, "regex") {
            f.push(format!("regex: {}", q(&r)));
        }
        if flag(o, "multivalued") {
            f.push("multivalued: true".into());
            if let Some(dl) = text(o, "delimiter") {
                f.push(format!("delimiter: {}", q(&dl)));
            }
        }
        let values: Vec<String> = match get(o, "values").map(|v| &v.kind) {
            Some(Kind::Seq(v)) => v
                .iter()
                .filter_map(|n| match &n.kind {
                    Kind::Scalar { text, .. } => Some(text.clone()),
                    _ => None,
                })
                .collect(),
            Some(Kind::Scalar { text, .. }) => {
                text.split(',').map(|s| s.trim().to_string()).collect()
            }
            _ => Vec::new(),
        };
        if !values.is_empty() {
            if flag(o, "enforced") {
                f.push(format!(
                    "allowed: [{}]",
                    values.iter().map(|v| q(v)).collect::<Vec<_>>().join(", ")
                ));
            } else {
                notes.push(format!("option `{oname}`: its values are suggestions in Rundeck; ordo has no suggestions: not kept as allowed values ({})", values.join(", ")));
            }
        }
        if text(o, "valuesUrl").is_some() {
            notes.push(format!("option `{oname}`: valuesUrl: give `values_from: {{command: [curl, -sf, URL]}}` with a list of one value a line"));
        }
        if text(o, "type").is_some_and(|t| t == "file") {
            notes.push(format!(
                "option `{oname}`: file options have no ordo equivalent: imported as a string"
            ));
        }
        y.push_str(&format!("  {}: {{ {} }}\n", q(&safe(&oname)), f.join(", ")));
    }
    let seq = get(j, "sequence");
    if seq.is_some_and(|s| text(s, "keepgoing").is_some_and(|v| v == "true")) {
        y.push_str("on_failure: continue\n");
    }
    // `retry: 2`, or `retry: {retry: 2, delay: 30s}`.
    let retry = match get(j, "retry") {
        Some(r) if matches!(r.kind, Kind::Map(_)) => {
            if let Some(delay) = text(r, "delay") {
                notes.push(format!(
                    "retry delay `{delay}`: ordo retries a step at once: left out"
                ));
            }
            text(r, "retry")
        }
        _ => text(j, "retry"),
    };
    let retry = retry
        .map(|r| number("retry", &r))
        .transpose()?
        .filter(|r| *r > 0);
    y.push_str("steps:\n");
    let mut steps = 0;
    for (i, c) in items(seq.and_then(|s| get(s, "commands")))
        .into_iter()
        .enumerate()
    {
        let mut s = Vec::new();
        if let Some(dsc) = text(c, "description") {
            s.push(format!("name: {}", q(&dsc)));
        }
        if let Some(e) = text(c, "exec") {
            s.push(format!("command: {}", q(&e)));
        } else if let Some(sc) = text(c, "script") {
            s.push(format!("script: {}", q(&sc)));
        } else if let Some(sf) = text(c, "scriptfile") {
            notes.push(format!(
                "step {}: script file {sf} is read on the controller at run time: copy it there",
                i + 1
            ));
            s.push(format!("script_file: {}", q(&sf)));
        } else if let Some(r) = get(c, "jobref") {
            let jn = text(r, "name").unwrap_or_default();
            let jg = text(r, "group").unwrap_or_default();
            let target = job_name(&jg, &jn).map_err(|e| format!("step {}: {e}", i + 1))?;
            s.push(format!("job: {}", q(&target)));
            if flag(r, "importOptions") {
                s.push("import_options: true".into());
            }
            if flag(r, "nodeStep") {
                notes.push(format!(
                    "step {}: job {target} ran once per node in Rundeck (nodeStep); in ordo a job step runs once, on its own targets",
                    i + 1
                ));
            }
            if let Some(p) = text(r, "project") {
                notes.push(format!(
                    "step {}: job {target} is in Rundeck project `{p}`: import that project's jobs into this jobs folder",
                    i + 1
                ));
            }
            let args = jobref_args(&text(r, "args").unwrap_or_default(), &mut notes);
            if !args.is_empty() {
                s.push(format!(
                    "options: {{ {} }}",
                    args.iter()
                        .map(|(k, v)| format!("{}: {}", q(&safe(k)), q(v)))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        } else {
            notes.push(format!(
                "step {}: {} has no ordo equivalent: left out",
                i + 1,
                keys(c).join(", ")
            ));
            continue;
        }
        if let Some(a) = text(c, "args")
            && get(c, "jobref").is_none()
        {
            let words: Vec<String> = a.split_whitespace().map(q).collect();
            s.push(format!("args: [{}]", words.join(", ")));
        }
        if let Some(r) = retry {
            s.push(format!("retries: {r}"));
        }
        if get(c, "errorhandler").is_some() {
            notes.push(format!(
                "step {}: its error handler has no ordo equivalent: left out",
                i + 1
            ));
        }
        y.push_str(&format!("  - {{ {} }}\n", s.join(", ")));
        steps += 1;
    }
    if steps == 0 {
        notes.push("no step could be converted: a placeholder step `true` stands in".into());
        y.push_str("  - { command: \"true\" }\n");
    }
    if let Some(cron) = get(j, "schedule").and_then(schedule) {
        let on = text(j, "scheduleEnabled").is_none_or(|v| v != "false");
        y.push_str(&format!(
            "schedule: {{ cron: {}, syntax: quartz, enabled: {on} }}\n",
            q(&cron)
        ));
    }
    let mut notify = Vec::new();
    if let Some(n) = get(j, "notification") {
        for (rd, on) in [
            ("onsuccess", "success"),
            ("onfailure", "failure"),
            ("onstart", "start"),
        ] {
            let Some(e) = get(n, rd) else { continue };
            if let Some(to) = get(e, "email").and_then(|m| text(m, "recipients")) {
                let to: Vec<String> = to.split(',').map(|t| q(t.trim())).collect();
                let attach = get(e, "email").is_some_and(|m| flag(m, "attachLog"));
                notify.push(format!(
                    "  - {{ on: {on}, mail: {{ to: [{}], attach_log: {attach} }} }}",
                    to.join(", ")
                ));
            }
            if let Some(urls) = text(e, "urls") {
                for u in urls.split(',') {
                    notify.push(format!("  - {{ on: {on}, webhook: {} }}", q(u.trim())));
                }
            }
            for k in keys(e) {
                if k != "email" && k != "urls" {
                    notes.push(format!(
                        "notification {rd}: `{k}` has no ordo equivalent: left out"
                    ));
                }
            }
        }
    }
    if !notify.is_empty() {
        y.push_str("notify:\n");
        y.push_str(&notify.join("\n"));
        y.push('\n');
    }
    Ok(Imported {
        name: full,
        text: y,
        notes,
    })
}
