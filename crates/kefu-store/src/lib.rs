//! Kefu's storage: every message, task and account, in SQL through sea-orm.
//!
//! Workers own a [`Store`]; nothing else touches the database. SQLite is the
//! embedded default (`DATA_DIR/kefu.db`), MySQL/MariaDB and PostgreSQL serve
//! production, all with the one schema of [`migration`]. Messages are written
//! by the [`writer`], which commits many per transaction and answers each only
//! once its row is committed: that answer is what lets a worker ack.
//!
//! # Layout
//! - [`entity`]: sea-orm entities, one per table.
//! - [`migration`]: the schema.
//! - [`writer`]: group commit of new messages, with dedup on
//!   `(sender, client_msg_id)`; on SQLite through a connection of its own.
//! - [`users`], [`tasks`], [`messages`], [`files`], [`quick_replies`]: queries,
//!   one file per concern.
//! - [`metrics`]: batch sizes and commit times.

#![forbid(unsafe_code)]

mod breaker;
pub mod entity;
pub mod files;
pub mod messages;
pub mod metrics;
pub mod migration;
pub mod quick_replies;
pub mod tasks;
pub mod users;
pub mod writer;

use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr, Statement,
};
use sea_orm_migration::MigratorTrait;
use std::time::Duration;

pub use writer::{NewMessage, NewTask, Writer};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] DbErr),
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("sqlite journal mode {0:?}, not wal")]
    NotWal(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("conflict: {0}")]
    Conflict(String),
    /// A user id is one person's: a customer's id cannot sign in as an
    /// agent, nor an agent's as a customer.
    #[error("user id {id:?} belongs to {}", article(role))]
    RoleTaken { id: String, role: String },
    #[error(
        "unsupported database url {0:?}: use sqlite://PATH, mysql://, mariadb:// or postgres://"
    )]
    UnsupportedUrl(String),
    #[error("{0}")]
    BadUrl(String),
    #[error("cannot reach the database at {address}: {reason}")]
    Refused { address: String, reason: String },
    /// The migration lock file beside an SQLite database cannot be used
    /// (permissions): waiting would not help.
    #[error("migration lock file {0}")]
    LockFile(String),
    #[error("another `kefu migrate` (or worker) held the schema lock for {0} s; is one stuck?")]
    MigrationLockTimeout(u64),
    #[error("the message writer has stopped")]
    WriterStopped,
    #[error("database unreachable: {0}")]
    Unreachable(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

fn article(role: &str) -> String {
    match role {
        "agent" | "admin" => format!("an {role}"),
        _ => format!("a {role}"),
    }
}

impl StoreError {
    /// The database cannot be reached (as opposed to refusing one
    /// statement): retrying the same work at once would only fail again.
    pub fn is_unreachable(&self) -> bool {
        match self {
            StoreError::Db(e) => breaker::unreachable(e),
            StoreError::Unreachable(_) | StoreError::Refused { .. } => true,
            _ => false,
        }
    }
}

/// What a committed SQLite transaction survives. MySQL and PostgreSQL follow
/// their servers' own settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// A crash of the machine (synchronous=FULL).
    PowerLoss,
    /// A crash of the process, kill -9 included (synchronous=NORMAL; the
    /// writer syncs the WAL every 50 ms beside its commits, so a crash of
    /// the machine takes at most about that much).
    ProcessCrash,
}

impl Durability {
    /// SQLite's `synchronous` setting for it.
    fn sqlite_synchronous(self) -> &'static str {
        match self {
            Durability::PowerLoss => "full",
            Durability::ProcessCrash => "normal",
        }
    }

    /// The settings every connection to the SQLite file takes, the pool's
    /// and the writer's own alike: what a commit survives, and how often
    /// the WAL is copied into the database.
    pub(crate) fn sqlite_pragmas(self) -> [(&'static str, String); 2] {
        [
            ("synchronous", self.sqlite_synchronous().to_owned()),
            ("wal_autocheckpoint", WAL_CHECKPOINT_PAGES.to_string()),
        ]
    }
}

