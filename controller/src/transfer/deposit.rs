//! Putting pieces at the partner, per protocol, and asking what became of them.
//!
//! SFTP and folders write `<name><temp_suffix>` then rename, so the partner never sees a
//! half file; an SFTP upload cut by a broken connection resumes at the size already
//! written. An existing file of the same name at the partner is never overwritten.

use std::path::Path;
use std::time::{Duration, Instant};

use ordo_jobs::transfer::{Profile, Protocol};
use russh_sftp::client::SftpSession;
use russh_sftp::protocol::OpenFlags;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use super::Deposited;
use super::files::Piece;
use crate::session::{SshSession, SshSettings};

/// An open connection to the partner, reused for every file of a run.
pub enum Link {
    Sftp {
        ssh: Box<SshSession>,
        sftp: Box<SftpSession>,
    },
    Other,
}

impl Link {
    pub async fn open(profile: &Profile) -> Result<Link, String> {
        match &profile.protocol {
            Protocol::Sftp {
                host,
                port,
                user,
                identity,
                known_hosts,
                accept_new_host_key,
                ..
            } => {
                let known = known_hosts.clone().unwrap_or_else(|| {
                    std::path::PathBuf::from(
                        std::env::var("HOME").unwrap_or_else(|_| "/root".into()),
                    )
                    .join(".ssh/known_hosts")
                });
                let settings = SshSettings::new(
                    user.clone(),
                    identity,
                    known,
                    *accept_new_host_key,
                    Duration::from_secs(15),
                    1,
                )
                .map_err(|e| e.to_string())?;
                let mut node =
                    ordo_inventory::Node::new(&profile.name, ordo_inventory::Pos::default());
                node.host = host.clone();
                node.port = Some(*port);
                node.user = Some(user.clone());
                let ssh = SshSession::connect(&node, &settings)
                    .await
                    .map_err(|e| e.to_string())?;
                let sftp = ssh.sftp().await.map_err(|e| e.to_string())?;
                Ok(Link::Sftp {
                    ssh: Box::new(ssh),
                    sftp: Box::new(sftp),
                })
            }
            _ => Ok(Link::Other),
        }
    }

    pub async fn close(self) {
        if let Link::Sftp { ssh, sftp } = self {
            let _ = sftp.close().await;
            (*ssh).close().await;
        }
    }
}

/// Values for the SMTP subject and body.
pub struct MailParts<'a> {
    pub scenario: &'a str,
    pub file: &'a str,
    pub part: String,
}

pub async fn deposit(
    link: &mut Link,
    profile: &Profile,
    piece: &Piece,
    cfg: &crate::project::ProjectConfig,
    mail: MailParts<'_>,
) -> Result<Deposited, String> {
    match (&profile.protocol, link) {
        (
            Protocol::Sftp {
                remote_dir,
                temp_suffix,
                bandwidth,
                ..
            },
            Link::Sftp { sftp, .. },
        ) => sftp_put(sftp, piece, remote_dir, temp_suffix, *bandwidth).await,
        (Protocol::Folder { path, temp_suffix }, _) => folder_put(piece, path, temp_suffix).await,
        (Protocol::Http { .. }, _) => super::http::put(profile, piece).await,
        (
            Protocol::Smtp {
                to,
                cc,
                subject,
                body,
            },
            _,
        ) => {
            let fill = |t: &str| {
                t.replace("[scenario]", mail.scenario)
                    .replace("[name]", mail.file)
                    .replace("[profile]", &profile.name)
                    .replace("[part]", &mail.part)
            };
            let bytes = tokio::fs::read(&piece.path)
                .await
                .map_err(|e| format!("{}: {e}", piece.path.display()))?;
            let out = crate::mail::Outgoing {
                to: to.clone(),
                cc: cc.clone(),
                subject: fill(subject),
                body: fill(body),
                attachment: Some((piece.name.clone(), bytes)),
            };
            let where_ = crate::mail::send(&cfg.mail, &out)
                .await
                .map_err(|e| e.to_string())?;
            Ok(Deposited {
                remote: format!("mail to {} ({where_})", to.join(", ")),
                note: None,
            })
        }
        (Protocol::Sftp { .. }, Link::Other) => Err("no SFTP connection".into()),
    }
}

