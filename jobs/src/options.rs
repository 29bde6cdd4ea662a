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
    if value.is_empty() && opt.required {
        return Err("a value is required".to_string());
    }
    match &opt.delimiter {
        // Each value of a multi-valued option on its own (an empty one is refused).
        Some(d) if !value.is_empty() => value.split(d.as_str()).try_for_each(|one| {
            if one.is_empty() {
                Err(format!("an empty value between two `{d}`"))
            } else {
                check_one(opt, one)
            }
        }),
        _ => check_one(opt, value),
    }
}

/// A plausible mail address: one `@`, a local part, a domain with a dot, no spaces.
fn is_email(v: &str) -> bool {
    v.len() <= 254
        && !v.chars().any(|c| c.is_whitespace() || c.is_control())
        && v.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        })
}

fn check_one(opt: &crate::model::JobOption, value: &str) -> Result<(), String> {
    let shown = if opt.secret { "(secret)" } else { value };
    let empty_ok = value.is_empty() && !opt.required;
    match opt.kind {
        OptionType::Integer if !empty_ok => {
            let n: i64 = value
                .trim()
                .parse()
                .map_err(|_| format!("`{shown}` is not an integer"))?;
            if let Some(lo) = opt.min
                && n < lo
            {
                return Err(format!("`{shown}` is below the minimum {lo}"));
            }
            if let Some(hi) = opt.max
                && n > hi
            {
                return Err(format!("`{shown}` is above the maximum {hi}"));
            }
        }
        OptionType::Boolean if !empty_ok && !matches!(value, "true" | "false") => {
            return Err(format!("`{shown}` is not a boolean (true or false)"));
        }
        OptionType::Ip if !empty_ok && value.parse::<std::net::IpAddr>().is_err() => {
            return Err(format!("`{shown}` is not an IPv4 or IPv6 address"));
        }
        OptionType::Duration if !empty_ok && crate::units::parse_duration(value).is_err() => {
            return Err(format!("`{shown}` is not a duration (e.g. 90s, 5m, 1h30m)"));
        }
        OptionType::Email if !empty_ok && !is_email(value) => {
            return Err(format!("`{shown}` is not a mail address"));
        }
        OptionType::Date
            if !empty_ok && chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d").is_err() =>
        {
            return Err(format!("`{shown}` is not a date (YYYY-MM-DD)"));
        }
        _ => {}
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