/// A connection pool to one Kefu database.
#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) db: breaker::Guarded,
    /// The database file, when it is SQLite: the message writer opens a
    /// connection of its own to it.
    pub(crate) sqlite: Option<SqliteFile>,
    /// A server database's URL, when it is one: the message writer opens a
    /// connection of its own to it, on its own thread.
    pub(crate) server_url: Option<String>,
}

/// WAL pages after which a commit copies the WAL into the database file
/// (SQLite's `wal_autocheckpoint`; its default is 1,000). A checkpoint
/// ends with an `fsync` of the database file, about 2 ms on this
/// project's machine against 0.2 ms for a commit's `fsync` of the WAL,
/// and every message behind it waits: at 1,000 pages the writer stopped
/// for one 13 times a second at a steady 2,000 msgs/s, and those stops
/// were the latency's tail. At 10,000 (a WAL of up to 40 MB) the pages a
/// checkpoint copies are mostly the same hot index pages, so there are
/// fewer stops for nearly the same work each (docs/benchmarks.md).
pub(crate) const WAL_CHECKPOINT_PAGES: u32 = 10_000;

/// An SQLite database file and what its commits survive.
#[derive(Clone, Debug)]
pub(crate) struct SqliteFile {
    pub path: std::path::PathBuf,
    pub durability: Durability,
}

impl Store {
    /// Connects to `url`, creating the database (or the SQLite file) if it is
    /// missing, syncing every SQLite commit to disk. Does not migrate: see
    /// [`Store::migrate`].
    pub async fn connect(url: &str) -> Result<Store> {
        Self::connect_with(url, Durability::PowerLoss).await
    }

    /// Like [`Store::connect`], choosing what an SQLite commit survives.
    pub async fn connect_with(url: &str, durability: Durability) -> Result<Store> {
        // MariaDB speaks MySQL's protocol; operators write its own name.
        let url = &match url.strip_prefix("mariadb://") {
            Some(rest) => format!("mysql://{rest}"),
            None => url.to_owned(),
        };
        check_url(url)?;
        reachable(url).await?;
        create_database_if_missing(url).await?;
        let mut options = pool_options(url);
        let mut sqlite = None;
        if url.starts_with("sqlite:") {
            let file: sea_orm::sqlx::sqlite::SqliteConnectOptions = url
                .parse()
                .map_err(|e| StoreError::UnsupportedUrl(format!("{url}: {e}")))?;
            sqlite = plain_file(url).then(|| SqliteFile {
                path: file.get_filename().to_owned(),
                durability,
            });
            // WAL: readers never wait for the writer. FULL syncs the WAL on
            // every commit; NORMAL leaves that to checkpoints, which a killed
            // process survives but a power loss may not.
            options.max_connections(4).map_sqlx_sqlite_opts(move |o| {
                let o = o
                    .journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                    .busy_timeout(Duration::from_secs(30))
                    .create_if_missing(true);
                durability
                    .sqlite_pragmas()
                    .into_iter()
                    .fold(o, |o, (name, value)| o.pragma(name, value))
            });
        } else {
            options
                .max_connections(16)
                .min_connections(1)
                .acquire_timeout(SERVER_ACQUIRE);
            let db = server_pool(url, options, false).await?;
            return Ok(Store {
                db: breaker::Guarded::new(db),
                sqlite,
                server_url: Some(url.clone()),
            });
        }
        // Turning a fresh file to WAL takes an exclusive lock, and SQLite
        // answers "database is locked" at once, past its busy handler, when
        // another process opens the same new file at that moment (a
        // `kefu migrate` beside a starting server): try again a while.
        let mut tries = 0;
        let db = loop {
            match Database::connect(options.clone()).await {
                Err(e) if tries < 100 && e.to_string().contains("database is locked") => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                connected => break connected?,
            }
        };
        Ok(Store {
            db: breaker::Guarded::new(db),
            sqlite,
            server_url: None,
        })
    }