fn join_remote(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

async fn sftp_put(
    sftp: &SftpSession,
    piece: &Piece,
    remote_dir: &str,
    temp_suffix: &str,
    bandwidth: Option<u64>,
) -> Result<Deposited, String> {
    let final_path = join_remote(remote_dir, &piece.name);
    let temp = format!("{final_path}{temp_suffix}");
    if sftp.try_exists(final_path.clone()).await.unwrap_or(false) {
        return Err(format!(
            "{final_path} already exists at the partner: not overwritten"
        ));
    }
    let mut offset = match sftp.metadata(temp.clone()).await {
        Ok(m) => m.size.unwrap_or(0),
        Err(_) => 0,
    };
    let mut note = None;
    if offset > 0 && !is_prefix(sftp, &temp, &piece.path, offset, piece.size).await {
        // Another file's partial upload (an earlier version, someone else's): never
        // resumed, started again.
        let _ = sftp.remove_file(temp.clone()).await;
        note = Some(format!(
            "{temp} at the partner was not this file's beginning: uploaded again from byte 0"
        ));
        offset = 0;
    }
    if offset > 0 {
        note = Some(format!("resumed at byte {offset}"));
    }
    let mut remote = sftp
        .open_with_flags(temp.clone(), OpenFlags::WRITE | OpenFlags::CREATE)
        .await
        .map_err(|e| format!("open {temp}: {e}"))?;
    remote
        .seek(std::io::SeekFrom::Start(offset))
        .await
        .map_err(|e| format!("seek {temp}: {e}"))?;
    let mut local = tokio::fs::File::open(&piece.path)
        .await
        .map_err(|e| format!("{}: {e}", piece.path.display()))?;
    local
        .seek(std::io::SeekFrom::Start(offset))
        .await
        .map_err(|e| e.to_string())?;
    let started = Instant::now();
    let mut sent = 0u64;
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = local.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        remote
            .write_all(&buf[..n])
            .await
            .map_err(|e| format!("write {temp} at byte {}: {e}", offset + sent))?;
        sent += n as u64;
        if let Some(rate) = bandwidth.filter(|r| *r > 0) {
            let due = Duration::from_secs_f64(sent as f64 / rate as f64);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                tokio::time::sleep(wait).await;
            }
        }
    }
    remote
        .shutdown()
        .await
        .map_err(|e| format!("close {temp}: {e}"))?;
    let written = sftp
        .metadata(temp.clone())
        .await
        .map_err(|e| format!("stat {temp}: {e}"))?
        .size
        .unwrap_or(0);
    if written != piece.size {
        return Err(format!(
            "{temp} has {written} bytes after the upload, expected {}",
            piece.size
        ));
    }
    sftp.rename(temp.clone(), final_path.clone())
        .await
        .map_err(|e| format!("rename {temp} to {final_path}: {e}"))?;
    Ok(Deposited {
        remote: final_path,
        note,
    })
}

/// Whether the partner's partial upload `temp` (of `len` bytes) is the beginning of the
/// local file: read back and compared byte for byte, so that a resume never joins two
/// different files. A `len` beyond the file is not.
async fn is_prefix(sftp: &SftpSession, temp: &str, local: &Path, len: u64, size: u64) -> bool {
    if len > size {
        return false;
    }
    let (Ok(mut remote), Ok(mut mine)) = (
        sftp.open(temp.to_string()).await,
        tokio::fs::File::open(local).await,
    ) else {
        return false;
    };
    let (mut a, mut b) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    let mut left = len;
    while left > 0 {
        let n = usize::try_from(left.min(a.len() as u64)).unwrap_or(a.len());
        if remote.read_exact(&mut a[..n]).await.is_err()
            || mine.read_exact(&mut b[..n]).await.is_err()
            || a[..n] != b[..n]
        {
            return false;
        }
        left -= n as u64;
    }
    true
}

/// The size of a deposited file at the partner, None when it is not there.
pub async fn remote_size(
    link: &Link,
    profile: &Profile,
    name: &str,
) -> Result<Option<u64>, String> {
    match (&profile.protocol, link) {
        (Protocol::Sftp { remote_dir, .. }, Link::Sftp { sftp, .. }) => {
            let p = join_remote(remote_dir, name);
            match sftp.metadata(p).await {
                Ok(m) => Ok(Some(m.size.unwrap_or(0))),
                Err(russh_sftp::client::error::Error::Status(s))
                    if s.status_code == russh_sftp::protocol::StatusCode::NoSuchFile =>
                {
                    Ok(None)
                }
                Err(e) => Err(e.to_string()),
            }
        }
        (Protocol::Folder { path, .. }, _) => match std::fs::metadata(path.join(name)) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.to_string()),
        },
        _ => Err("this partner cannot be asked about deposited files".into()),
    }
}

async fn folder_put(piece: &Piece, dir: &Path, temp_suffix: &str) -> Result<Deposited, String> {
    let final_path = dir.join(&piece.name);
    let temp = dir.join(format!("{}{temp_suffix}", piece.name));
    if final_path.exists() {
        return Err(format!(
            "{} already exists at the partner: not overwritten",
            final_path.display()
        ));
    }
    let (src, tmp, fin) = (piece.path.clone(), temp.clone(), final_path.clone());
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        std::fs::copy(&src, &tmp)?;
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, &fin)
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| format!("{}: {e}", temp.display()))?;
    Ok(Deposited {
        remote: final_path.display().to_string(),
        note: None,
    })
}

/// Where a fetch writes `dest` until it is whole.
pub fn part_of(dest: &Path) -> std::path::PathBuf {
    dest.with_file_name(format!(
        ".{}.part",
        dest.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    ))
}

/// Fetches one file of the partner's inbox into `dest` (written as `.part`, synced, size
/// checked, then renamed). Returns the bytes fetched.
pub async fn sftp_get(
    sftp: &SftpSession,
    remote: &str,
    dest: &Path,
    size: u64,
) -> Result<u64, String> {
    let tmp = part_of(dest);
    let mut f = sftp
        .open(remote.to_string())
        .await
        .map_err(|e| format!("open {remote}: {e}"))?;
    let mut out = tokio::fs::File::create(&tmp)
        .await
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    let n = tokio::io::copy(&mut f, &mut out)
        .await
        .map_err(|e| format!("read {remote}: {e}"))?;
    out.sync_all().await.map_err(|e| e.to_string())?;
    drop(out);
    if n != size {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(format!(
            "{remote}: got {n} bytes, the partner announced {size}"
        ));
    }
    tokio::fs::rename(&tmp, dest)
        .await
        .map_err(|e| format!("{}: {e}", dest.display()))?;
    Ok(n)
}
