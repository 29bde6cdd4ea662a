//! Local file work of a transfer: finding files, moving them to the backup folder by the
//! collision policy, compressing and cutting payloads into segments with a manifest, and
//! joining segments back (`controller transfers join`).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use ordo_jobs::transfer::Collision;
use sha2::{Digest, Sha256};

/// A file to send, in the order found.
#[derive(Debug, Clone)]
pub struct Found {
    pub path: PathBuf,
    pub name: String,
    pub size: u64,
}

/// The regular files of `dir` whose name matches, oldest first (then by name).
pub fn find(dir: &Path, matcher: &globset::GlobMatcher) -> std::io::Result<Vec<Found>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let meta = e.metadata()?;
        let name = e.file_name().to_string_lossy().into_owned();
        if !meta.is_file() || !matcher.is_match(Path::new(&name)) {
            continue;
        }
        out.push((
            meta.modified().ok(),
            Found {
                path: e.path(),
                name,
                size: meta.len(),
            },
        ));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.name.cmp(&b.1.name)));
    Ok(out.into_iter().map(|(_, f)| f).collect())
}

/// Where the backup of `name` goes, or None when the policy says to leave it (`skip`).
pub fn backup_target(dir: &Path, name: &str, policy: Collision) -> Option<PathBuf> {
    let plain = dir.join(name);
    if !plain.exists() {
        return Some(plain);
    }
    match policy {
        Collision::Overwrite => Some(plain),
        Collision::Skip => None,
        Collision::Increment => (1..)
            .map(|i| dir.join(format!("{name}.{i}")))
            .find(|p| !p.exists()),
    }
}

/// Moves a file (rename, or copy + fsync + remove across filesystems): the file is never
/// in neither place.
pub fn move_file(from: &Path, to: &Path) -> std::io::Result<()> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)?;
    }
    match std::fs::rename(from, to) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(18) => {
            // EXDEV: another filesystem.
            let tmp = to.with_extension("ordo-moving");
            std::fs::copy(from, &tmp)?;
            std::fs::File::open(&tmp)?.sync_all()?;
            std::fs::rename(&tmp, to)?;
            std::fs::remove_file(from)
        }
        Err(e) => Err(e),
    }
}