    /// For a server database, a store of one connection for the message
    /// writer, opened at its first statement by the runtime that makes
    /// this call, so that its socket's answers wake that runtime alone.
    pub(crate) async fn writer_store(&self) -> Option<Result<Store>> {
        let url = self.server_url.as_ref()?;
        let mut options = pool_options(url);
        options
            .max_connections(1)
            .min_connections(0)
            .acquire_timeout(SERVER_ACQUIRE);
        Some(server_pool(url, options, true).await.map(|db| Store {
            db: breaker::Guarded::new(db),
            sqlite: None,
            server_url: None,
        }))
    }

    /// Creates or upgrades the schema. On MySQL and PostgreSQL under a
    /// database-wide lock, so migrations started at once (a `kefu migrate`
    /// and workers starting beside it) run one after the other and all
    /// succeed; on SQLite under an exclusive `flock` of the database file
    /// (SQLite's own locks are `fcntl` ones, which `flock` leaves alone).
    pub async fn migrate(&self) -> Result<()> {
        let _lock = MigrationLock::take(&self.db.inner, self.sqlite.as_ref()).await?;
        migration::Migrator::up(&self.db.inner, None).await?;
        Ok(())
    }

    /// False while the database is known to be unreachable (see the
    /// breaker in front of it): background work should wait for a client's
    /// request to find it back.
    pub fn reachable(&self) -> bool {
        self.db.reachable()
    }

    /// Whether the store is SQLite, whose one writer takes every write.
    pub fn is_sqlite(&self) -> bool {
        self.backend() == DbBackend::Sqlite
    }

    pub fn backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    pub fn connection(&self) -> &DatabaseConnection {
        &self.db.inner
    }
}

/// How long a migration waits for another one to finish.
const MIGRATION_LOCK_WAIT: u64 = 120;

/// A session-level advisory lock held on a connection of its own for as
/// long as the migration runs; released on drop, or by the server when the
/// process dies and its connection closes.
struct MigrationLock {
    conn: Option<LockConn>,
}

enum LockConn {
    MySql(sea_orm::sqlx::pool::PoolConnection<sea_orm::sqlx::MySql>),
    Postgres(sea_orm::sqlx::pool::PoolConnection<sea_orm::sqlx::Postgres>),
    /// Unlocked when the file closes.
    Sqlite(std::fs::File),
}

/// `pg_advisory_lock` takes a number: "kefu" in ASCII, then "mig".
const PG_LOCK_KEY: i64 = 0x006b_6566_756d_6967;

impl MigrationLock {
    async fn take(db: &DatabaseConnection, sqlite: Option<&SqliteFile>) -> Result<MigrationLock> {
        use sea_orm::sqlx;
        let sqlx_err =
            |e: sqlx::Error| StoreError::Db(DbErr::Conn(sea_orm::RuntimeErr::SqlxError(e)));
        let conn = match db.get_database_backend() {
            DbBackend::MySql => {
                let mut conn = db
                    .get_mysql_connection_pool()
                    .acquire()
                    .await
                    .map_err(sqlx_err)?;
                let got: Option<i64> = sqlx::query_scalar("SELECT GET_LOCK('kefu_migrate', ?)")
                    .bind(MIGRATION_LOCK_WAIT as i64)
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(sqlx_err)?;
                if got != Some(1) {
                    return Err(StoreError::MigrationLockTimeout(MIGRATION_LOCK_WAIT));
                }
                Some(LockConn::MySql(conn))
            }
            DbBackend::Postgres => {
                let mut conn = db
                    .get_postgres_connection_pool()
                    .acquire()
                    .await
                    .map_err(sqlx_err)?;
                let wait = format!("SET lock_timeout = '{MIGRATION_LOCK_WAIT}s'");
                sqlx::query(&wait)
                    .execute(&mut *conn)
                    .await
                    .map_err(sqlx_err)?;
                let locked = sqlx::query("SELECT pg_advisory_lock($1)")
                    .bind(PG_LOCK_KEY)
                    .execute(&mut *conn)
                    .await;
                let _ = sqlx::query("SET lock_timeout = 0")
                    .execute(&mut *conn)
                    .await;
                match locked {
                    Ok(_) => Some(LockConn::Postgres(conn)),
                    Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("55P03") => {
                        return Err(StoreError::MigrationLockTimeout(MIGRATION_LOCK_WAIT))
                    }
                    Err(e) => return Err(sqlx_err(e)),
                }
            }
            DbBackend::Sqlite => match sqlite {
                Some(file) => Some(LockConn::Sqlite(lock_file(&file.path).await?)),
                None => None,
            },
        };
        Ok(MigrationLock { conn })
    }
}

