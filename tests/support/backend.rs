//! Where a test server keeps its data: the backend, a database of its own,
//! a temporary data dir.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Where a server keeps its messages.
#[derive(Clone, Debug)]
pub enum Backend {
    /// The embedded SQLite at `DATA_DIR/kefu.db`.
    Sqlite,
    /// A MySQL server; the URL is a base whose database name is replaced.
    Mysql(String),
    /// A PostgreSQL server; the URL is a base whose database name is replaced.
    Postgres(String),
    /// A cluster (two registers on Redis, two workers, two gateways) on a
    /// server database: `database` is a base URL as above.
    Cluster { database: String, redis: String },
}

impl Backend {
    /// MySQL from `KEFU_TEST_MYSQL_URL`.
    pub fn mysql() -> Backend {
        Backend::Mysql(service_url("KEFU_TEST_MYSQL_URL"))
    }

    /// PostgreSQL from `KEFU_TEST_POSTGRES_URL`.
    pub fn postgres() -> Backend {
        Backend::Postgres(service_url("KEFU_TEST_POSTGRES_URL"))
    }

    /// A cluster on MySQL and Redis.
    pub fn cluster_mysql() -> Backend {
        let database = service_url("KEFU_TEST_MYSQL_URL");
        let redis = service_url("KEFU_TEST_REDIS_URL");
        Backend::Cluster { database, redis }
    }

    /// A cluster on PostgreSQL and Redis.
    pub fn cluster_postgres() -> Backend {
        let database = service_url("KEFU_TEST_POSTGRES_URL");
        let redis = service_url("KEFU_TEST_REDIS_URL");
        Backend::Cluster { database, redis }
    }

    /// A URL naming a database of its own for one server, or `None` for SQLite
    /// (the server's default, inside the data dir).
    pub fn fresh_database_url(&self) -> Option<String> {
        match self {
            Backend::Sqlite => None,
            Backend::Mysql(base)
            | Backend::Postgres(base)
            | Backend::Cluster { database: base, .. } => {
                Some(with_database(base, &format!("kefu_t_{}", unique_hex())))
            }
        }
    }
}

/// The URL of a service a test needs. Such tests are ignored at build time
/// when the variable is unset (see `services_cfg.rs`), so one that runs
/// without it was asked for (`--include-ignored`, or `CI`) and fails.
pub fn service_url(var: &str) -> String {
    match std::env::var(var) {
        Ok(url) if !url.trim().is_empty() => url.trim().to_owned(),
        _ => panic!("{var} is not set: this test needs the service it names"),
    }
}

/// `scheme://auth@host:port/old?query` with `old` replaced by `name`.
fn with_database(base: &str, name: &str) -> String {
    let (head, query) = match base.split_once('?') {
        Some((head, query)) => (head, Some(query)),
        None => (base, None),
    };
    let authority_start = head.find("://").map_or(0, |i| i + 3);
    let head = match head[authority_start..].find('/') {
        Some(i) => &head[..authority_start + i],
        None => head,
    };
    match query {
        Some(query) => format!("{head}/{name}?{query}"),
        None => format!("{head}/{name}"),
    }
}

/// 16 hex digits, different for every call in every test process.
pub fn unique_hex() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    std::time::SystemTime::now().hash(&mut hasher);
    std::process::id().hash(&mut hasher);
    COUNTER.fetch_add(1, Ordering::Relaxed).hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

/// A directory removed on drop, kept (and named) when the test failed.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new() -> TempDir {
        let path = std::env::temp_dir().join(format!("kefu-test-{}", unique_hex()));
        std::fs::create_dir_all(&path).expect("create a temporary data dir");
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "kept the data dir of the failed test: {}",
                self.path.display()
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Drops a server database a test created; failures only print, since this
/// runs while a test is being torn down.
pub fn drop_database(url: &str) {
    let url = url.to_owned();
    // A runtime of its own, on a thread of its own: this may run inside a
    // test's runtime, which cannot be blocked on.
    let dropped = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
        match runtime {
            Ok(rt) => rt
                .block_on(kefu_store::drop_database(&url))
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        }
    })
    .join();
    if let Ok(Err(e)) = dropped {
        eprintln!("could not drop a test database: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn a_database_name_is_replaced_and_the_query_kept() {
        assert_eq!(
            with_database("mysql://root@127.0.0.1:3306/test", "x"),
            "mysql://root@127.0.0.1:3306/x"
        );
        assert_eq!(
            with_database(
                "postgres://postgres@127.0.0.1:5432/test?sslmode=disable",
                "x"
            ),
            "postgres://postgres@127.0.0.1:5432/x?sslmode=disable"
        );
        assert_eq!(with_database("mysql://root@h:1", "x"), "mysql://root@h:1/x");
    }
}
