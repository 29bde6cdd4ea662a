//! ordo's inventory: the servers a job can run on, their groups, tags and attributes, and
//! the filter expressions that select them.
//!
//! Pure domain code: text in, validated values out, every error with file, line and column.

mod ansible;
mod filter;
mod model;
mod ordo_yaml;
pub mod yaml;

use std::path::{Path, PathBuf};

pub use filter::{FilterError, NodeFilter};
pub use model::{Inventory, Node, Transport, folder_name_of};
pub use yaml::{Diagnostic, Diagnostics, Pos};

/// Why an inventory could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("cannot read inventory {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(Diagnostics),
}

/// The formats an inventory file may be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// ordo's own YAML (`servers:` at the top).
    Ordo,
    /// An Ansible inventory in INI form.
    AnsibleIni,
    /// An Ansible inventory in YAML form (`all:` with `hosts` / `children`).
    AnsibleYaml,
}

/// The largest configuration file ordo reads (inventory, job, profile, `ordo.yaml`).
pub const MAX_CONFIG_FILE: u64 = 8 * 1024 * 1024;

/// Reads a file ordo was given: a regular file (a link to one is fine; a device, a FIFO
/// or a folder is refused by name before it is opened), at most `max` bytes.
pub fn read_bounded(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        let ft = meta.file_type();
        let what = if ft.is_dir() {
            "a folder"
        } else if std::os::unix::fs::FileTypeExt::is_fifo(&ft) {
            "a FIFO"
        } else if std::os::unix::fs::FileTypeExt::is_char_device(&ft)
            || std::os::unix::fs::FileTypeExt::is_block_device(&ft)
        {
            "a device"
        } else {
            "not a regular file"
        };
        return Err(std::io::Error::other(format!(
            "{what}: only regular files are read"
        )));
    }
    let too_big = || std::io::Error::other(format!("larger than {max} bytes: refused"));
    if meta.len() > max {
        return Err(too_big());
    }
    // Opened without blocking (a FIFO swapped in after the check above would otherwise
    // wait for a writer for ever), then checked again on the open file itself.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other(
            "not a regular file: only regular files are read",
        ));
    }
    let mut data = Vec::new();
    file.take(max + 1).read_to_end(&mut data)?;
    if data.len() as u64 > max {
        return Err(too_big());
    }
    Ok(data)
}

/// [`read_bounded`] for UTF-8 text, at most [`MAX_CONFIG_FILE`] bytes.
pub fn read_config(path: &Path) -> std::io::Result<String> {
    String::from_utf8(read_bounded(path, MAX_CONFIG_FILE)?)
        .map_err(|_| std::io::Error::other("not UTF-8 text"))
}

/// Reads an inventory file, detecting its format from its content.
pub fn load(path: &Path) -> Result<Inventory, InventoryError> {
    let text = read_config(path).map_err(|source| InventoryError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text, path).map_err(InventoryError::Invalid)
}

/// Parses inventory text; `path` is only used in messages.
pub fn parse(text: &str, path: &Path) -> Result<Inventory, Diagnostics> {
    let mut d = Diagnostics::new(path);
    let inv = match detect(text, path) {
        Format::AnsibleIni => Some(ansible::parse_ini(text, &mut d)),
        Format::AnsibleYaml | Format::Ordo => yaml::parse(text, &mut d).map(|root| {
            if detect_yaml(&root) == Format::Ordo {
                ordo_yaml::read(&root, &mut d)
            } else {
                ansible::read_yaml(&root, &mut d)
            }
        }),
    };
    if let Some(inv) = &inv {
        inv.check(&mut d);
    }
    d.sort();
    match inv {
        Some(inv) if d.is_empty() => Ok(inv),
        _ => Err(d),
    }
}

/// INI if the extension says so or the first meaningful line is a `[section]` or a bare
/// host line; YAML otherwise.
pub fn detect(text: &str, path: &Path) -> Format {
    match path.extension().and_then(|e| e.to_str()) {
        Some("ini" | "cfg") => return Format::AnsibleIni,
        Some("yaml" | "yml" | "json") => return Format::Ordo,
        _ => {}
    }
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';') && l != &"---");
    match first {
        Some(l) if l.starts_with('[') && l.ends_with(']') => Format::AnsibleIni,
        Some(l) if !l.contains(':') || l.contains('=') => Format::AnsibleIni,
        _ => Format::Ordo,
    }
}

fn detect_yaml(root: &yaml::Node) -> Format {
    if let yaml::Kind::Map(pairs) = &root.kind {
        let keys: Vec<&str> = pairs
            .iter()
            .filter_map(|(k, _)| match &k.kind {
                yaml::Kind::Scalar { text, .. } => Some(text.as_str()),
                _ => None,
            })
            .collect();
        if keys.contains(&"servers") || keys.contains(&"defaults") || keys.is_empty() {
            return Format::Ordo;
        }
        return Format::AnsibleYaml;
    }
    Format::Ordo
}