impl Drop for MigrationLock {
    fn drop(&mut self) {
        use sea_orm::sqlx;
        let Some(conn) = self.conn.take() else { return };
        // Unlocked on a task of its own: drop cannot wait. Should the
        // process end first, the server unlocks as the connection closes.
        tokio::spawn(async move {
            let unlocked = match conn {
                LockConn::MySql(mut c) => sqlx::query("SELECT RELEASE_LOCK('kefu_migrate')")
                    .execute(&mut *c)
                    .await
                    .map(drop),
                LockConn::Postgres(mut c) => sqlx::query("SELECT pg_advisory_unlock($1)")
                    .bind(PG_LOCK_KEY)
                    .execute(&mut *c)
                    .await
                    .map(drop),
                LockConn::Sqlite(file) => {
                    drop(file);
                    Ok(())
                }
            };
            if let Err(e) = unlocked {
                tracing::warn!(error = %e, "cannot release the migration lock");
            }
        });
    }
}

/// An exclusive `flock` of the file `DB-migrate.lock` beside the database
/// `db`, waited for. Never of the database file itself: closing any
/// descriptor of it would drop the `fcntl` locks SQLite holds on it in this
/// process.
async fn lock_file(db: &std::path::Path) -> Result<std::fs::File> {
    let mut name = db.as_os_str().to_owned();
    name.push("-migrate.lock");
    let path = std::path::PathBuf::from(name);
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options
        .open(&path)
        .map_err(|e| StoreError::LockFile(format!("{}: {e}", path.display())))?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(MIGRATION_LOCK_WAIT);
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(StoreError::MigrationLockTimeout(MIGRATION_LOCK_WAIT))
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(StoreError::LockFile(format!(
                    "locking {}: {e}",
                    path.display()
                )))
            }
        }
    }
}

/// Refuses a URL that names no database or no known scheme, saying what
/// one should look like.
fn check_url(url: &str) -> Result<()> {
    if url.starts_with("sqlite:") {
        return Ok(());
    }
    let server =
        url.starts_with("mysql:") || url.starts_with("postgres:") || url.starts_with("postgresql:");
    if !server {
        let hint = if url.contains("://") {
            String::new()
        } else {
            format!("; for a file, write sqlite://{url}?mode=rwc")
        };
        return Err(StoreError::BadUrl(format!(
            "database URL {:?} is not sqlite://PATH, mysql://, mariadb:// or postgres://{hint}",
            redacted(url)
        )));
    }
    if split_database(url).is_none() {
        return Err(StoreError::BadUrl(format!(
            "database URL {:?} names no database; add one: mysql://USER@HOST:3306/kefu or \
             postgres://USER@HOST:5432/kefu",
            redacted(url)
        )));
    }
    Ok(())
}

