//! `controller serve` (the long-running controller) and `controller schedules`.

use clap::Args;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use super::{BadInput, Cli, EXIT_OK};
use crate::clock::now_ms;
use crate::project::{Env, Loaded};

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Serve the API here (overrides `serve: listen` in ordo.yaml): `0.0.0.0:8443` (HTTPS),
    /// or `http://127.0.0.1:8080` (plain HTTP, loopback addresses only).
    #[arg(long)]
    pub listen: Option<String>,
}

/// Loads the project, binds the API's address, then serves until SIGTERM or Ctrl-C;
/// SIGHUP rereads the jobs and inventory.
pub async fn serve(cli: &Cli, a: &ServeArgs) -> anyhow::Result<i32> {
    let loaded = Loaded::all(super::config(cli)?)?;
    let listen = a.listen.clone().or(loaded.cfg.serve.listen.clone());
    // The API and the console (ordo-web), when an address is given.
    let front = match listen {
        Some(text) => {
            let (addr, plain) = ordo_web::http::parse_listen(&text);
            let l = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| BadInput(format!("serve: cannot listen on {addr}: {e}")))?;
            let listening = ordo_web::http::listening(&loaded.cfg, l.local_addr()?, plain)?;
            Some(ordo_web::front_door(l, listening))
        }
        None => None,
    };
    let (env, me) = Env::open(loaded, "serve").await?;
    let (reload_tx, reloads) = mpsc::channel(1);
    let mut hup = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            // A reload already waiting covers this one too.
            let _ = reload_tx.try_send(());
        }
    });
    let mut term = signal(SignalKind::terminate())?;
    let shutdown = async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    };
    crate::serve::run(env, me, front, reloads, shutdown).await?;
    Ok(EXIT_OK)
}

#[derive(Args, Debug)]
pub struct SchedulesArgs {
    /// How many next fire times to show per job.
    #[arg(short = 'n', long, default_value_t = 3)]
    pub next: usize,
}

/// Every scheduled job with its next fire times, and the last decided fire if the
/// database has one.
pub async fn schedules(cli: &Cli, a: &SchedulesArgs) -> anyhow::Result<i32> {
    let cfg = super::config(cli)?;
    let jobs = crate::project::jobset(&cfg)?;
    let store = super::history(&cfg).await?;
    let now = now_ms();
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header([
        "job",
        "schedule",
        "time zone",
        "next fires",
        "overlap / missed",
        "last fire",
    ]);
    let off = match &store {
        Some(st) => st.disabled_schedules().await?,
        None => Vec::new(),
    };
    let mut count = 0;
    for job in jobs.jobs.values() {
        let (Some(s), watch) = (&job.schedule, &job.watch) else {
            if let Some(w) = &job.watch {
                count += 1;
                t.add_row([
                    job.name.clone(),
                    format!("watch {}/{}", w.path.display(), w.pattern),
                    "-".into(),
                    "on file arrival".into(),
                    "-".into(),
                    "-".into(),
                ]);
            }
            continue;
        };
        count += 1;
        let tz = s.timezone.unwrap_or(cfg.serve.timezone);
        let next: Vec<String> = s
            .fires_between(now, i64::MAX, a.next, tz)
            .into_iter()
            .map(|f| crate::clock::zoned_time(f, tz))
            .collect();
        let last = match &store {
            Some(st) => st
                .last_fire(&job.name, "schedule")
                .await
                .ok()
                .flatten()
                .map(|f| {
                    format!(
                        "{} {}{}",
                        crate::clock::zoned_time(f.due_at, tz),
                        f.decision,
                        f.execution_id.map(|e| format!(" {e}")).unwrap_or_default()
                    )
                })
                .unwrap_or_else(|| "-".into()),
            None => "-".into(),
        };
        let mut what = s
            .crons
            .iter()
            .map(|c| c.text.clone())
            .collect::<Vec<_>>()
            .join("\n");
        if let Some(w) = watch {
            what.push_str(&format!("\nwatch {}/{}", w.path.display(), w.pattern));
        }
        if !s.enabled {
            what.push_str("\n(disabled)");
        }
        let switched_off = off.iter().find(|(j, _, _)| *j == job.name);
        if let Some((_, by, at)) = switched_off {
            what.push_str(&format!(
                "\n(switched off by {by}, {})",
                crate::clock::zoned_time(*at, tz)
            ));
        }
        t.add_row([
            job.name.clone(),
            what,
            tz.name().to_string(),
            if s.enabled && switched_off.is_none() {
                next.join("\n")
            } else {
                "-".into()
            },
            format!("{} / {}", s.overlap.as_str(), s.missed.as_str()),
            last,
        ]);
    }
    if count == 0 {
        say!("no job has a schedule or a watch in {}", cfg.jobs.display());
    } else {
        say!("{t}");
    }
    if let Some(s) = store {
        match s.lease(crate::serve::LEASE).await.ok().flatten() {
            Some((holder, until, _)) if until > now && !holder.is_empty() => {
                say!(
                    "schedules are fired by {holder} (lease until {})",
                    crate::clock::zoned_time(until, cfg.serve.timezone)
                );
            }
            _ => say!("no `controller serve` is firing schedules right now"),
        }
        s.close().await;
    }
    Ok(EXIT_OK)
}
