//! Checking the option values given for a run against the job's typed options.

use crate::model::{Job, OptionType, OptionValues};

/// Validates `given` (`--opt k=v` pairs, in order) against the job's options and fills in
/// defaults. Every problem is returned, each naming the option.
pub fn resolve_options(job: &Job, given: &[(String, String)]) -> Result<OptionValues, Vec<String>> {
    let mut errors = Vec::new();
    let mut out = OptionValues::default();
    for (k, _) in given {
        if !job.options.iter().any(|o| &o.name == k) {
            let known: Vec<&str> = job.options.iter().map(|o| o.name.as_str()).collect();
            let list = if known.is_empty() {
                "it has no options".to_string()
            } else {
                format!("its options are: {}", known.join(", "))
            };
            errors.push(format!(
                "option `{k}`: job `{}` has no such option ({list})",
                job.name
            ));
        }
    }
    for opt in &job.options {
        let value = given
            .iter()
            .rev()
            .find(|(k, _)| k == &opt.name)
            .map(|(_, v)| v.clone())
            .or_else(|| opt.default.clone());
        let Some(value) = value else {
            if opt.required {
                errors.push(format!(
                    "option `{}` is required (give it with --opt {}=VALUE)",
                    opt.name, opt.name
                ));
            }
            continue;
        };
        if let Err(e) = check_value(opt, &value) {
            errors.push(format!("option `{}`: {e}", opt.name));
            continue;
        }
        if opt.secret {
            out.secrets.push(opt.name.clone());
        }
        out.values.insert(opt.name.clone(), value);
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// Checks one value against an option's type, allowed values and pattern.
pub fn check_value(opt: &crate::model::JobOption, value: &str) -> Result<(), String> {
    let shown = if opt.secret { "(secret)" } else { value };
    match opt.kind {
        OptionType::Integer if value.trim().parse::<i64>().is_err() => {
            return Err(format!("`{shown}` is not an integer"));
        }
        OptionType::Boolean if !matches!(value, "true" | "false") => {
            return Err(format!("`{shown}` is not a boolean (true or false)"));
        }
        _ => {}
    }
    if value.is_empty() && opt.required {
        return Err("a value is required".to_string());
    }
    if !opt.allowed.is_empty() && !opt.allowed.iter().any(|a| a == value) {
        return Err(format!(
            "`{shown}` is not one of the allowed values: {}",
            opt.allowed.join(", ")
        ));
    }
    if let Some(re) = &opt.regex
        && !re.is_match(value)
    {
        return Err(format!(
            "`{shown}` does not match the pattern `{}`",
            re.as_str()
        ));
    }
    Ok(())
}
