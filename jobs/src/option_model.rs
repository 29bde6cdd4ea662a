//! A job's options as declared: their types, bounds, allowed values and where those
//! values come from.

use ordo_inventory::yaml::Pos;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionType {
    String,
    Integer,
    Boolean,
    /// An IPv4 or IPv6 address.
    Ip,
    /// `90s`, `5m`, `1h30m`...
    Duration,
    Email,
    /// `YYYY-MM-DD`.
    Date,
}

impl OptionType {
    pub fn as_str(self) -> &'static str {
        match self {
            OptionType::String => "string",
            OptionType::Integer => "integer",
            OptionType::Boolean => "boolean",
            OptionType::Ip => "ip",
            OptionType::Duration => "duration",
            OptionType::Email => "email",
            OptionType::Date => "date",
        }
    }
}

/// A typed job parameter.
#[derive(Debug, Clone)]
pub struct JobOption {
    pub name: String,
    pub description: String,
    pub kind: OptionType,
    pub default: Option<String>,
    pub required: bool,
    pub allowed: Vec<String>,
    pub regex: Option<regex::Regex>,
    pub secret: bool,
    /// Bounds of an integer option.
    pub min: Option<i64>,
    pub max: Option<i64>,
    /// Several values in one, separated by this (each checked on its own).
    pub delimiter: Option<String>,
    /// Where the allowed values are read at each use (Rundeck's remote option values).
    pub values_from: Option<ValuesFrom>,
    pub pos: Pos,
}

/// A list of allowed values kept outside the job: a file (one value a line) or a
/// command's output (one value a line), read on the controller each time it is needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValuesFrom {
    File(std::path::PathBuf),
    Command {
        argv: Vec<String>,
        timeout: std::time::Duration,
    },
}
