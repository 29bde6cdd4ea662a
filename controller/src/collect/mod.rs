//! Receiving collected files: a tar stream from the server, unpacked into the server's
//! folder with every path checked (no `..`, no absolute path, no link, no device) and the
//! total size limit enforced.

mod sink;

use std::io::Read;
use std::path::{Component, Path, PathBuf};
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
/// the stream itself cut after the collect's limit plus [`STREAM_SLACK`] (long names and
/// headers included).
pub fn unpack(
    reader: impl Read,
    dest: &Path,
    bases: &[String],
    max_total: u64,
) -> std::io::Result<Unpacked> {
    let mut out = Unpacked::default();
    let mut total = 0u64;
    let mut count = 0usize;
    let budget = max_total.saturating_add(STREAM_SLACK);
    let mut archive = tar::Archive::new(Bounded {
        inner: reader,
        left: budget,
    });
    // The entries borrow the archive; the block ends the borrow before `into_inner`.
    {
        let mut entries = archive.entries()?;
        for entry in entries.by_ref() {
            let mut entry = match entry {
                Ok(e) => e,
                Err(e) => {
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
            let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            if raw.len() > MAX_NAME {
                out.warnings.push(format!(
                    "a name of {} bytes in the collect stream: refused (at most {MAX_NAME})",
                    raw.len()
                ));
                continue;
            }
            let remote = format!("/{}", raw.trim_start_matches('/'));
            if !entry.header().entry_type().is_file() {
                out.warnings
                    .push(format!("{remote}: not a regular file, skipped"));
                continue;
            }
            let Some(rel) = safe_relative(&remote, bases) else {
                out.warnings.push(format!(
                    "{remote}: refused: the path would leave the server's folder"
                ));
                continue;
            };
            // The size the archive means (a PAX header may override the raw field).
            let size = entry.size();
            if total.saturating_add(size) > max_total {
                out.warnings.push(format!(
                    "{remote}: not collected: the total size limit ({}) is reached",
                    ordo_jobs::units::format_size(max_total)
                ));
                continue;
            }
            let target = dest.join(&rel);
            if target.exists() {
                out.warnings.push(format!(
                    "{remote}: not collected: {} was already collected from another pattern",
                    rel.display()
                ));
                continue;
            }
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let mut file = std::fs::File::create(&target)?;
            let written = match std::io::copy(&mut (&mut entry).take(size), &mut file) {
                Ok(n) => Some(n).filter(|n| *n == size),
                // A read error is the stream's (the collect was stopped); a write error
                // is this disk's and is reported as such.
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => None,
                Err(e) => return Err(e),
            };
            let Some(written) = written else {
                drop(file);
                let _ = std::fs::remove_file(&target);
                out.warnings.push(format!(
                    "{remote}: cut short (the collect stream ended early), not kept"
                ));
                break;
            };
            total += written;
            out.files.push(Received {
                remote_path: remote,
                local_path: rel.to_string_lossy().into_owned(),
                size: written,
            });
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

/// The most warnings a collect reports (the rest are counted).
const MAX_WARNINGS: usize = 100;

/// The most entries a collect stream may hold.
pub const MAX_ENTRIES: usize = 100_000;
/// The longest file name taken from a collect stream (Linux's PATH_MAX).
pub const MAX_NAME: usize = 4096;
/// What a collect stream may carry besides the files' data (headers, long names, padding).
pub const STREAM_SLACK: u64 = 256 * 1024 * 1024;

/// A reader that fails once it has given `left` bytes: a stream that would exceed its
/// bound ends as a cut stream.
struct Bounded<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the collect stream is larger than its limit",
            ));
        }
        let max = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..max])?;
        self.left -= n as u64;
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
mod tests {
    use super::*;

    fn tar_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            // set_path refuses `..`; write the raw name as a hostile server would.
            let bytes = name.as_bytes();
            h.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn unpacks_relative_to_base_and_refuses_escapes() {
        let dir = tempfile::tempdir().unwrap();
        let data = tar_of(&[
            ("tmp/fichier_a_log.txt", b"aaa"),
            ("tmp/../etc/passwd", b"x"),
            ("etc/shadow", b"x"),
            ("tmp/sub/b.txt", b"bb"),
        ]);
        let out = unpack(&data[..], dir.path(), &["/tmp/".to_string()], 1 << 20).unwrap();
        let got: Vec<_> = out
            .files
            .iter()
            .map(|f| (f.local_path.as_str(), f.size))
            .collect();
        assert_eq!(got, vec![("fichier_a_log.txt", 3), ("sub/b.txt", 2)]);
        assert_eq!(
            std::fs::read(dir.path().join("fichier_a_log.txt")).unwrap(),
            b"aaa"
        );
        assert_eq!(out.warnings.len(), 2, "{:?}", out.warnings);
        assert!(out.warnings.iter().all(|w| w.contains("refused")));
        assert!(!dir.path().join("../etc/passwd").exists());
    }

