//! A project folder (ordo.yaml, inventory, jobs, known_hosts) and a way to run the real
//! `controller` binary in it.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::{controller_bin, temp_dir};

pub struct Project {
    dir: tempfile::TempDir,
}

/// What a `controller` run printed and returned.
#[derive(Debug)]
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    /// Panics with the whole output when the exit code is not `code`.
    pub fn expect_code(self, code: i32) -> Self {
        assert_eq!(
            self.code, code,
            "expected exit code {code}, got {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }
}

impl Project {
    pub fn new() -> Self {
        let dir = temp_dir("project");
        std::fs::create_dir_all(dir.path().join("jobs")).expect("jobs dir");
        Project { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file relative to the project folder.
    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&p, text).expect("write");
        p
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(rel)).unwrap_or_default()
    }

    /// Runs `controller -C <project> <args>`.
    pub fn controller(&self, args: &[&str]) -> Outcome {
        self.controller_env(args, &[])
    }

    /// Runs `controller -C <project> <args>` with extra environment variables.
    pub fn controller_env(&self, args: &[&str], env: &[(&str, &str)]) -> Outcome {
        let out = Command::new(controller_bin())
            .envs(env.iter().copied())
            .arg("-C")
            .arg(self.dir.path())
            .args(args)
            .env_remove("ORDO_PROJECT")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .output()
            .expect("run controller");
        Outcome {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Project {
    /// Runs `controller -C <project> <args>`, waits until `ready` holds (checked every
    /// 50 ms, 20 s at most), interrupts it as Ctrl-C would (SIGINT), and returns what it did.
    pub fn controller_interrupted(&self, args: &[&str], ready: impl FnMut() -> bool) -> Outcome {
        let child = Command::new(controller_bin())
            .arg("-C")
            .arg(self.dir.path())
            .args(args)
            .env_remove("ORDO_PROJECT")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run controller");
        crate::wait_until(
            "the run to be under way",
            std::time::Duration::from_secs(20),
            ready,
        );
        crate::sh(&format!("kill -INT {}", child.id()));
        let out = child.wait_with_output().expect("wait for controller");
        Outcome {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Default for Project {
    fn default() -> Self {
        Self::new()
    }
}

/// The files of a `.tar.gz`, by path, with their contents.
pub fn untar_gz(bytes: &[u8]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    for entry in archive.entries().expect("tar entries") {
        let mut e = entry.expect("tar entry");
        if !e.header().entry_type().is_file() {
            continue;
        }
        let path = e.path().expect("path").display().to_string();
        let mut s = String::new();
        e.read_to_string(&mut s).expect("read entry");
        out.insert(path, s);
    }
    out
}
