//! `controller check`: every configuration error at once.

use super::{BadInput, Cli, EXIT_BAD_INPUT, EXIT_OK};

pub fn run(cli: &Cli) -> anyhow::Result<i32> {
    let mut problems: Vec<String> = Vec::new();
    let cfg = match super::config(cli) {
        Ok(c) => c,
        Err(BadInput(e)) => {
            eprintln!("{e}");
            return Ok(EXIT_BAD_INPUT);
        }
    };
    let servers = match super::inventory(&cfg) {
        Ok(inv) => inv.nodes.len(),
        Err(BadInput(e)) => {
            problems.push(e);
            0
        }
    };
    let mut jobs = 0;
    match ordo_jobs::job_files(&cfg.jobs) {
        Ok(files) => {
            for (name, path) in files {
                jobs += 1;
                let text = match std::fs::read_to_string(&path) {
                    Ok(t) => t,
                    Err(e) => {
                        problems.push(format!("{}: {e}", path.display()));
                        continue;
                    }
                };
                if let Err(d) = ordo_jobs::parse_job(&text, &path, &name) {
                    problems.push(d.to_string());
                }
            }
        }
        Err(e) => problems.push(e.to_string()),
    }
    if problems.is_empty() {
        say!(
            "ok: {} ({servers} servers), {jobs} jobs in {}",
            cfg.inventory.display(),
            cfg.jobs.display()
        );
        Ok(EXIT_OK)
    } else {
        let count: usize = problems.iter().map(|p| p.lines().count()).sum();
        for p in &problems {
            eprintln!("{p}");
        }
        eprintln!("{count} error(s)");
        Ok(EXIT_BAD_INPUT)
    }
}
