//! Shell text's template variables as environment variables.

use super::Var;

/// Environment variables for the values of a shell text's template variables: one per
/// variable, named after it (`${option.env}` is `ORDO_OPTION_ENV`), unique by value.
#[derive(Debug, Clone, Default)]
pub struct ShellVars {
    vars: Vec<(String, String)>,
}

impl ShellVars {
    /// Starts from variables the step has anyway (a template variable whose name and
    /// value are already there reuses it).
    pub fn new(existing: Vec<(String, String)>) -> Self {
        ShellVars { vars: existing }
    }

    /// The name that holds `value` for `var`: its own name, or that name with a number
    /// when another value already has it.
    pub(super) fn name_for(&mut self, var: &Var, value: &str) -> String {
        let base = var.env_name();
        let mut name = base.clone();
        let mut n = 1;
        loop {
            match self.vars.iter().find(|(k, _)| *k == name) {
                Some((_, v)) if v == value => return name,
                Some(_) => {
                    n += 1;
                    name = format!("{base}_{n}");
                }
                None => {
                    self.vars.push((name.clone(), value.to_string()));
                    return name;
                }
            }
        }
    }

    pub fn into_vars(self) -> Vec<(String, String)> {
        self.vars
    }
}

/// `my-opt.x` becomes `MY_OPT_X`: a name the shell accepts.
pub fn env_name(k: &str) -> String {
    k.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}