/// Says within seconds, with the operating system's reason, when a MySQL or
/// PostgreSQL server cannot be reached at all: the pool would retry
/// quietly until its timeout and then report only that it timed out.
async fn reachable(url: &str) -> Result<()> {
    let server = url.starts_with("mysql:") || url.starts_with("postgres");
    let Some(parsed) = url::Url::parse(url).ok().filter(|_| server) else {
        return Ok(());
    };
    let default_port = if url.starts_with("mysql:") {
        3306
    } else {
        5432
    };
    let Some(host) = parsed.host_str().filter(|h| !h.is_empty()) else {
        // A Unix socket: the driver reports that itself.
        return Ok(());
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = parsed.port().unwrap_or(default_port);
    let address = format!("{host}:{port}");
    let reason =
        match tokio::time::timeout(CONNECT_CHECK, tokio::net::TcpStream::connect((host, port)))
            .await
        {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {} s", CONNECT_CHECK.as_secs()),
        };
    Err(StoreError::Refused { address, reason })
}

/// How long [`reachable`] waits for a TCP connection.
const CONNECT_CHECK: Duration = Duration::from_secs(4);

/// `url` with its password replaced by `***`, for messages and logs.
pub fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

/// Whether an SQLite URL names a file that a second connection opens as the
/// pool's do: not in memory (that database exists only inside the pool's
/// connections), and no parameter but `mode=rwc` or `mode=rw` (a VFS, a
/// shared cache or read-only would differ).
fn plain_file(url: &str) -> bool {
    let (path, params) = url.split_once('?').unwrap_or((url, ""));
    !path.contains(":memory:")
        && params
            .split('&')
            .all(|p| matches!(p, "" | "mode=rwc" | "mode=rw"))
}

/// Splits `scheme://.../NAME?params` into the server URL and the database name.
fn split_database(url: &str) -> Option<(String, String)> {
    let (base, params) = url
        .split_once('?')
        .map_or((url, None), |(b, p)| (b, Some(p)));
    let slash = base.rfind('/')?;
    let name = &base[slash + 1..];
    if name.is_empty() || base[..slash].ends_with('/') {
        return None;
    }
    let server = &base[..slash];
    let server = match params {
        Some(p) => format!("{server}/?{p}"),
        None => server.to_owned(),
    };
    Some((server, name.to_owned()))
}

fn checked_name(name: &str) -> Result<&str> {
    if name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        Ok(name)
    } else {
        Err(StoreError::UnsupportedUrl(format!(
            "database name {name:?}"
        )))
    }
}

/// Creates the database named in a MySQL or PostgreSQL URL if it does not
/// exist; SQLite files are created on connect.
pub async fn create_database_if_missing(url: &str) -> Result<()> {
    if url.starts_with("sqlite:") {
        return Ok(());
    }
    let (server, name) =
        split_database(url).ok_or_else(|| StoreError::UnsupportedUrl(url.into()))?;
    let name = checked_name(&name)?;
    if url.starts_with("mysql:") || url.starts_with("mariadb:") {
        let db = Database::connect(admin_options(server)).await?;
        db.execute_unprepared(&format!(
            "CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4"
        ))
        .await?;
        db.close().await?;
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        let db = Database::connect(admin_options(format!("{server}/postgres"))).await?;
        let exists = db
            .query_one(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT 1 FROM pg_database WHERE datname = $1",
                [name.into()],
            ))
            .await?
            .is_some();
        if !exists {
            // Two processes may race here; the loser's error is harmless.
            if let Err(e) = db
                .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                .await
            {
                tracing::debug!(error = %e, "create database raced");
            }
        }
        db.close().await?;
    } else {
        return Err(StoreError::UnsupportedUrl(url.into()));
    }
    Ok(())
}

/// A short-lived connection to the server, not to the database: it must
/// fail within seconds (a wrong password, a missing grant), not retry.
fn admin_options(server: String) -> ConnectOptions {
    ConnectOptions::new(server)
        .sqlx_logging(false)
        .max_connections(1)
        .connect_timeout(CONNECT_CHECK)
        .acquire_timeout(CONNECT_CHECK)
        .to_owned()
}

