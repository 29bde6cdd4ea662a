//! Receiving collected files: a tar stream from the server, unpacked into the server's
//! folder with every path checked (no `..`, no absolute path, no link, no device) and the
//! total size limit enforced.

mod sink;

use std::cell::Cell;
use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use ordo_proto::shell::RunAsSpec;

pub use sink::{CollectSink, SinkReport, timer};

/// What a server's collect reads.
#[derive(Debug, Clone)]
pub struct CollectPlan {
    /// The globs, expanded for this server.
    pub patterns: Vec<String>,
    /// Who reads them, when not the login user (`collect: run_as`).
    pub run_as: Option<RunAsSpec>,
    pub max_file_size: u64,
    pub max_total_size: u64,
    pub timeout: Duration,
}

/// One file received.
#[derive(Debug, Clone)]
pub struct Received {
    pub remote_path: String,
    /// Relative to the server's folder.
    pub local_path: String,
    pub size: u64,
}

#[derive(Debug, Default)]
pub struct Unpacked {
    pub files: Vec<Received>,
    pub warnings: Vec<String>,
}

/// Unpacks `reader` (a tar stream) into `dest`. `bases` are the collect globs' folders
/// (`/tmp/`): a file is stored relative to the longest base it is under. A stream that
/// ends early (the collect was stopped, the connection lost) keeps the files received
/// whole, removes the one cut short and says so in a warning.
///
/// A hostile server cannot make it grow without bound: at most [`MAX_ENTRIES`] entries,
/// sizes read as the archive means them (PAX included) and added without overflow, and
/// the stream itself cut after the collect's limit plus [`STREAM_SLACK`], and what lies
/// between two entries (headers, long names, PAX records) cut after [`MAX_HEADERS`].
pub fn unpack(
    reader: impl Read,
    dest: &Path,
    bases: &[String],
    max_total: u64,
) -> std::io::Result<Unpacked> {
    let mut out = Unpacked::default();
    let mut total = 0u64;
    let mut count = 0usize;
    let headers = Rc::new(Cell::new(UNLIMITED));
    let mut archive = tar::Archive::new(Bounded {
        inner: reader,
        left: max_total.saturating_add(STREAM_SLACK),
        headers: Rc::clone(&headers),
    });
    // The entries borrow the archive; the block ends the borrow before `into_inner`.
    {
        let mut entries = archive.entries()?;
        loop {
            // Between two entries the tar crate reads only headers, long names and PAX
            // records (each entry's data is drained below): they get a budget of their
            // own, so a long name of gigabytes is never held in memory.
            headers.set(MAX_HEADERS);
            let next = entries.next();
            headers.set(UNLIMITED);
            let mut entry = match next {
                None => break,
                Some(Ok(e)) => e,
                Some(Err(e)) => {
                    out.warnings.push(format!(
                        "the collect stream ended early ({e}); nothing after"
                    ));
                    break;
                }
            };
            count += 1;
            if count > MAX_ENTRIES {
                out.warnings.push(format!(
                    "more than {MAX_ENTRIES} entries in the collect stream: the rest is not collected"
                ));
                break;
            }
            let stop = take_entry(&mut entry, dest, bases, max_total, &mut total, &mut out)?;
            if stop {
                break;
            }
            // What was not taken is read here, within the stream's bound.
            let _ = std::io::copy(&mut entry, &mut std::io::sink());
        }
    }
    if out.warnings.len() > MAX_WARNINGS {
        let more = out.warnings.len() - MAX_WARNINGS;
        out.warnings.truncate(MAX_WARNINGS);
        out.warnings
            .push(format!("... and {more} more warnings of this collect"));
    }
    // Drain what follows the end-of-archive marker so the sender never blocks (within
    // the stream's bound).
    let _ = std::io::copy(&mut archive.into_inner(), &mut std::io::sink());
    Ok(out)
}

