//! `controller import rundeck FILE`: Rundeck job definitions (YAML or XML export) into this
//! project's jobs folder, each job's notes printed, every written job checked.

use std::path::PathBuf;

use clap::Subcommand;

use super::{BadInput, Cli, EXIT_OK};

#[derive(Subcommand, Debug)]
pub enum ImportCmd {
    /// Rundeck jobs (a YAML or XML export: `rd jobs list --format yaml`, or the GUI's) into
    /// jobs/<group>/<name>.yaml; what has no ordo equivalent is listed per job.
    Rundeck {
        file: PathBuf,
        /// Replace job files that already exist.
        #[arg(long)]
        force: bool,
    },
    /// A Rundeck node source (resources.yaml) into an ordo inventory file.
    RundeckNodes {
        file: PathBuf,
        /// The inventory to write (default: the project's inventory file).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Replace it if it exists.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum ExportCmd {
    /// Jobs as a Rundeck YAML job export (for `rd jobs load` or the GUI's import), on
    /// standard output or in --out; what Rundeck has no place for is listed on stderr.
    Rundeck {
        /// Only these jobs (default: every job).
        #[arg(long = "job")]
        jobs: Vec<String>,
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

pub fn export(cli: &Cli, cmd: &ExportCmd) -> anyhow::Result<i32> {
    let ExportCmd::Rundeck { jobs, out } = cmd;
    let cfg = super::config(cli)?;
    let set = crate::project::jobset(&cfg)?;
    let mut chosen = Vec::new();
    for name in jobs {
        chosen.push(
            set.get(name)
                .ok_or_else(|| BadInput(format!("--job {name}: no such job")))?
                .as_ref(),
        );
    }
    if jobs.is_empty() {
        chosen = set.jobs.values().map(|j| j.as_ref()).collect();
    }
    let (text, notes) = ordo_jobs::rundeck::export_yaml(&chosen);
    match out {
        Some(p) => std::fs::write(p, &text)?,
        None => say!("{text}"),
    }
    for n in &notes {
        eprintln!("note: {n}");
    }
    Ok(EXIT_OK)
}

/// `import rundeck-nodes`: the inventory written, then read back as `check` would.
fn nodes(
    cli: &Cli,
    file: &std::path::Path,
    out: Option<&PathBuf>,
    force: bool,
) -> anyhow::Result<i32> {
    let cfg = super::config(cli)?;
    let text = ordo_inventory::read_config(file)
        .map_err(|e| BadInput(format!("{}: {e}", file.display())))?;
    let (inventory, notes) =
        ordo_jobs::rundeck::import_nodes(&text, file).map_err(|d| BadInput(d.to_string()))?;
    let path = out.cloned().unwrap_or_else(|| cfg.inventory.clone());
    match std::fs::symlink_metadata(&path) {
        Ok(m) if m.file_type().is_symlink() => {
            return Err(
                BadInput(format!("{} is a link: nothing was written", path.display())).into(),
            );
        }
        Ok(_) if !force => {
            return Err(BadInput(format!(
                "{} exists: nothing was written (--force replaces it)",
                path.display()
            ))
            .into());
        }
        _ => {}
    }
    write_no_follow(&path, format!("{}{inventory}", header(file)).as_bytes())
        .map_err(|e| BadInput(format!("{}: {e}", path.display())))?;
    for n in &notes {
        say!("note: {n}");
    }
    let inv = ordo_inventory::load(&path).map_err(|e| BadInput(e.to_string()))?;
    say!(
        "{} server(s) written to {}",
        inv.nodes.len(),
        path.display()
    );
    Ok(EXIT_OK)
}

pub fn run(cli: &Cli, cmd: &ImportCmd) -> anyhow::Result<i32> {
    let (file, force) = match cmd {
        ImportCmd::Rundeck { file, force } => (file, force),
        ImportCmd::RundeckNodes { file, out, force } => {
            return nodes(cli, file, out.as_ref(), *force);
        }
    };
    let cfg = super::config(cli)?;
    let text = ordo_inventory::read_config(file)
        .map_err(|e| BadInput(format!("{}: {e}", file.display())))?;
    let xml = file.extension().is_some_and(|e| e == "xml") || text.trim_start().starts_with('<');
    let jobs = if xml {
        ordo_jobs::rundeck::import_xml(&text, file)
    } else {
        ordo_jobs::rundeck::import_yaml(&text, file)
    }
    .map_err(|d| BadInput(d.to_string()))?;
    // Every path is checked before anything is written.
    std::fs::create_dir_all(&cfg.jobs)?;
    let root = std::fs::canonicalize(&cfg.jobs)
        .map_err(|e| BadInput(format!("{}: {e}", cfg.jobs.display())))?;
    let mut written = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for j in &jobs {
        if !seen.insert(j.name.to_lowercase()) {
            return Err(BadInput(format!(
                "two jobs of the export become `{}` (names that differ only by characters ordo replaces, or by case): nothing was written",
                j.name
            ))
            .into());
        }
        let path = under_jobs(&root, &j.name)?;
        if std::fs::symlink_metadata(&path).is_ok() && !force {
            return Err(BadInput(format!(
                "{} exists: nothing was written (--force replaces it)",
                path.display()
            ))
            .into());
        }
        written.push((path, j));
    }
    for (path, j) in &written {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        // Checked again once its folders exist (a link made meanwhile is refused).
        under_jobs(&root, &j.name)?;
        write_no_follow(path, format!("{}{}", header(file), j.text).as_bytes())
            .map_err(|e| BadInput(format!("{}: {e}", path.display())))?;
        say!("{} -> {}", j.name, path.display());
        for n in &j.notes {
            say!("    note: {n}");
        }
    }
    // Every written job must load: a conversion ordo cannot read is a bug to report.
    let mut bad = Vec::new();
    for (_, j) in &written {
        if let Err(e) = crate::project::job(&cfg, &j.name) {
            bad.push(e.0);
        }
    }
    if !bad.is_empty() {
        return Err(BadInput(bad.join("\n")).into());
    }
    say!(
        "{} job(s) imported; run `controller check` to check them with the inventory",
        written.len()
    );
    Ok(EXIT_OK)
}

/// The file of job `name` under the jobs folder `root` (canonical): every segment a plain
/// name, no link on the way or at the end, the result inside `root`.
fn under_jobs(root: &std::path::Path, name: &str) -> Result<PathBuf, BadInput> {
    let outside = || {
        BadInput(format!(
            "job `{name}`: its file would be outside the jobs folder {}: nothing was written",
            root.display()
        ))
    };
    let rel = std::path::Path::new(name);
    if !rel
        .components()
        .all(|c| matches!(c, std::path::Component::Normal(_)))
    {
        return Err(outside());
    }
    let path = root.join(format!("{name}.yaml"));
    // The deepest folder that exists must be inside `root` once links are resolved.
    let mut dir = path.parent();
    while let Some(d) = dir {
        if d.exists() {
            let real = std::fs::canonicalize(d).map_err(|_| outside())?;
            if !real.starts_with(root) {
                return Err(outside());
            }
            break;
        }
        dir = d.parent();
    }
    if std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(BadInput(format!(
            "{} is a link: nothing was written",
            path.display()
        )));
    }
    Ok(path)
}

/// The first line of a written file: where it came from (the name escaped: a file name
/// with a new line would be YAML of its own).
fn header(file: &std::path::Path) -> String {
    format!(
        "# Imported from Rundeck ({}).\n",
        file.display().to_string().escape_debug()
    )
}

/// Writes `data` to `path`, never through a link (`O_NOFOLLOW`).
fn write_no_follow(path: &std::path::Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    f.write_all(data)
}