pub fn sha256_file(p: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(p)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// One file to put at the partner.
#[derive(Debug, Clone)]
pub struct Piece {
    /// The name at the partner.
    pub name: String,
    pub path: PathBuf,
    pub size: u64,
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    pub original: String,
    pub original_size: u64,
    pub original_sha256: String,
    pub compressed: bool,
    pub payload: String,
    pub payload_size: u64,
    pub payload_sha256: String,
    pub segments: Vec<SegmentInfo>,
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct SegmentInfo {
    pub name: String,
    pub size: u64,
    pub sha256: String,
}

/// What goes to the partner for the file at `src`: the file itself, its gzip, or numbered
/// segments of either followed by `<payload>.manifest`. Work files go in `work`.
pub fn payload(
    src: &Path,
    name: &str,
    compress: bool,
    segment_size: Option<u64>,
    work: &Path,
) -> std::io::Result<Vec<Piece>> {
    let size = std::fs::metadata(src)?.len();
    let (payload_path, payload_name) = if compress {
        std::fs::create_dir_all(work)?;
        let gz_name = format!("{name}.gz");
        let gz = work.join(&gz_name);
        let mut enc = flate2::write::GzEncoder::new(
            std::fs::File::create(&gz)?,
            flate2::Compression::default(),
        );
        std::io::copy(&mut std::fs::File::open(src)?, &mut enc)?;
        enc.finish()?.sync_all()?;
        (gz, gz_name)
    } else {
        (src.to_path_buf(), name.to_string())
    };
    let payload_size = std::fs::metadata(&payload_path)?.len();
    let seg = match segment_size {
        Some(s) if payload_size > s => s,
        _ => {
            return Ok(vec![Piece {
                name: payload_name,
                path: payload_path,
                size: payload_size,
            }]);
        }
    };
    std::fs::create_dir_all(work)?;
    let count = payload_size.div_ceil(seg);
    let width = count.to_string().len().max(3);
    let mut input = std::fs::File::open(&payload_path)?;
    let mut pieces = Vec::new();
    let mut infos = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    for i in 1..=count {
        let seg_name = format!("{payload_name}.{i:0width$}");
        let path = work.join(&seg_name);
        let mut out = std::fs::File::create(&path)?;
        let mut left = seg.min(payload_size - (i - 1) * seg);
        let mut h = Sha256::new();
        let this_size = left;
        while left > 0 {
            let want = left.min(buf.len() as u64) as usize;
            let n = input.read(&mut buf[..want])?;
            if n == 0 {
                return Err(std::io::Error::other("the payload shrank while being cut"));
            }
            out.write_all(&buf[..n])?;
            h.update(&buf[..n]);
            left -= n as u64;
        }
        out.sync_all()?;
        infos.push(SegmentInfo {
            name: seg_name.clone(),
            size: this_size,
            sha256: hex::encode(h.finalize()),
        });
        pieces.push(Piece {
            name: seg_name,
            path,
            size: this_size,
        });
    }
    let manifest = Manifest {
        original: name.to_string(),
        original_size: size,
        original_sha256: sha256_file(src)?,
        compressed: compress,
        payload: payload_name.clone(),
        payload_size,
        payload_sha256: sha256_file(&payload_path)?,
        segments: infos,
    };
    let m_name = format!("{payload_name}.manifest");
    let m_path = work.join(&m_name);
    std::fs::write(&m_path, serde_json::to_vec_pretty(&manifest)?)?;
    pieces.push(Piece {
        name: m_name,
        size: std::fs::metadata(&m_path)?.len(),
        path: m_path,
    });
    Ok(pieces)
}

/// Rebuilds the original file from a manifest and its segments (in the manifest's
/// folder): every segment and the result are checked against their SHA-256. Returns the
/// file written in `out_dir`.
pub fn join(manifest: &Path, out_dir: &Path) -> Result<PathBuf, String> {
    let dir = manifest.parent().unwrap_or(Path::new("."));
    let text = std::fs::read(manifest).map_err(|e| format!("{}: {e}", manifest.display()))?;
    let m: Manifest = serde_json::from_slice(&text)
        .map_err(|e| format!("{}: not an ordo manifest: {e}", manifest.display()))?;
    if m.original.contains('/') || m.original.starts_with('.') {
        return Err(format!(
            "{}: unsafe file name `{}`",
            manifest.display(),
            m.original
        ));
    }
    std::fs::create_dir_all(out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
    let payload = out_dir.join(format!(".{}.joining", m.payload));
    let mut out =
        std::fs::File::create(&payload).map_err(|e| format!("{}: {e}", payload.display()))?;
    let mut h = Sha256::new();
    for s in &m.segments {
        let p = dir.join(&s.name);
        let bytes = std::fs::read(&p).map_err(|e| format!("segment {}: {e}", p.display()))?;
        let got = hex::encode(Sha256::digest(&bytes));
        if bytes.len() as u64 != s.size || got != s.sha256 {
            let _ = std::fs::remove_file(&payload);
            return Err(format!(
                "segment {} is damaged: {} bytes, sha256 {got} (expected {} bytes, sha256 {})",
                p.display(),
                bytes.len(),
                s.size,
                s.sha256
            ));
        }
        h.update(&bytes);
        out.write_all(&bytes).map_err(|e| e.to_string())?;
    }
    out.sync_all().map_err(|e| e.to_string())?;
    drop(out);
    if hex::encode(h.finalize()) != m.payload_sha256 {
        let _ = std::fs::remove_file(&payload);
        return Err("the joined payload does not match the manifest's sha256".into());
    }
    let target = out_dir.join(&m.original);
    if m.compressed {
        let mut dec =
            flate2::read::GzDecoder::new(std::fs::File::open(&payload).map_err(|e| e.to_string())?);
        let tmp = out_dir.join(format!(".{}.joining", m.original));
        let mut f = std::fs::File::create(&tmp).map_err(|e| e.to_string())?;
        std::io::copy(&mut dec, &mut f).map_err(|e| format!("gunzip: {e}"))?;
        f.sync_all().map_err(|e| e.to_string())?;
        let _ = std::fs::remove_file(&payload);
        std::fs::rename(&tmp, &target).map_err(|e| e.to_string())?;
    } else {
        std::fs::rename(&payload, &target).map_err(|e| e.to_string())?;
    }
    let sum = sha256_file(&target).map_err(|e| e.to_string())?;
    if sum != m.original_sha256 {
        return Err(format!(
            "{}: sha256 {sum} does not match the manifest ({})",
            target.display(),
            m.original_sha256
        ));
    }
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collision_policies() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(
            backup_target(d.path(), "F", Collision::Skip),
            Some(d.path().join("F"))
        );
        std::fs::write(d.path().join("F"), "1").unwrap();
        std::fs::write(d.path().join("F.1"), "2").unwrap();
        assert_eq!(
            backup_target(d.path(), "F", Collision::Increment),
            Some(d.path().join("F.2"))
        );
        assert_eq!(
            backup_target(d.path(), "F", Collision::Overwrite),
            Some(d.path().join("F"))
        );
        assert_eq!(backup_target(d.path(), "F", Collision::Skip), None);
    }

    #[test]
    fn segments_and_manifest_join_back_to_the_original() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("BIG.dat");
        // Pseudo-random bytes (an LCG): gzip cannot shrink them below a segment.
        let mut x: u32 = 12345;
        let data: Vec<u8> = (0..400_000)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (x >> 16) as u8
            })
            .collect();
        std::fs::write(&src, &data).unwrap();
        for compress in [false, true] {
            let work = d.path().join(format!("work-{compress}"));
            let pieces = payload(&src, "BIG.dat", compress, Some(50_000), &work).unwrap();
            let last = pieces.last().unwrap();
            assert!(last.name.ends_with(".manifest"));
            let stem = if compress { "BIG.dat.gz" } else { "BIG.dat" };
            assert_eq!(pieces[0].name, format!("{stem}.001"));
            let out = d.path().join(format!("out-{compress}"));
            let joined = join(&last.path, &out).unwrap();
            assert_eq!(std::fs::read(joined).unwrap(), data);
        }
        // A damaged segment is named.
        let work = d.path().join("work-false");
        std::fs::write(work.join("BIG.dat.002"), b"garbage").unwrap();
        let err = join(&work.join("BIG.dat.manifest"), &d.path().join("x")).unwrap_err();
        assert!(err.contains("BIG.dat.002 is damaged"), "{err}");
        // Small payloads go whole.
        let one = payload(&src, "BIG.dat", false, Some(10 << 20), &work).unwrap();
        assert_eq!((one.len(), one[0].path.clone()), (1, src));
    }
}