/// Stores one entry if it is a regular file the collect may keep; says whether the
/// stream is to be left (it was cut).
fn take_entry(
    entry: &mut tar::Entry<'_, impl Read>,
    dest: &Path,
    bases: &[String],
    max_total: u64,
    total: &mut u64,
    out: &mut Unpacked,
) -> std::io::Result<bool> {
    let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
    if entry.header().entry_type().is_gnu_sparse() {
        // Its holes are made of nothing in the stream: a hostile one would have the tar
        // crate produce 2^62 zeros (or walk a map of thousands of blocks) while skipping
        // it. Nothing after it can be read safely.
        let shown: String = raw.chars().take(200).collect();
        out.warnings.push(format!(
            "/{}: a sparse file in the collect stream: refused, and nothing after it",
            shown.trim_start_matches('/')
        ));
        return Ok(true);
    }
    let pax_sparse = entry.pax_extensions().ok().flatten().is_some_and(|mut x| {
        x.any(|e| e.is_ok_and(|e| e.key().is_ok_and(|k| k.starts_with("GNU.sparse."))))
    });
    if pax_sparse {
        // Its data is a sparse map and the file's pieces: stored as such it would be a
        // corrupted copy. Skipped (its size is that of the stream's data: bounded).
        let shown: String = raw.chars().take(200).collect();
        out.warnings.push(format!(
            "/{}: a sparse file (PAX) in the collect stream: not collected",
            shown.trim_start_matches('/')
        ));
        return Ok(false);
    }
    if raw.len() > MAX_NAME {
        out.warnings.push(format!(
            "a name of {} bytes in the collect stream: refused (at most {MAX_NAME})",
            raw.len()
        ));
        return Ok(false);
    }
    let remote = format!("/{}", raw.trim_start_matches('/'));
    if !entry.header().entry_type().is_file() {
        out.warnings
            .push(format!("{remote}: not a regular file, skipped"));
        return Ok(false);
    }
    let Some(rel) = safe_relative(&remote, bases) else {
        out.warnings.push(format!(
            "{remote}: refused: the path would leave the server's folder"
        ));
        return Ok(false);
    };
    // The size the archive means (a PAX header may override the raw field).
    let size = entry.size();
    if total.saturating_add(size) > max_total {
        out.warnings.push(format!(
            "{remote}: not collected: the total size limit ({}) is reached",
            ordo_jobs::units::format_size(max_total)
        ));
        return Ok(false);
    }
    let target = dest.join(&rel);
    if target.exists() {
        out.warnings.push(format!(
            "{remote}: not collected: {} was already collected from another pattern",
            rel.display()
        ));
        return Ok(false);
    }
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut file = std::fs::File::create(&target)?;
    let written = match std::io::copy(&mut entry.take(size), &mut file) {
        Ok(n) => Some(n).filter(|n| *n == size),
        // A read error is the stream's (the collect was stopped); a write error is this
        // disk's and is reported as such.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => None,
        Err(e) => return Err(e),
    };
    let Some(written) = written else {
        drop(file);
        let _ = std::fs::remove_file(&target);
        out.warnings.push(format!(
            "{remote}: cut short (the collect stream ended early), not kept"
        ));
        return Ok(true);
    };
    *total += written;
    out.files.push(Received {
        remote_path: remote,
        local_path: rel.to_string_lossy().into_owned(),
        size: written,
    });
    Ok(false)
}

/// The most warnings a collect reports (the rest are counted).
const MAX_WARNINGS: usize = 100;

/// The most entries a collect stream may hold.
pub const MAX_ENTRIES: usize = 100_000;
/// The longest file name taken from a collect stream (Linux's PATH_MAX).
pub const MAX_NAME: usize = 4096;
/// What a collect stream may carry besides the files' data (headers, long names, padding).
pub const STREAM_SLACK: u64 = 256 * 1024 * 1024;
/// What the tar crate may read between two entries: their headers, a GNU long name and
/// link, PAX records, sparse maps. It holds long names and PAX records in memory whole.
pub const MAX_HEADERS: u64 = 1024 * 1024;
const UNLIMITED: u64 = u64::MAX;

/// A reader that fails once it has given `left` bytes: a stream that would exceed its
/// bound ends as a cut stream. While `headers` is not [`UNLIMITED`] it is a second,
/// smaller budget: the one of the headers between two entries.
struct Bounded<R> {
    inner: R,
    left: u64,
    headers: Rc<Cell<u64>>,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the collect stream is larger than its limit",
            ));
        }
        let headers = self.headers.get();
        if headers == 0 {
            return Err(std::io::Error::other(format!(
                "the headers of one entry are over {} (a hostile long name or PAX record)",
                ordo_jobs::units::format_size(MAX_HEADERS)
            )));
        }
        let max = buf
            .len()
            .min(usize::try_from(self.left.min(headers)).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..max])?;
        self.left -= n as u64;
        if headers != UNLIMITED {
            self.headers.set(headers - n as u64);
        }
        Ok(n)
    }
}

/// The path relative to the longest matching base, if it only goes down.
fn safe_relative(remote: &str, bases: &[String]) -> Option<PathBuf> {
    let path = Path::new(remote);
    if path
        .components()
        .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
    {
        return None;
    }
    let base = bases
        .iter()
        .filter(|b| remote.starts_with(b.as_str()))
        .max_by_key(|b| b.len())?;
    let rel = Path::new(&remote[base.len()..]);
    if rel.as_os_str().is_empty() || !rel.components().all(|c| matches!(c, Component::Normal(_))) {
        return None;
    }
    Some(rel.to_path_buf())
}

#[cfg(test)]
mod tests;