    #[test]
    fn total_limit_is_enforced_and_reported() {
        let dir = tempfile::tempdir().unwrap();
        let data = tar_of(&[("tmp/a", b"12345"), ("tmp/b", b"12345"), ("tmp/c", b"1")]);
        let out = unpack(&data[..], dir.path(), &["/tmp/".to_string()], 6).unwrap();
        let got: Vec<_> = out.files.iter().map(|f| f.local_path.as_str()).collect();
        assert_eq!(got, vec!["a", "c"]);
        assert!(out.warnings[0].starts_with("/tmp/b: not collected: the total size limit"));
    }

    /// A collect stopped in the middle of a file (timeout, lost connection): the files
    /// before it are kept, the cut one is not left half-written.
    #[test]
    fn stream_cut_short_keeps_whole_files_only() {
        let dir = tempfile::tempdir().unwrap();
        let big = vec![b'x'; 5000];
        let data = tar_of(&[("tmp/a", b"first"), ("tmp/b", &big), ("tmp/c", b"third")]);
        // a: header + 1 block; b: header, then 1000 of its 5000 bytes.
        let cut = &data[..512 * 3 + 1000];
        let out = unpack(cut, dir.path(), &["/tmp/".to_string()], 1 << 20).unwrap();
        let got: Vec<_> = out.files.iter().map(|f| f.local_path.as_str()).collect();
        assert_eq!(got, vec!["a"]);
        assert_eq!(std::fs::read(dir.path().join("a")).unwrap(), b"first");
        assert!(
            !dir.path().join("b").exists(),
            "a half-written file was left"
        );
        assert!(
            out.warnings.iter().any(|w| w.contains("/tmp/b: cut short")),
            "{:?}",
            out.warnings
        );
        // Cut inside a header: the files before it are kept too.
        let cut = &data[..512 * 2 + 100];
        let out = unpack(
            cut,
            tempfile::tempdir().unwrap().path(),
            &["/tmp/".to_string()],
            1 << 20,
        )
        .unwrap();
        assert_eq!(out.files.len(), 1);
    }

    /// A hostile server's stream: a PAX size far beyond the data, a million entries, a
    /// huge name. Each ends with a warning, in bounded time and memory.
    #[test]
    fn hostile_streams_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let bases = ["/tmp/".to_string()];
        // A PAX header saying 1 TiB for a file of 3 bytes: the sum does not overflow and
        // the limit refuses it.
        let mut b = tar::Builder::new(Vec::new());
        let mut pax = tar::Header::new_ustar();
        let record = "22 size=1099511627776\n";
        pax.set_size(record.len() as u64);
        pax.set_entry_type(tar::EntryType::XHeader);
        pax.set_path("pax").unwrap();
        pax.set_cksum();
        b.append(&pax, record.as_bytes()).unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_size(3);
        h.set_path("tmp/big").unwrap();
        h.set_cksum();
        b.append(&h, &b"abc"[..]).unwrap();
        let data = b.into_inner().unwrap();
        let out = unpack(&data[..], dir.path(), &bases, 1 << 20).unwrap();
        assert!(out.files.is_empty(), "{:?}", out.files);
        assert!(
            out.warnings.iter().any(|w| w.contains("total size limit")),
            "{:?}",
            out.warnings
        );

        // More entries than allowed: the rest is not read, warnings are capped.
        let mut b = tar::Builder::new(Vec::new());
        for i in 0..MAX_ENTRIES + 10 {
            let mut h = tar::Header::new_ustar();
            h.set_entry_type(tar::EntryType::Directory);
            h.set_size(0);
            h.set_path(format!("tmp/d{i}")).unwrap();
            h.set_cksum();
            b.append(&h, &b""[..]).unwrap();
        }
        let data = b.into_inner().unwrap();
        let out = unpack(&data[..], dir.path(), &bases, 1 << 20).unwrap();
        assert!(
            out.warnings.len() <= MAX_WARNINGS + 1,
            "{}",
            out.warnings.len()
        );
        assert!(
            out.warnings.last().unwrap().contains("more warnings"),
            "{:?}",
            out.warnings.last()
        );

        // A GNU long name of 1 MiB: refused by its length.
        let mut b = tar::Builder::new(Vec::new());
        let long = format!("tmp/{}", "n".repeat(1 << 20));
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        b.append_data(&mut h, &long, &b"x"[..]).unwrap();
        let data = b.into_inner().unwrap();
        let out = unpack(&data[..], dir.path(), &bases, 1 << 20).unwrap();
        assert!(out.files.is_empty());
        assert!(
            out.warnings.iter().any(|w| w.contains("a name of")),
            "{:?}",
            out.warnings
        );

        // A stream longer than its bound ends as a cut stream.
        let endless = std::io::repeat(0).take(u64::MAX);
        let out = unpack(endless, dir.path(), &bases, 0);
        assert!(out.is_ok());
    }
}
