//! A PostgreSQL server of the test's own, on its own port, that the test
//! may kill and start again: for outages, without touching the machine's
//! shared server. Needs the server binaries (Debian's postgresql package)
//! and root, which CI has; `start` is None elsewhere.

use super::backend::TempDir;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub struct PrivatePostgres {
    dir: TempDir,
    bin: PathBuf,
    pub port: u16,
}

fn bin_dir() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("pg_ctl").exists())
        .collect();
    versions.sort();
    versions.pop()
}

/// Runs a server binary as the `postgres` user (initdb refuses root).
fn as_postgres(bin: &Path, args: &[&str]) -> bool {
    Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(bin)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl PrivatePostgres {
    /// A fresh cluster, started. Its tests are ignored where
    /// `KEFU_TEST_POSTGRES_URL` is unset; where it is set, PostgreSQL's
    /// server binaries must be installed too.
    pub fn start() -> PrivatePostgres {
        super::backend::service_url("KEFU_TEST_POSTGRES_URL");
        let bin = bin_dir().expect("PostgreSQL's server binaries under /usr/lib/postgresql");
        let dir = TempDir::new();
        let _ = Command::new("chown")
            .args(["-R", "postgres", &dir.path().display().to_string()])
            .status();
        let port = std::net::TcpListener::bind(("127.0.0.1", 0))
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let data = dir.path().join("data").display().to_string();
        let initdb = bin.join("initdb");
        assert!(
            as_postgres(
                &initdb,
                &["-D", &data, "-U", "postgres", "--auth=trust", "-E", "UTF8"]
            ),
            "initdb failed"
        );
        let pg = PrivatePostgres { dir, bin, port };
        pg.up();
        pg
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the server (again), waiting until it accepts connections.
    pub fn up(&self) {
        let data = self.dir.path().join("data").display().to_string();
        let log = self.dir.path().join("log").display().to_string();
        let socket_dir = self.dir.path().display().to_string();
        let options = format!(
            "-p {} -k {socket_dir} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port
        );
        assert!(
            as_postgres(
                &self.bin.join("pg_ctl"),
                &["-D", &data, "-o", &options, "-l", &log, "-w", "start"]
            ),
            "pg_ctl start failed"
        );
    }

    /// Stops the server as a crash would: no shutdown checkpoint, every
    /// connection cut.
    pub fn crash(&self) {
        let data = self.dir.path().join("data").display().to_string();
        as_postgres(
            &self.bin.join("pg_ctl"),
            &["-D", &data, "-m", "immediate", "-w", "stop"],
        );
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        self.crash();
    }
}
