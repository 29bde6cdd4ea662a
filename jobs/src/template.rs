//! `${...}` templates in steps, args, collect globs, environment and mail fields.
//!
//! Variables: `${option.NAME}`, `${node.name}`, `${node.host}`, `${node.port}`,
//! `${node.user}`, `${node.attr.KEY}`, `${job.name}`, `${execution.id}`,
//! `${execution.status}` (mail only), `${step.N.match}` and `${step.N.match.NAME}` (the
//! line a `wait_for` step matched and its named groups). `$${` writes a literal `${`.
//!
//! In shell text (`command:`, `script:`) a value is data, never code: [`Template::
//! expand_shell`] writes each variable as a reference to an environment variable holding
//! its value, quoted for where it stands (see [`crate::shell_text`]).

use std::collections::BTreeMap;
use std::fmt;

use crate::shell_text::ShellLexer;

mod shell_vars;
pub use shell_vars::{ShellVars, env_name};

/// A variable a template refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Var {
    Option(String),
    NodeName,
    NodeHost,
    NodePort,
    NodeUser,
    NodeAttr(String),
    JobName,
    ExecutionId,
    ExecutionStatus,
    /// The line `wait_for` step `step` (1-based) matched, or one of its named groups.
    StepMatch {
        step: usize,
        group: Option<String>,
    },
}

impl Var {
    /// The key of a step match in [`Context::step_matches`]: `1` or `1.ip`.
    pub fn match_key(step: usize, group: Option<&str>) -> String {
        match group {
            Some(g) => format!("{step}.{g}"),
            None => step.to_string(),
        }
    }
}

impl fmt::Display for Var {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Var::Option(n) => write!(f, "option.{n}"),
            Var::NodeName => f.write_str("node.name"),
            Var::NodeHost => f.write_str("node.host"),
            Var::NodePort => f.write_str("node.port"),
            Var::NodeUser => f.write_str("node.user"),
            Var::NodeAttr(k) => write!(f, "node.attr.{k}"),
            Var::JobName => f.write_str("job.name"),
            Var::ExecutionId => f.write_str("execution.id"),
            Var::ExecutionStatus => f.write_str("execution.status"),
            Var::StepMatch { step, group: None } => write!(f, "step.{step}.match"),
            Var::StepMatch {
                step,
                group: Some(g),
            } => write!(f, "step.{step}.match.{g}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Lit(String),
    Var(Var),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

/// A template error with the 0-based character offset where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub offset: usize,
    pub message: String,
}

/// The values a template is expanded with.
#[derive(Debug, Clone, Default)]
pub struct Context<'a> {
    pub options: Option<&'a BTreeMap<String, String>>,
    pub node_name: Option<&'a str>,
    pub node_host: Option<&'a str>,
    pub node_port: Option<u16>,
    pub node_user: Option<&'a str>,
    pub node_attrs: Option<&'a BTreeMap<String, String>>,
    pub job_name: Option<&'a str>,
    pub execution_id: Option<&'a str>,
    pub execution_status: Option<&'a str>,
    /// What the server's `wait_for` steps matched so far (keys from [`Var::match_key`]);
    /// a step that matched nothing (yet) reads as empty.
    pub step_matches: Option<&'a BTreeMap<String, String>>,
}

impl<'a> Context<'a> {
    /// An execution's values: its options, job, ID and (once known) status.
    pub fn execution(
        options: &'a BTreeMap<String, String>,
        job_name: &'a str,
        execution_id: &'a str,
        execution_status: Option<&'a str>,
    ) -> Self {
        Context {
            options: Some(options),
            job_name: Some(job_name),
            execution_id: Some(execution_id),
            execution_status,
            ..Context::default()
        }
    }

    /// The same, on one server: adds `${node.*}`.
    pub fn on_node(self, node: &'a ordo_inventory::Node) -> Self {
        Context {
            node_name: Some(&node.name),
            node_host: Some(&node.host),
            node_port: node.port,
            node_user: node.user.as_deref(),
            node_attrs: Some(&node.attributes),
            ..self
        }
    }
}

const SCOPES: [&str; 5] = ["option.", "node.", "job.", "execution.", "step."];

impl Template {
    /// Parses a template where every `${...}` must be one of ours.
    pub fn parse(source: &str) -> Result<Self, TemplateError> {
        Self::parse_with(source, false)
    }

