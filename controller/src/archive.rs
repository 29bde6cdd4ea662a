//! The run's archive: one `tar.gz` of the execution folder (summary + each server's files).

use std::fs::File;
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;

/// Writes `<exec_dir>/<name>.tar.gz` holding everything in `exec_dir` under the folder
/// `<name>/`. Blocking: call it from `spawn_blocking`.
pub fn build(exec_dir: &Path, name: &str) -> std::io::Result<PathBuf> {
    let target = exec_dir.join(format!("{name}.tar.gz"));
    let tmp = exec_dir.join(format!(".{name}.tar.gz.part"));
    let file = File::create(&tmp)?;
    let mut tar = tar::Builder::new(GzEncoder::new(file, Compression::default()));
    tar.follow_symlinks(false);
    let mut entries: Vec<PathBuf> = std::fs::read_dir(exec_dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p != &tmp && p != &target)
        .collect();
    entries.sort();
    for path in entries {
        let rel = Path::new(name).join(path.file_name().unwrap_or_default());
        if path.is_dir() {
            tar.append_dir_all(&rel, &path)?;
        } else {
            tar.append_path_with_name(&path, &rel)?;
        }
    }
    tar.into_inner()?.finish()?.sync_all()?;
    std::fs::rename(&tmp, &target)?;
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::GzDecoder;

    #[test]
    fn archives_the_tree_under_one_folder() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("web1")).unwrap();
        std::fs::write(dir.path().join("web1/fichier_log.txt"), "one").unwrap();
        std::fs::write(dir.path().join("summary.txt"), "sum").unwrap();
        let out = build(dir.path(), "vip-1").unwrap();
        let mut names: Vec<String> = tar::Archive::new(GzDecoder::new(File::open(&out).unwrap()))
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        names.sort();
        assert_eq!(
            names,
            vec![
                "vip-1/summary.txt",
                "vip-1/web1/",
                "vip-1/web1/fichier_log.txt"
            ]
        );
    }
}
