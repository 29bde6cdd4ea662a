//! A real PostgreSQL server (the Debian 15 binaries) in a temporary folder, on a free port,
//! run as the `postgres` user with trust authentication on 127.0.0.1 only.

use std::path::PathBuf;
use std::process::Command;

use crate::{free_port, sh, temp_dir, wait_for_port};

pub struct Postgres {
    dir: tempfile::TempDir,
    pub port: u16,
}

/// Where Debian puts the server binaries.
pub fn bin_dir() -> PathBuf {
    for v in ["17", "16", "15"] {
        let p = PathBuf::from(format!("/usr/lib/postgresql/{v}/bin"));
        if p.join("initdb").exists() {
            return p;
        }
    }
    panic!(
        "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin (`apt-get install postgresql`, or run `tests/run.sh`, which installs every prerequisite of the tests)"
    );
}

fn as_postgres(cmd: &str) {
    let out = Command::new("runuser")
        .args(["-u", "postgres", "--", "/bin/sh", "-c", cmd])
        .output()
        .expect("runuser");
    assert!(
        out.status.success(),
        "`{cmd}` failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Postgres {
    pub fn start() -> Self {
        let dir = temp_dir("pg");
        let bin = bin_dir();
        let port = free_port();
        sh(&format!("chown postgres {}", dir.path().display()));
        let data = dir.path().join("data");
        as_postgres(&format!(
            "{}/initdb -D {} -U postgres --auth=trust -E UTF8 --no-sync >/dev/null",
            bin.display(),
            data.display()
        ));
        as_postgres(&format!(
            "{}/pg_ctl -D {} -l {}/server.log -w -o \"-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off\" start >/dev/null",
            bin.display(),
            data.display(),
            dir.path().display(),
            dir.path().display()
        ));
        wait_for_port(port, "postgres");
        Postgres { dir, port }
    }

    /// Stops the server (`-m fast`: every connection is cut, committed data kept) for
    /// `down`, then starts it again: an outage, or a restart for maintenance.
    pub fn outage(&self, down: std::time::Duration) {
        let data = self.dir.path().join("data");
        as_postgres(&format!(
            "{}/pg_ctl -D {} -m fast -w stop >/dev/null",
            bin_dir().display(),
            data.display()
        ));
        std::thread::sleep(down);
        as_postgres(&format!(
            "{}/pg_ctl -D {} -l {}/server.log -w -o \"-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off\" start >/dev/null",
            bin_dir().display(),
            data.display(),
            self.dir.path().display(),
            self.dir.path().display(),
            port = self.port
        ));
        wait_for_port(self.port, "postgres");
    }

    /// Creates a database and returns its URL.
    pub fn database(&self, name: &str) -> String {
        as_postgres(&format!(
            "{}/createdb -h 127.0.0.1 -p {} -U postgres {name}",
            bin_dir().display(),
            self.port
        ));
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args([
                "-u",
                "postgres",
                "--",
                &format!("{}/pg_ctl", bin_dir().display()),
                "-D",
                &self.dir.path().join("data").display().to_string(),
                "-m",
                "immediate",
                "stop",
            ])
            .output();
    }
}