    /// For shell text (scripts, commands): `${...}` outside our scopes (`${HOME}`,
    /// `${1:-x}`) is left to the shell.
    pub fn parse_shell(source: &str) -> Result<Self, TemplateError> {
        Self::parse_with(source, true)
    }

    fn parse_with(source: &str, shell: bool) -> Result<Self, TemplateError> {
        let chars: Vec<char> = source.chars().collect();
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut i = 0;
        while i < chars.len() {
            if chars[i] == '$' && chars.get(i + 1) == Some(&'$') && chars.get(i + 2) == Some(&'{') {
                lit.push_str("${");
                i += 3;
                continue;
            }
            if chars[i] == '$' && chars.get(i + 1) == Some(&'{') {
                let start = i;
                let Some(len) = chars[i + 2..].iter().position(|c| *c == '}') else {
                    return Err(TemplateError {
                        offset: start,
                        message: "unclosed `${`".into(),
                    });
                };
                let name: String = chars[i + 2..i + 2 + len].iter().collect();
                if shell && !SCOPES.iter().any(|sc| name.trim().starts_with(sc)) {
                    lit.push_str("${");
                    i += 2;
                    continue;
                }
                let var = parse_var(name.trim()).map_err(|message| TemplateError {
                    offset: start,
                    message,
                })?;
                if !lit.is_empty() {
                    parts.push(Part::Lit(std::mem::take(&mut lit)));
                }
                parts.push(Part::Var(var));
                i += len + 3;
                continue;
            }
            lit.push(chars[i]);
            i += 1;
        }
        if !lit.is_empty() {
            parts.push(Part::Lit(lit));
        }
        Ok(Template {
            source: source.to_string(),
            parts,
        })
    }

    /// A template that is only this text (no variables).
    pub fn literal(text: &str) -> Self {
        Template {
            source: text.replace("${", "$${"),
            parts: vec![Part::Lit(text.to_string())],
        }
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn vars(&self) -> impl Iterator<Item = &Var> {
        self.parts.iter().filter_map(|p| match p {
            Part::Var(v) => Some(v),
            Part::Lit(_) => None,
        })
    }

    /// Expands the template; a variable without a value is an error naming it.
    pub fn expand(&self, cx: &Context<'_>) -> Result<String, String> {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Lit(s) => out.push_str(s),
                Part::Var(v) => out.push_str(&value(v, cx)?),
            }
        }
        Ok(out)
    }

    /// Expands a regular expression: each variable's value is matched literally (its
    /// `.`, `*` or `(` are escaped), never read as pattern syntax.
    pub fn expand_regex(&self, cx: &Context<'_>) -> Result<String, String> {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Lit(s) => out.push_str(s),
                Part::Var(v) => out.push_str(&regex::escape(&value(v, cx)?)),
            }
        }
        Ok(out)
    }

    /// The text with every variable replaced by `x`: a stand-in to check the syntax of
    /// what the template expands to (a pattern) before any value is known.
    pub fn probe(&self) -> String {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Lit(s) => s.as_str(),
                Part::Var(_) => "x",
            })
            .collect()
    }

    /// Expands shell text: each variable becomes a reference to an environment variable
    /// (added to `vars`) that holds its value, quoted for where it stands, so the shell
    /// reads the value as one piece of data whatever it holds. Where no reference is safe
    /// (arithmetic, backticks, a quoted here-document, after a backslash) or where the
    /// script's quoting cannot be followed to its end, the template is refused.
    pub fn expand_shell(&self, cx: &Context<'_>, vars: &mut ShellVars) -> Result<String, String> {
        let mut out = String::new();
        let mut lexer = ShellLexer::new();
        let mut any = false;
        for p in &self.parts {
            match p {
                Part::Lit(s) => {
                    out.push_str(s);
                    lexer.feed(s);
                }
                Part::Var(v) => {
                    let value = value(v, cx)?;
                    if value.contains('\0') {
                        return Err(format!("`${{{v}}}`: the value holds a NUL byte"));
                    }
                    let name = vars.name_for(v, &value);
                    let r = lexer
                        .context()
                        .reference(&name)
                        .map_err(|why| format!("`${{{v}}}` {why}"))?;
                    out.push_str(&r);
                    lexer.feed_word();
                    any = true;
                }
            }
        }
        // A script whose quoting the lexer could not follow to the end may have misled it
        // about where a template stood: refused rather than guessed.
        if any && !lexer.at_rest() {
            return Err(
                "the script's quotes, expansions or here-documents do not close where ordo can follow them: its templates are refused (read the ORDO_OPTION_... environment variables in the script instead)"
                    .to_string(),
            );
        }
        Ok(out)
    }
}

