//! A circuit breaker in front of the database.
//!
//! When MySQL or PostgreSQL is gone, every query waits for a connection
//! until the pool gives up (a second). Sends are handled one after another
//! per conversation, so under load that second added up: a send waited for
//! every send queued before it, answers stopped for a minute and the queues
//! grew. The breaker opens at the first failure to reach the database;
//! while it is open every query fails at once as unreachable (the client
//! hears `unavailable`) except one at a time, 250 ms after the last, which
//! tries the database: the first of those to get an answer closes the
//! breaker, so the first request after the database returns is served.

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, ExecResult,
    QueryResult, Statement, TransactionTrait,
};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug)]
struct Breaker {
    open: AtomicBool,
    /// A query is trying the database while the breaker is open.
    probing: AtomicBool,
    /// When the last probe ended, in ms since `epoch` (0: none yet).
    probed_at: AtomicU64,
    epoch: Instant,
}

impl Default for Breaker {
    fn default() -> Self {
        Breaker {
            open: AtomicBool::new(false),
            probing: AtomicBool::new(false),
            probed_at: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }
}

/// While the breaker is open, a query tries the database this long after
/// the last try ended. A try waits for a connection (up to a second) and
/// holds up the conversation it belongs to; in between, that conversation's
/// queued requests are answered at once like every other.
const PROBE_EVERY: Duration = Duration::from_millis(250);

/// How a query was let through.
enum Admission {
    Closed,
    Probe,
}

impl Breaker {
    fn admit(&self) -> Result<Admission, DbErr> {
        if !self.open.load(Ordering::Acquire) {
            return Ok(Admission::Closed);
        }
        let refused = || DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::ConnectionClosed);
        let now = self.epoch.elapsed().as_millis() as u64;
        let last = self.probed_at.load(Ordering::Acquire);
        if last != 0 && now < last + PROBE_EVERY.as_millis() as u64 {
            return Err(refused());
        }
        if self.probing.swap(true, Ordering::AcqRel) {
            return Err(refused());
        }
        Ok(Admission::Probe)
    }

    fn record<T>(&self, result: &Result<T, DbErr>) {
        match result {
            Err(e) if unreachable(e) => {
                if !self.open.swap(true, Ordering::AcqRel) {
                    tracing::warn!(error = %e, "database unreachable: refusing queries at once, trying one at a time until it answers");
                }
            }
            // An answer, even an error, means the database is there.
            _ => {
                if self.open.swap(false, Ordering::AcqRel) {
                    tracing::info!("database answers again");
                }
            }
        }
    }
}

/// A query let through; a probe's ends when it is dropped, even when the
/// query was cancelled half-way (a caller's timeout), so that the next
/// query may try.
struct Ticket<'a> {
    breaker: &'a Breaker,
    probe: bool,
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if self.probe {
            let now = self.breaker.epoch.elapsed().as_millis() as u64;
            self.breaker.probed_at.store(now.max(1), Ordering::Release);
            self.breaker.probing.store(false, Ordering::Release);
        }
    }
}

/// Whether a database error means it could not be reached (rather than a
/// query it refused).
pub(crate) fn unreachable(e: &DbErr) -> bool {
    use sea_orm::sqlx::Error as Sqlx;
    use sea_orm::RuntimeErr;
    match e {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => matches!(
            e,
            Sqlx::Io(_) | Sqlx::PoolTimedOut | Sqlx::PoolClosed | Sqlx::WorkerCrashed
        ),
        _ => false,
    }
}

/// A database connection behind a breaker; used as sea-orm's connection.
#[derive(Clone, Debug)]
pub struct Guarded {
    pub(crate) inner: DatabaseConnection,
    breaker: Arc<Breaker>,
}

impl Guarded {
    pub(crate) fn new(inner: DatabaseConnection) -> Guarded {
        Guarded {
            inner,
            breaker: Arc::default(),
        }
    }

    /// False while the breaker is open: the database was unreachable at the
    /// last try. Background rounds skip their turn then, so that the tries
    /// (and the first success after an outage) are clients' requests.
    pub fn reachable(&self) -> bool {
        !self.breaker.open.load(Ordering::Acquire)
    }

    async fn guard<T>(
        &self,
        query: impl std::future::Future<Output = Result<T, DbErr>>,
    ) -> Result<T, DbErr> {
        let ticket = Ticket {
            breaker: &self.breaker,
            probe: matches!(self.breaker.admit()?, Admission::Probe),
        };
        let result = query.await;
        self.breaker.record(&result);
        drop(ticket);
        result
    }
}

#[async_trait::async_trait]
impl ConnectionTrait for Guarded {
    fn get_database_backend(&self) -> DbBackend {
        self.inner.get_database_backend()
    }

    async fn execute(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        self.guard(self.inner.execute(stmt)).await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.guard(self.inner.execute_unprepared(sql)).await
    }

    async fn query_one(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        self.guard(self.inner.query_one(stmt)).await
    }

    async fn query_all(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        self.guard(self.inner.query_all(stmt)).await
    }

    fn support_returning(&self) -> bool {
        self.inner.support_returning()
    }
}

impl Guarded {
    /// Begins a transaction; only the taking of its connection is guarded.
    pub async fn begin(&self) -> Result<DatabaseTransaction, DbErr> {
        self.guard(self.inner.begin()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn down() -> Result<(), DbErr> {
        Err(DbErr::Conn(sea_orm::RuntimeErr::Internal("refused".into())))
    }

    fn ticket(breaker: &Breaker) -> Option<Ticket<'_>> {
        let admission = breaker.admit().ok()?;
        Some(Ticket {
            breaker,
            probe: matches!(admission, Admission::Probe),
        })
    }

    #[test]
    fn open_after_a_failure_one_probe_at_a_time_closed_by_an_answer() {
        let breaker = Breaker::default();
        let first = ticket(&breaker).expect("closed");
        breaker.record(&down());
        drop(first);
        let probe = ticket(&breaker).expect("one probe");
        assert!(ticket(&breaker).is_none(), "a second fails at once");
        breaker.record(&down());
        drop(probe);
        assert!(ticket(&breaker).is_none(), "not before {PROBE_EVERY:?}");
        std::thread::sleep(PROBE_EVERY + Duration::from_millis(20));
        let cancelled = ticket(&breaker).expect("the next probe");
        drop(cancelled);
        std::thread::sleep(PROBE_EVERY + Duration::from_millis(20));
        let probe = ticket(&breaker).expect("a cancelled probe lets the next try");
        breaker.record(&Err::<(), _>(DbErr::RecordNotFound("x".into())));
        drop(probe);
        assert!(
            matches!(breaker.admit(), Ok(Admission::Closed)),
            "an answer closes it"
        );
    }
}
