//! `controller check`: every configuration error at once.

use super::{BadInput, Cli, EXIT_BAD_INPUT, EXIT_OK};
use crate::exec::{Launch, Plan};

pub async fn run(cli: &Cli) -> anyhow::Result<i32> {
    let mut problems: Vec<String> = Vec::new();
    let cfg = match super::config(cli) {
        Ok(c) => c,
        Err(BadInput(e)) => {
            eprintln!("{e}");
            return Ok(EXIT_BAD_INPUT);
        }
    };
    let inventory = match crate::project::inventory(&cfg) {
        Ok(inv) => Some(inv),
        Err(BadInput(e)) => {
            problems.push(e);
            None
        }
    };
    let servers = inventory.as_ref().map_or(0, |i| i.nodes.len());
    let mut jobs = 0;
    let mut set = ordo_jobs::JobSet::default();
    let mut names = Vec::new();
    match ordo_jobs::job_files(&cfg.jobs) {
        Ok(files) => {
            for (name, path) in files {
                jobs += 1;
                names.push(name.clone());
                let text = match ordo_inventory::read_config(&path) {
                    Ok(t) => t,
                    Err(e) => {
                        problems.push(format!("{}: {e}", path.display()));
                        continue;
                    }
                };
                match ordo_jobs::parse_job(&text, &path, &name) {
                    Ok(job) => {
                        set.jobs.insert(name, std::sync::Arc::new(job));
                    }
                    Err(d) => problems.push(d.to_string()),
                }
            }
        }
        Err(e) => problems.push(e.to_string()),
    }
    // Across jobs: unknown references and cycles (a reference to a job whose own file is
    // broken is already reported there).
    for mut d in ordo_jobs::check_references(&set) {
        d.items.retain(|i| {
            !names
                .iter()
                .any(|n| !set.jobs.contains_key(n) && i.message.starts_with(&format!("job `{n}` ")))
        });
        if !d.is_empty() {
            problems.push(d.to_string());
        }
    }
    let profiles = match crate::project::profiles(&cfg, &set) {
        Ok(p) => p,
        Err(BadInput(e)) => {
            problems.push(e);
            Default::default()
        }
    };
    // A job whose targets select no server cannot run: say so now, not at 6 a.m.
    if let Some(inv) = &inventory {
        for job in set.jobs.values() {
            if let Err(BadInput(e)) = Plan::new(inv, job.clone(), &Launch::default()) {
                problems.push(format!("{}: {e}", job.file.display()));
            }
        }
    }
    // Encrypted archives: every key exists and has not expired; what expires soon, or a
    // missing backup key, is a warning.
    if set.jobs.values().any(|j| !j.encrypt.is_empty())
        || profiles.values().any(|p| !p.encrypt.is_empty())
    {
        let (errors, warnings) = check_keys(&cfg, &set, &profiles).await?;
        problems.extend(errors);
        for w in warnings {
            eprintln!("warning: {w}");
        }
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

/// The keys of the jobs' `archive: encrypt`, read from the history database.
async fn check_keys(
    cfg: &crate::project::ProjectConfig,
    set: &ordo_jobs::JobSet,
    profiles: &std::collections::BTreeMap<String, ordo_jobs::transfer::Profile>,
) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    crate::project::private_data_dir(cfg)?;
    let store = crate::store::Store::open(&crate::project::database_url(cfg)).await?;
    crate::project::private_database(cfg);
    let now = crate::clock::now_ms();
    let (mut errors, mut warnings) = (Vec::new(), Vec::new());
    let named = set
        .jobs
        .values()
        .map(|j| (&j.file, &j.encrypt, "archive: encrypt"))
        .chain(profiles.values().map(|p| (&p.file, &p.encrypt, "encrypt")));
    for (file, keys, what) in named {
        for (name, pos) in keys {
            let at = format!("{}:{}:{}: {what}", file.display(), pos.line, pos.column);
            match crate::pki::keys::check_key(&store, name, now).await {
                Ok(w) => warnings.extend(w),
                Err(e) => errors.push(format!("{at}: {e}")),
            }
        }
    }
    // The backup keys, once: every encryption goes to them too.
    match crate::pki::keys::recipients(&store, &[], now).await {
        Ok((_, w)) => warnings.extend(w),
        Err(e) => errors.push(format!("backup keys: {e}")),
    }
    warnings.sort();
    warnings.dedup();
    store.close().await;
    Ok((errors, warnings))
}
