//! `wait_for` steps: a file or a command's output, a pattern, how long to wait.

use ordo_inventory::yaml::Node;

use super::Cx;
use super::context::offset_pos;
use crate::model::{WaitFor, WaitFrom, WaitSource};
use crate::units::parse_duration;

const WAIT: &[&str] = &["file", "command", "pattern", "within", "from"];

/// Reads step `step`'s (1-based) `wait_for` section and records its named groups for the
/// steps after it.
pub(super) fn read_wait(n: &Node, step: usize, cx: &mut Cx<'_>) -> Option<WaitFor> {
    let what = format!("step {step}: wait_for");
    let f = n.fields(&what, WAIT, cx.d);
    let source = match (f.get("file"), f.get("command")) {
        (Some(file), None) => {
            let t = cx.template(file, &format!("{what}: file"))?;
            if !t.source().starts_with('/') && !t.source().starts_with("${") {
                cx.d.error(
                    file.pos,
                    format!("{what}: file `{}` must be an absolute path", t.source()),
                );
                return None;
            }
            WaitSource::File(t)
        }
        (None, Some(c)) => WaitSource::Command(cx.shell_template(c, &format!("{what}: command"))?),
        (Some(_), Some(c)) => {
            cx.d.error(c.pos, format!("{what}: give `file` or `command`, not both"));
            return None;
        }
        (None, None) => {
            cx.d.error(
                f.pos,
                format!(
                    "{what}: needs `file` (a log to follow) or `command` (whose output is read)"
                ),
            );
            return None;
        }
    };
    let from = match f.get("from") {
        Some(x) if matches!(source, WaitSource::Command(_)) => {
            cx.d.error(x.pos, format!("{what}: `from` goes with `file`"));
            return None;
        }
        Some(x) => match x.str(&format!("{what}: from"), cx.d)?.as_str() {
            "start" => WaitFrom::Start,
            "end" => WaitFrom::End,
            other => {
                cx.d.error(
                    x.pos,
                    format!("{what}: from `{other}` is not one of: start, end"),
                );
                return None;
            }
        },
        None => WaitFrom::End,
    };
    let pn = f.require("pattern", &what, cx.d)?;
    let pattern = cx.template(pn, &format!("{what}: pattern"))?;
    let probe = pattern.probe();
    let groups: Vec<String> = match regex::Regex::new(&probe) {
        Ok(re) => re.capture_names().flatten().map(str::to_string).collect(),
        Err(e) => {
            let text = e.to_string();
            let why = text
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or(&text)
                .trim()
                .trim_start_matches("error: ");
            cx.d.error(
                offset_pos(pn, pattern.source(), 0),
                format!(
                    "{what}: pattern `{}` is not a regular expression: {why}",
                    pattern.source()
                ),
            );
            return None;
        }
    };
    let wn = f.require("within", &what, cx.d)?;
    let within = cx.template(wn, &format!("{what}: within"))?;
    if within.vars().next().is_none()
        && let Err(e) = parse_duration(within.source())
    {
        cx.d.error(wn.pos, format!("{what}: within: {e}"));
        return None;
    }
    cx.waits.push((step, groups.clone(), false));
    Some(WaitFor {
        source,
        pattern,
        groups,
        within,
        from,
    })
}
