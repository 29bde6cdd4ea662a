//! What every section reader shares: the diagnostics, the job's declared options, and the
//! readers that check values against them (templates and their variables, durations,
//! sizes).

use std::time::Duration;

use ordo_inventory::yaml::{Diagnostics, Kind, Node, Pos};

use crate::template::{Template, Var};
use crate::units::{parse_duration, parse_size};

/// Which variables a template may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scope {
    /// Expanded for each server: node variables are known.
    Server,
    /// Expanded once for the whole run, while it goes (job steps).
    Run,
    /// Expanded once the run ended: `${execution.status}` is known (mail, follow-ups).
    RunEnd,
}

pub(super) struct Cx<'a> {
    pub(super) d: &'a mut Diagnostics,
    pub(super) options: Vec<String>,
    /// The `wait_for` steps read so far: their number, their pattern's named groups, and
    /// whether a job step came after them (their matches do not cross it).
    pub(super) waits: Vec<(usize, Vec<String>, bool)>,
}

impl Cx<'_> {
    /// Parses a template and checks that every `${option.x}` names a declared option.
    pub(super) fn template(&mut self, n: &Node, what: &str) -> Option<Template> {
        let scope = if what.starts_with("mail") {
            Scope::RunEnd
        } else {
            Scope::Server
        };
        self.template_with(n, what, false, scope)
    }

    pub(super) fn shell_template(&mut self, n: &Node, what: &str) -> Option<Template> {
        self.template_with(n, what, true, Scope::Server)
    }

    pub(super) fn template_with(
        &mut self,
        n: &Node,
        what: &str,
        shell: bool,
        scope: Scope,
    ) -> Option<Template> {
        let text = n.str(what, self.d)?;
        let parsed = if shell {
            Template::parse_shell(&text)
        } else {
            Template::parse(&text)
        };
        match parsed {
            Ok(t) => {
                for v in t.vars() {
                    match v {
                        Var::Option(o) if !self.options.contains(o) => {
                            let p = offset_pos(
                                n,
                                &text,
                                t.source()
                                    .find(&format!("option.{o}"))
                                    .map_or(0, |i| i.saturating_sub(2)),
                            );
                            self.d.error(
                                p,
                                format!("{what}: `${{option.{o}}}` refers to an undeclared option"),
                            );
                        }
                        Var::NodeName
                        | Var::NodeHost
                        | Var::NodePort
                        | Var::NodeUser
                        | Var::NodeAttr(_)
                            if scope != Scope::Server =>
                        {
                            self.d.error(n.pos, format!("{what}: `${{{v}}}` is not known here: this covers every server at once"));
                        }
                        Var::StepMatch { .. } if scope != Scope::Server => {
                            self.d.error(n.pos, format!("{what}: `${{{v}}}` is known only on each server, in the steps after the `wait_for` step"));
                        }
                        Var::StepMatch { step, group } => {
                            if let Some(why) = self.step_match_error(*step, group.as_deref()) {
                                self.d.error(n.pos, format!("{what}: `${{{v}}}`: {why}"));
                            }
                        }
                        Var::ExecutionStatus if scope != Scope::RunEnd => {
                            self.d.error(
                                n.pos,
                                format!(
                                    "{what}: `${{execution.status}}` is only known once the run ended (mail fields, follow-up jobs)"
                                ),
                            );
                        }
                        _ => {}
                    }
                }
                Some(t)
            }
            Err(e) => {
                self.d.error(
                    offset_pos(n, &text, e.offset),
                    format!("{what}: {}", e.message),
                );
                None
            }
        }
    }

    /// Why `${step.N.match[.group]}` cannot be read here, if it cannot.
    fn step_match_error(&self, step: usize, group: Option<&str>) -> Option<String> {
        let Some((_, groups, crossed)) = self.waits.iter().find(|(n, _, _)| *n == step) else {
            return Some(format!(
                "step {step} is not a `wait_for` step before this one"
            ));
        };
        if *crossed {
            return Some(format!(
                "a job step lies between step {step} and here, and a match does not cross it"
            ));
        }
        match group {
            Some(g) if !groups.iter().any(|x| x == g) => Some(format!(
                "step {step}'s pattern has no group named `{g}` (write it `(?P<{g}>...)`)"
            )),
            _ => None,
        }
    }

    pub(super) fn duration(&mut self, n: &Node, what: &str) -> Option<Duration> {
        let text = n.str(what, self.d)?;
        parse_duration(&text)
            .map_err(|e| self.d.error(n.pos, format!("{what}: {e}")))
            .ok()
    }

    pub(super) fn size(&mut self, n: &Node, what: &str) -> Option<u64> {
        let text = n.str(what, self.d)?;
        parse_size(&text)
            .map_err(|e| self.d.error(n.pos, format!("{what}: {e}")))
            .ok()
    }
}

/// The position of a character inside a plain one-line scalar; the scalar's own position
/// otherwise (quotes and block scalars shift columns in ways not worth guessing).
pub(super) fn offset_pos(n: &Node, text: &str, offset: usize) -> Pos {
    match &n.kind {
        Kind::Scalar { plain: true, .. } if !text.contains('\n') => {
            Pos::new(n.pos.line, n.pos.column + offset)
        }
        Kind::Scalar { plain: false, .. } if !text.contains('\n') => {
            Pos::new(n.pos.line, n.pos.column + 1 + offset)
        }
        _ => n.pos,
    }
}
