//! A project folder (ordo.yaml, inventory, jobs, known_hosts) and a way to run the real
//! `controller` binary in it.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::{controller_bin, temp_dir};

/// The password of the accounts tests add.
pub const PASSWORD: &str = "correct horse battery staple";

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

    /// Retries the failed servers of the latest execution, which must succeed.
    pub fn retry_failed(&self) -> Outcome {
        self.controller(&[
            "executions",
            "retry",
            "latest",
            "--failed-only",
            "--no-progress",
            "--no-mail",
        ])
        .expect_code(0)
    }

    /// Runs `controller -C <project> <args>` with extra environment variables.
    /// Runs `controller -C <project> <args>` with `input` on its standard input.
    pub fn controller_stdin(&self, args: &[&str], input: &str) -> Outcome {
        use std::io::Write;
        let mut child = Command::new(controller_bin())
            .arg("-C")
            .arg(self.dir.path())
            .args(args)
            .env_remove("ORDO_PROJECT")
            .env("NO_COLOR", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run controller");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
        let out = child.wait_with_output().expect("controller");
        Outcome {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Adds an account (`users add NAME --role ROLE --email NAME@example.com` and `extra`)
    /// whose password is [`PASSWORD`].
    pub fn add_user(&self, name: &str, role: &str, extra: &[&str]) {
        let email = format!("{name}@example.com");
        let mut args = vec![
            "users",
            "add",
            name,
            "--role",
            role,
            "--email",
            &email,
            "--password-stdin",
        ];
        args.extend_from_slice(extra);
        let out = self.controller_stdin(&args, &format!("{PASSWORD}\n"));
        assert_eq!(
            out.code, 0,
            "users add {name}: {}{}",
            out.stdout, out.stderr
        );
    }

    /// A new API token of `user` (`tokens create`).
    pub fn token(&self, user: &str) -> String {
        let out = self.controller(&["tokens", "create", "--user", user]);
        assert_eq!(out.code, 0, "tokens create: {}{}", out.stdout, out.stderr);
        out.stdout.trim().to_string()
    }

    /// An administrator `admin` and a token of it: what tests that only need the API use.
    pub fn admin_token(&self) -> String {
        self.add_user("admin", "admin", &[]);
        self.token("admin")
    }

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
        self.controller_signalled(args, "INT", ready)
    }

    /// Runs `controller <args>`, waits until `ready`, then sends it `signal` (`INT`,
    /// `TERM`, `HUP`, `KILL`...).
    pub fn controller_signalled(
        &self,
        args: &[&str],
        signal: &str,
        ready: impl FnMut() -> bool,
    ) -> Outcome {
        self.controller_during(args, ready, |pid| {
            crate::sh(&format!("kill -{signal} {pid}"));
        })
    }

    /// Runs `controller -C <project> <args>`, waits until `ready` holds (20 s at most),
    /// calls `during` with its pid, then waits for it to end.
    pub fn controller_during(
        &self,
        args: &[&str],
        ready: impl FnMut() -> bool,
        during: impl FnOnce(u32),
    ) -> Outcome {
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
        during(child.id());
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

/// A `controller serve` process of a project; its log (stderr, `ORDO_LOG=info`) goes to a
/// file. Killed on drop.
pub struct Serve {
    child: Option<std::process::Child>,
    pub log_path: PathBuf,
}

impl Project {
    /// Starts `controller -C <project> [args] serve [serve_args]`.
    pub fn serve(&self, args: &[&str], serve_args: &[&str]) -> Serve {
        let n = std::fs::read_dir(self.dir.path())
            .map(|d| d.count())
            .unwrap_or(0);
        let log_path = self.dir.path().join(format!("serve-{n}.log"));
        let log = std::fs::File::create(&log_path).expect("serve log");
        let child = Command::new(controller_bin())
            .arg("-C")
            .arg(self.dir.path())
            .args(args)
            .arg("serve")
            .args(serve_args)
            .env_remove("ORDO_PROJECT")
            .env("ORDO_LOG", "info,sqlx=warn")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start controller serve");
        Serve {
            child: Some(child),
            log_path,
        }
    }

    /// The project's default SQLite database.
    pub fn sqlite_url(&self) -> String {
        format!(
            "sqlite://{}?mode=rwc",
            self.dir.path().join("data/ordo.db").display()
        )
    }
}

impl Serve {
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, |c| c.id())
    }

    /// Waits until the log has a line containing `text`.
    pub fn wait_log(&self, text: &str, timeout: std::time::Duration) {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if self.log().contains(text) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!(
            "no `{text}` in the serve log within {timeout:?}:\n{}",
            self.log()
        );
    }

    /// SIGKILL: the controller dies without a word, as in a crash.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, as systemd stops it; returns the exit code.
    pub fn stop(&mut self) -> i32 {
        match self.child.take() {
            Some(mut c) => {
                crate::sh(&format!("kill -TERM {}", c.id()));
                c.wait().map(|s| s.code().unwrap_or(-1)).unwrap_or(-1)
            }
            None => -1,
        }
    }

    pub fn signal(&self, sig: &str) {
        crate::sh(&format!("kill -{sig} {}", self.pid()));
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.kill();
    }
}
