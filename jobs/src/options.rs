//! Checking the option values given for a run against the job's typed options.

use crate::model::{Job, OptionType, OptionValues};

/// One problem with a value given for a run: the option it is about, and the whole
/// message (which names it too: `option `x`: ...`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct OptionError {
    pub option: String,
    pub message: String,
}

/// Every problem with the values given for a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OptionErrors(pub Vec<OptionError>);

impl OptionErrors {
    /// The messages, joined by `sep`.
    pub fn join(&self, sep: &str) -> String {
        self.0
            .iter()
            .map(|e| e.message.as_str())
            .collect::<Vec<_>>()
            .join(sep)
    }
}

impl std::fmt::Display for OptionErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.join("\n"))
    }
}

fn error(option: &str, message: String) -> OptionError {
    OptionError {
        option: option.to_string(),
        message,
    }
}

/// Validates `given` (`--opt k=v` pairs, in order) against the job's options and fills in
/// defaults. Every problem is returned, each naming the option.
pub fn resolve_options(
    job: &Job,
    given: &[(String, String)],
) -> Result<OptionValues, OptionErrors> {
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
            errors.push(error(
                k,
                format!(
                    "option `{k}`: job `{}` has no such option ({list})",
                    job.name
                ),
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
                errors.push(error(
                    &opt.name,
                    format!(
                        "option `{}` is required (give it with --opt {}=VALUE)",
                        opt.name, opt.name
                    ),
                ));
            }
            continue;
        };
        if let Err(e) = check_value(opt, &value) {
            errors.push(error(&opt.name, format!("option `{}`: {e}", opt.name)));
            continue;
        }
        if opt.secret {
            out.secrets.push(opt.name.clone());
            // Each value of a multi-valued secret may be printed on its own.
            if let Some(d) = opt.delimiter.as_deref().filter(|d| !d.is_empty()) {
                out.secret_parts
                    .extend(value.split(d).filter(|p| p.len() >= 3).map(str::to_string));
            }
        }
        out.values.insert(opt.name.clone(), value);
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(OptionErrors(errors))
    }
}

/// Checks one value against an option's type, allowed values and pattern.
pub fn check_value(opt: &crate::model::JobOption, value: &str) -> Result<(), String> {
    if value.is_empty() && opt.required {
        return Err("a value is required".to_string());
    }
    let allowed = option_values(opt)?;
    let opt = &crate::model::JobOption {
        allowed,
        values_from: None,
        ..opt.clone()
    };
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

/// The most values a file or a command may give, and the longest value.
const MAX_VALUES: usize = 1000;
const MAX_VALUE_LEN: usize = 500;
const MAX_SOURCE: u64 = 1024 * 1024;

/// The allowed values of an option: its `allowed` list, or what its `values_from` file or
/// command gives now (one value a line; blank lines and `#` comments skipped).
pub fn option_values(opt: &crate::model::JobOption) -> Result<Vec<String>, String> {
    use crate::model::ValuesFrom;
    let text = match &opt.values_from {
        None => return Ok(opt.allowed.clone()),
        Some(ValuesFrom::File(p)) => {
            let f = std::fs::File::open(p)
                .map_err(|e| format!("its values cannot be read from {}: {e}", p.display()))?;
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::Read::take(f, MAX_SOURCE), &mut text)
                .map_err(|e| format!("its values cannot be read from {}: {e}", p.display()))?;
            text
        }
        Some(ValuesFrom::Command { argv, timeout }) => run_for_values(argv, *timeout)?,
    };
    let values: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect();
    if values.len() > MAX_VALUES || values.iter().any(|v| v.len() > MAX_VALUE_LEN) {
        return Err(format!(
            "its values source gives more than {MAX_VALUES} values or one longer than {MAX_VALUE_LEN} characters"
        ));
    }
    Ok(values)
}

/// Runs `argv` (no shell), stdin closed, for at most `timeout`; its standard output.
fn run_for_values(argv: &[String], timeout: std::time::Duration) -> Result<String, String> {
    use std::process::{Command, Stdio};
    let shown = argv.join(" ");
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("its values command `{shown}` cannot start: {e}"))?;
    let mut out = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(
            &mut std::io::Read::take(&mut out, MAX_SOURCE),
            &mut text,
        );
        text
    });
    let started = std::time::Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if started.elapsed() < timeout => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "its values command `{shown}` did not answer within {}s",
                    timeout.as_secs()
                ));
            }
        }
    };
    let text = reader.join().unwrap_or_default();
    if !status.success() {
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut std::io::Read::take(&mut e, 4096), &mut err);
        }
        return Err(format!(
            "its values command `{shown}` failed ({status}): {}",
            err.lines().next().unwrap_or("")
        ));
    }
    Ok(text)
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