impl Var {
    /// The environment variable that holds this variable's value in a step.
    pub fn env_name(&self) -> String {
        match self {
            Var::Option(n) => format!("ORDO_OPTION_{}", env_name(n)),
            Var::NodeName => "ORDO_NODE_NAME".into(),
            Var::NodeHost => "ORDO_NODE_HOST".into(),
            Var::NodePort => "ORDO_NODE_PORT".into(),
            Var::NodeUser => "ORDO_NODE_USER".into(),
            Var::NodeAttr(k) => format!("ORDO_NODE_ATTR_{}", env_name(k)),
            Var::JobName => "ORDO_JOB".into(),
            Var::ExecutionId => "ORDO_EXECUTION_ID".into(),
            Var::ExecutionStatus => "ORDO_EXECUTION_STATUS".into(),
            Var::StepMatch { step, group: None } => format!("ORDO_STEP_{step}_MATCH"),
            Var::StepMatch {
                step,
                group: Some(g),
            } => format!("ORDO_STEP_{step}_MATCH_{}", env_name(g)),
        }
    }
}

/// The value of `v`, or an error naming it.
fn value(v: &Var, cx: &Context<'_>) -> Result<String, String> {
    lookup(v, cx).ok_or_else(|| match v {
        Var::NodeAttr(k) => format!("`${{{v}}}`: the server has no attribute `{k}`"),
        _ => format!("`${{{v}}}` has no value here"),
    })
}

fn lookup(v: &Var, cx: &Context<'_>) -> Option<String> {
    match v {
        Var::Option(n) => cx.options?.get(n).cloned(),
        Var::NodeName => cx.node_name.map(str::to_string),
        Var::NodeHost => cx.node_host.map(str::to_string),
        Var::NodePort => cx.node_port.map(|p| p.to_string()),
        Var::NodeUser => cx.node_user.map(str::to_string),
        Var::NodeAttr(k) => cx.node_attrs?.get(k).cloned(),
        Var::JobName => cx.job_name.map(str::to_string),
        Var::ExecutionId => cx.execution_id.map(str::to_string),
        Var::ExecutionStatus => cx.execution_status.map(str::to_string),
        Var::StepMatch { step, group } => cx.step_matches.map(|m| {
            m.get(&Var::match_key(*step, group.as_deref()))
                .cloned()
                .unwrap_or_default()
        }),
    }
}

fn parse_var(name: &str) -> Result<Var, String> {
    let bad = || {
        format!(
            "unknown variable `${{{name}}}` (expected option.NAME, node.name, node.host, node.port, node.user, node.attr.KEY, job.name, execution.id, execution.status, step.N.match or step.N.match.NAME)"
        )
    };
    let (scope, rest) = name.split_once('.').ok_or_else(bad)?;
    let ok_ident = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    Ok(match (scope, rest) {
        ("option", n) if ok_ident(n) => Var::Option(n.to_string()),
        ("node", "name") => Var::NodeName,
        ("node", "host") => Var::NodeHost,
        ("node", "port") => Var::NodePort,
        ("node", "user") => Var::NodeUser,
        ("node", attr) => match attr.split_once('.') {
            Some(("attr" | "attributes", k)) if !k.is_empty() => Var::NodeAttr(k.to_string()),
            _ => return Err(bad()),
        },
        ("job", "name") => Var::JobName,
        ("execution", "id") => Var::ExecutionId,
        ("execution", "status") => Var::ExecutionStatus,
        ("step", rest) => {
            let mut it = rest.splitn(3, '.');
            let step = it
                .next()
                .and_then(|n| n.parse::<usize>().ok())
                .filter(|n| *n > 0);
            match (step, it.next(), it.next()) {
                (Some(step), Some("match"), None) => Var::StepMatch { step, group: None },
                (Some(step), Some("match"), Some(g)) if ok_ident(g) => Var::StepMatch {
                    step,
                    group: Some(g.to_string()),
                },
                _ => return Err(bad()),
            }
        }
        _ => return Err(bad()),
    })
}

#[cfg(test)]
mod tests;
