//! The run's known_hosts, read once and shared by every connection of the run.
//!
//! russh's own check reads and parses the whole file again for every connection, which
//! costs O(servers²) at fleet scale (4-5% of the controller's CPU at 1,000 servers). This
//! reads it once with ssh-key's parser and matches hosts as OpenSSH does: comma-separated
//! patterns with `*` and `?` wildcards and `!` negations, `[host]:port` for other ports
//! than 22, hashed names (`|1|salt|hash`, HMAC-SHA1), `@revoked` keys refused, and
//! `@cert-authority` lines ignored (host certificates are not supported). Host names
//! compare without regard to case.
//!
//! Keys learned with `--accept-new-host-keys` are appended to the file and to the copy in
//! memory. Lines that cannot be read are skipped (as OpenSSH does) and named once in a
//! warning with their line number.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use russh::keys::PublicKey;
use russh::keys::ssh_key::known_hosts::{Entry, HostPatterns, Marker};

/// What the file says of a host's key.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Known,
    /// No line for this host.
    Unknown,
    /// The line (1-based) that holds another key for this host (of any type).
    Changed(usize),
    /// The line (1-based) that marks this key `@revoked`.
    Revoked(usize),
}

pub struct KnownHosts {
    path: PathBuf,
    lines: Mutex<Lines>,
}

#[derive(Default)]
struct Lines {
    entries: Vec<(usize, Entry)>,
    /// Lower-cased plain names (no wildcard, no negation) to the entries naming them.
    by_name: HashMap<String, Vec<usize>>,
    /// Entries that must be tried one by one: hashed names, wildcards, negations.
    scan: Vec<usize>,
}

