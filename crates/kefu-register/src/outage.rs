//! Logging a dependency that keeps failing without flooding the log: one
//! warning when it starts failing, a summary every minute while it lasts,
//! one line when it recovers.

use std::fmt::Display;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often a lasting outage is summarised.
pub const SUMMARY_EVERY: Duration = Duration::from_secs(60);

/// The log state of one dependency (the register, Redis, a gateway).
pub struct Outage {
    what: String,
    /// Set while failing, so that a success (every call, on hot paths)
    /// costs one atomic load and no lock.
    failing: AtomicBool,
    state: Mutex<Option<Failing>>,
}

struct Failing {
    since: Instant,
    failures: u64,
    last_line: Instant,
}

/// What [`Outage::failed`] or [`Outage::recovered`] logged, for tests.
#[derive(Debug, PartialEq, Eq)]
pub enum Logged {
    Nothing,
    Started,
    Summary,
    Recovered,
}

impl Outage {
    /// `what` names the dependency and its address: "register at
    /// http://10.0.0.5:7000".
    pub fn new(what: impl Into<String>) -> Outage {
        Outage {
            what: what.into(),
            failing: AtomicBool::new(false),
            state: Mutex::new(None),
        }
    }

    /// A call to the dependency failed.
    pub fn failed(&self, error: &dyn Display) -> Logged {
        self.failed_at(error, Instant::now())
    }

    /// A call to the dependency succeeded.
    pub fn recovered(&self) -> Logged {
        if !self.failing.load(Ordering::Relaxed) {
            return Logged::Nothing;
        }
        self.failing.store(false, Ordering::Relaxed);
        let Some(failing) = self.lock().take() else {
            return Logged::Nothing;
        };
        tracing::info!(
            "{} is back after {} ({} failed calls)",
            self.what,
            humanize(failing.since.elapsed()),
            failing.failures
        );
        Logged::Recovered
    }

    fn failed_at(&self, error: &dyn Display, now: Instant) -> Logged {
        self.failing.store(true, Ordering::Relaxed);
        let mut state = self.lock();
        match state.as_mut() {
            None => {
                tracing::warn!(
                    "cannot reach {}: {error}; retrying, and summarising every {}s until it is back",
                    self.what,
                    SUMMARY_EVERY.as_secs()
                );
                *state = Some(Failing {
                    since: now,
                    failures: 1,
                    last_line: now,
                });
                Logged::Started
            }
            Some(failing) => {
                failing.failures += 1;
                if now.duration_since(failing.last_line) < SUMMARY_EVERY {
                    return Logged::Nothing;
                }
                failing.last_line = now;
                tracing::warn!(
                    "{} still unreachable after {} ({} failed calls): {error}",
                    self.what,
                    humanize(now.duration_since(failing.since)),
                    failing.failures
                );
                Logged::Summary
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Failing>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn humanize(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

/// An error and every cause under it, on one line, each said once: tonic and
/// sqlx wrap the operating system's reason ("Connection refused") several
/// levels down, and some layers repeat their cause in their own message.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    with_causes(error.to_string(), error.source())
}

/// A gRPC status as [`error_chain`] says an error: its message and causes,
/// without the code and the debug print of its source that its `Display`
/// adds.
pub fn status_chain(status: &tonic::Status) -> String {
    with_causes(
        status.message().to_owned(),
        std::error::Error::source(status),
    )
}

fn with_causes(mut line: String, mut cause: Option<&(dyn std::error::Error + 'static)>) -> String {
    while let Some(e) = cause {
        let text = e.to_string();
        if !text.is_empty() && !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        cause = e.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_when_failing_starts_one_per_minute_then_one_on_recovery() {
        let outage = Outage::new("register at http://127.0.0.1:1");
        let t0 = Instant::now();
        assert_eq!(outage.failed_at(&"refused", t0), Logged::Started);
        for i in 1..100 {
            let at = t0 + Duration::from_millis(500 * i);
            assert_eq!(outage.failed_at(&"refused", at), Logged::Nothing);
        }
        assert_eq!(
            outage.failed_at(&"refused", t0 + SUMMARY_EVERY),
            Logged::Summary
        );
        assert_eq!(
            outage.failed_at(&"refused", t0 + SUMMARY_EVERY + Duration::from_secs(1)),
            Logged::Nothing
        );
        assert_eq!(outage.recovered(), Logged::Recovered);
        assert_eq!(outage.recovered(), Logged::Nothing);
        assert_eq!(outage.failed_at(&"refused", t0), Logged::Started);
    }

    #[test]
    fn a_chain_names_each_cause_once() {
        #[derive(Debug)]
        struct E(&'static str, Option<Box<E>>);
        impl std::fmt::Display for E {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.0)
            }
        }
        impl std::error::Error for E {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                self.1.as_deref().map(|e| e as _)
            }
        }
        let os = E("Connection refused (os error 111)", None);
        let tcp = E(
            "tcp connect error: Connection refused (os error 111)",
            Some(Box::new(os)),
        );
        let top = E("transport error", Some(Box::new(tcp)));
        assert_eq!(
            error_chain(&top),
            "transport error: tcp connect error: Connection refused (os error 111)"
        );
    }
}
