//! Keys about to expire: once a day (and soon after a start), the leader tells the top
//! administrators which encryption keys expire within 30 days or have expired, by mail,
//! and says so in the log.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Server;
use crate::clock::now_ms;
use crate::pki::cms::gmt;
use crate::pki::keys::EXPIRY_WARNING_DAYS;

pub async fn run(s: Arc<Server>, stop: CancellationToken) {
    let mut wait = Duration::from_secs(5);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.cancelled() => return,
        }
        // Not the leader (yet): look again soon; the leader checks once a day.
        wait = Duration::from_secs(30);
        if s.is_leader() {
            if let Err(e) = check(&s).await {
                tracing::warn!("key expiry check: {e}");
            }
            wait = Duration::from_secs(24 * 3600);
        }
    }
}

async fn check(s: &Server) -> anyhow::Result<()> {
    let now = now_ms();
    let soon: Vec<String> = s
        .store
        .keys()
        .await?
        .into_iter()
        .filter(|k| k.not_after - now < EXPIRY_WARNING_DAYS * 86_400_000)
        .map(|k| {
            let when = if k.not_after <= now {
                "expired on"
            } else {
                "expires on"
            };
            format!("key {} (CN={}) {when} {}", k.name, k.cn, gmt(k.not_after))
        })
        .collect();
    if soon.is_empty() {
        return Ok(());
    }
    for line in &soon {
        tracing::warn!("{line}");
    }
    let to: Vec<String> = s
        .store
        .users()
        .await?
        .into_iter()
        .filter(|u| u.top && !u.disabled && !u.email.is_empty())
        .map(|u| u.email)
        .collect();
    if to.is_empty() {
        return Ok(());
    }
    let m = crate::mail::Outgoing {
        to,
        cc: Vec::new(),
        subject: format!("[ordo] {} encryption key(s) expire soon", soon.len()),
        body: format!(
            "These encryption keys expire within {EXPIRY_WARNING_DAYS} days, or have expired: once expired, runs that encrypt to them are refused.\n\n{}\n\nReplace each: add the new certificate under a new name (controller keys add NEW --cert FILE, or the console's Keys page), name it in the jobs and profiles instead of the old one, then delete the old key.\n",
            soon.join("\n")
        ),
        attachment: None,
    };
    crate::mail::send_or_queue(&s.env().cfg.mail, &m).await?;
    Ok(())
}