impl KnownHosts {
    /// Reads `path` (a missing file is an empty one).
    pub fn load(path: &Path) -> std::io::Result<KnownHosts> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e),
        };
        let mut lines = Lines::default();
        let mut bad = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split_once('#').map_or(raw, |(l, _)| l).trim();
            if line.is_empty() {
                continue;
            }
            match line.parse::<Entry>() {
                Ok(e) => lines.add(i + 1, e),
                Err(e) => bad.push(format!("line {}: {e}", i + 1)),
            }
        }
        if !bad.is_empty() {
            tracing::warn!(
                "{}: skipped {} line(s) that are not known_hosts entries ({})",
                path.display(),
                bad.len(),
                bad.join("; ")
            );
        }
        Ok(KnownHosts {
            path: path.to_path_buf(),
            lines: Mutex::new(lines),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the file says of `key` for `host` on `port`.
    pub fn check(&self, host: &str, port: u16, key: &PublicKey) -> Verdict {
        let name = host_port(host, port).to_ascii_lowercase();
        let lines = self.lines.lock().expect("poisoned");
        let candidates = lines
            .by_name
            .get(&name)
            .into_iter()
            .flatten()
            .chain(lines.scan.iter())
            .map(|&i| &lines.entries[i])
            .filter(|(_, e)| matches(e.host_patterns(), &name));
        let mut changed = None;
        let mut known = false;
        for (line, e) in candidates {
            let same = e.public_key().key_data() == key.key_data();
            match e.marker() {
                Some(Marker::CertAuthority) => continue,
                Some(Marker::Revoked) if same => return Verdict::Revoked(*line),
                Some(Marker::Revoked) => continue,
                None => {}
            }
            // Another key for this host, of this type or another: the host is known and
            // its key is not this one. (A server offering a type we do not know it by is
            // treated as changed, so `--accept-new-host-keys` never learns a
            // man-in-the-middle's key of a new type.)
            if same {
                known = true;
            } else if changed.is_none() {
                changed = Some(*line);
            }
        }
        match (known, changed) {
            (true, _) => Verdict::Known,
            (false, Some(line)) => Verdict::Changed(line),
            (false, None) => Verdict::Unknown,
        }
    }

    /// Appends `host`'s key to the file (creating it and its folder) and to the copy in memory.
    pub fn learn(&self, host: &str, port: u16, key: &PublicKey) -> std::io::Result<()> {
        let mut lines = self.lines.lock().expect("poisoned");
        if let Some(parent) = self.path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let existing = std::fs::read(&self.path).unwrap_or_default();
        let openssh = key
            .to_openssh()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let text = format!("{} {openssh}", host_port(host, port));
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        if existing.last().is_some_and(|b| *b != b'\n') {
            f.write_all(b"\n")?;
        }
        f.write_all(format!("{text}\n").as_bytes())?;
        let number = String::from_utf8_lossy(&existing).lines().count() + 1;
        let entry = text
            .parse::<Entry>()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        lines.add(number, entry);
        Ok(())
    }
}

impl Lines {
    fn add(&mut self, line: usize, e: Entry) {
        let i = self.entries.len();
        match e.host_patterns() {
            HostPatterns::Patterns(ps)
                if ps
                    .iter()
                    .all(|p| !p.starts_with('!') && !p.contains(['*', '?'])) =>
            {
                for p in ps {
                    self.by_name
                        .entry(p.to_ascii_lowercase())
                        .or_default()
                        .push(i);
                }
            }
            _ => self.scan.push(i),
        }
        self.entries.push((line, e));
    }
}

/// The name known_hosts uses: `host` on port 22, `[host]:port` otherwise.
fn host_port(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

/// OpenSSH's rule: a line matches when one of its patterns does and none of its negated
/// (`!`) patterns does. `name` is lower-case.
fn matches(patterns: &HostPatterns, name: &str) -> bool {
    match patterns {
        HostPatterns::HashedName { salt, hash } => {
            let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, salt);
            ring::hmac::verify(&k, name.as_bytes(), hash).is_ok()
        }
        HostPatterns::Patterns(ps) => {
            let mut hit = false;
            for p in ps {
                let p = p.to_ascii_lowercase();
                match p.strip_prefix('!') {
                    Some(neg) if wildcard(neg.as_bytes(), name.as_bytes()) => return false,
                    Some(_) => {}
                    None => hit = hit || wildcard(p.as_bytes(), name.as_bytes()),
                }
            }
            hit
        }
    }
}

/// `*` matches any run of characters, `?` any one character; everything else itself.
fn wildcard(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED_A: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBGb7+FAC/kVsAnmKRArUoO84Wcwp2cHKiOAhkHY4Uxp";
    const ED_B: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE1GFgaArZHObWabKGsx2tqIT6wemCyFouCgcw8xHrCo";

    fn key(s: &str) -> PublicKey {
        PublicKey::from_openssh(s).unwrap()
    }

    fn file(text: &str) -> (tempfile::TempDir, KnownHosts) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("known_hosts");
        std::fs::write(&p, text).unwrap();
        let k = KnownHosts::load(&p).unwrap();
        (d, k)
    }

    const ECDSA: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBH08MWKUmqyyotnqtAiWhj+xSH999tpruiWQDMoMmgyFYpa9uJEd03lnwiFLDX8wzEzQA3taXsPdmpD+I0Pd8Fs=";

    /// A host known by an ed25519 key that now offers an ECDSA one: changed, not unknown
    /// (else `--accept-new-host-keys` would learn a man-in-the-middle's key).
    #[test]
    fn a_key_of_another_type_is_a_changed_key() {
        let (_d, k) = file(&format!("web1 {ED_A}\n"));
        assert_eq!(k.check("web1", 22, &key(ECDSA)), Verdict::Changed(1));
        assert_eq!(k.check("web2", 22, &key(ECDSA)), Verdict::Unknown);
    }

    #[test]
    fn plain_names_ports_and_case() {
        let (_d, k) = file(&format!(
            "# comment\n\nWeb1.example.com {ED_A}\n[10.0.0.1]:2222 {ED_A} a comment\n"
        ));
        assert_eq!(k.check("web1.example.com", 22, &key(ED_A)), Verdict::Known);
        assert_eq!(
            k.check("web1.example.com", 2222, &key(ED_A)),
            Verdict::Unknown
        );
        assert_eq!(k.check("10.0.0.1", 2222, &key(ED_A)), Verdict::Known);
        // Line numbers count comments and blank lines, as an editor shows them.
        assert_eq!(k.check("10.0.0.1", 2222, &key(ED_B)), Verdict::Changed(4));
        assert_eq!(k.check("10.0.0.2", 22, &key(ED_A)), Verdict::Unknown);
    }

    #[test]
    fn wildcards_negations_markers_and_bad_lines() {
        let (_d, k) = file(&format!(
            "*.prod,!db?.prod {ED_A}\nnot a key line\n@revoked web9.prod {ED_A}\n@cert-authority *.prod {ED_B}\n"
        ));
        assert_eq!(k.check("web1.prod", 22, &key(ED_A)), Verdict::Known);
        assert_eq!(k.check("db1.prod", 22, &key(ED_A)), Verdict::Unknown);
        assert_eq!(k.check("web1.prod", 22, &key(ED_B)), Verdict::Changed(1));
        assert_eq!(k.check("web9.prod", 22, &key(ED_A)), Verdict::Revoked(3));
        assert_eq!(k.check("web1.staging", 22, &key(ED_A)), Verdict::Unknown);
    }

    #[test]
    fn hashed_names_match_as_ssh_keygen_hashes_them() {
        let (d, _) = file(&format!("[127.0.0.1]:2222 {ED_A}\nweb1 {ED_B}\n"));
        let p = d.path().join("known_hosts");
        let st = std::process::Command::new("ssh-keygen")
            .arg("-H")
            .arg("-f")
            .arg(&p)
            .output()
            .unwrap();
        assert!(st.status.success(), "{st:?}");
        assert!(std::fs::read_to_string(&p).unwrap().starts_with("|1|"));
        let k = KnownHosts::load(&p).unwrap();
        assert_eq!(k.check("127.0.0.1", 2222, &key(ED_A)), Verdict::Known);
        assert_eq!(k.check("WEB1", 22, &key(ED_B)), Verdict::Known);
        assert_eq!(k.check("127.0.0.1", 2222, &key(ED_B)), Verdict::Changed(1));
        assert_eq!(k.check("127.0.0.2", 2222, &key(ED_A)), Verdict::Unknown);
    }

    #[test]
    fn learned_keys_are_appended_and_remembered() {
        let (d, k) = file(&format!("a {ED_A}"));
        k.learn("b", 2222, &key(ED_B)).unwrap();
        assert_eq!(k.check("b", 2222, &key(ED_B)), Verdict::Known);
        let text = std::fs::read_to_string(d.path().join("known_hosts")).unwrap();
        assert_eq!(text.lines().nth(1).unwrap(), format!("[b]:2222 {ED_B}"));
        let again = KnownHosts::load(&d.path().join("known_hosts")).unwrap();
        assert_eq!(again.check("b", 2222, &key(ED_A)), Verdict::Changed(2));
    }
}