/// Drops the database of a MySQL or PostgreSQL URL (tests clean up with it).
pub async fn drop_database(url: &str) -> Result<()> {
    let (server, name) =
        split_database(url).ok_or_else(|| StoreError::UnsupportedUrl(url.into()))?;
    let name = checked_name(&name)?;
    if url.starts_with("mysql:") || url.starts_with("mariadb:") {
        let db =
            Database::connect(ConnectOptions::new(server).sqlx_logging(false).to_owned()).await?;
        db.execute_unprepared(&format!("DROP DATABASE IF EXISTS `{name}`"))
            .await?;
        db.close().await?;
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        let db = Database::connect(
            ConnectOptions::new(format!("{server}/postgres"))
                .sqlx_logging(false)
                .to_owned(),
        )
        .await?;
        db.execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .await?;
        db.close().await?;
    }
    Ok(())
}

/// How long a query waits for a connection to MySQL or PostgreSQL. When the
/// server is gone, new connections are refused at once and this is how long
/// a request takes to be answered `unavailable` (the contract allows 2 s).
const SERVER_ACQUIRE: Duration = Duration::from_secs(1);

/// A pooled connection idle this long is pinged before use: after an outage
/// the pool still holds connections to the server that died, and the first
/// request after it returns must not be the one that finds out.
const PING_IF_IDLE: Duration = Duration::from_millis(250);

/// What every pool of `url` is opened with; each store sets its size.
fn pool_options(url: &str) -> ConnectOptions {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .sqlx_logging(false)
        // No ping before every query taken from the pool: on MySQL and
        // PostgreSQL it is a round trip per query.
        .test_before_acquire(false)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(30));
    options
}

/// The pool for MySQL or PostgreSQL: sea-orm's options, plus the ping of
/// idle connections, which sea-orm cannot set. A busy pool's connections are
/// never idle that long, so the ping costs nothing under load.
async fn server_pool(url: &str, options: ConnectOptions, lazy: bool) -> Result<DatabaseConnection> {
    use sea_orm::sqlx::{self, ConnectOptions as _};
    fn ping_if_idle<C: sqlx::Connection>(
        conn: &mut C,
        meta: sqlx::pool::PoolConnectionMetadata,
    ) -> futures::future::BoxFuture<'_, std::result::Result<bool, sqlx::Error>> {
        Box::pin(async move {
            if meta.idle_for >= PING_IF_IDLE {
                conn.ping().await?;
            }
            Ok(true)
        })
    }
    let bad_url = |e: sqlx::Error| StoreError::BadUrl(format!("{}: {e}", redacted(url)));
    if url.starts_with("postgres") {
        let connect = url
            .parse::<sqlx::postgres::PgConnectOptions>()
            .map_err(bad_url)?
            .disable_statement_logging()
            // Not the notices of `CREATE ... IF NOT EXISTS` at every start.
            .options([("client_min_messages", "warning")]);
        let pool = options
            .sqlx_pool_options::<sqlx::Postgres>()
            .before_acquire(|c, m| ping_if_idle(c, m));
        let pool = open_pool(pool, connect, lazy).await?;
        Ok(sea_orm::SqlxPostgresConnector::from_sqlx_postgres_pool(
            pool,
        ))
    } else {
        let connect = url
            .parse::<sqlx::mysql::MySqlConnectOptions>()
            .map_err(bad_url)?
            .disable_statement_logging();
        let pool = options
            .sqlx_pool_options::<sqlx::MySql>()
            .before_acquire(|c, m| ping_if_idle(c, m));
        let pool = open_pool(pool, connect, lazy).await?;
        Ok(sea_orm::SqlxMySqlConnector::from_sqlx_mysql_pool(pool))
    }
}

/// A pool connected now, or (`lazy`) at its first statement by whichever
/// runtime runs that.
async fn open_pool<DB: sea_orm::sqlx::Database>(
    pool: sea_orm::sqlx::pool::PoolOptions<DB>,
    connect: <DB::Connection as sea_orm::sqlx::Connection>::Options,
    lazy: bool,
) -> std::result::Result<sea_orm::sqlx::Pool<DB>, DbErr> {
    if lazy {
        return Ok(pool.connect_lazy_with(connect));
    }
    pool.connect_with(connect)
        .await
        .map_err(|e| DbErr::Conn(sea_orm::RuntimeErr::SqlxError(e)))
}

#[cfg(test)]
mod tests;
