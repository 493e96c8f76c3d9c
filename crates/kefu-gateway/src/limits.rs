//! Limits on the calls anyone can make without an account: visitor creation
//! and login, per client address, and a back-off per account after failed
//! passwords. Each gateway counts for itself.

use dashmap::DashMap;
use governor::{DefaultKeyedRateLimiter, Quota};
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

/// The limits a gateway applies, from its configuration.
#[derive(Debug, Clone)]
pub struct LimitsConfig {
    /// Visitors one client address may create per minute (0: no limit).
    pub visitors_per_minute: u32,
    /// Login attempts one client address may make per minute (0: no limit).
    pub logins_per_minute: u32,
    /// Wrong passwords in a row before an account is locked for a while.
    pub login_failures: u32,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            visitors_per_minute: 60,
            logins_per_minute: 20,
            login_failures: 5,
            trusted_proxies: Vec::new(),
        }
    }
}

/// First lock after `login_failures` wrong passwords; each further one doubles
/// it, up to `MAX_LOCK`.
const FIRST_LOCK: Duration = Duration::from_secs(30);
const MAX_LOCK: Duration = Duration::from_secs(15 * 60);
/// Failure records kept at most; the oldest are forgotten first.
const MAX_ACCOUNTS: usize = 100_000;

pub(crate) struct Limits {
    config: LimitsConfig,
    visitors: Option<DefaultKeyedRateLimiter<IpAddr>>,
    logins: Option<DefaultKeyedRateLimiter<IpAddr>>,
    failures: DashMap<String, Failures>,
}

#[derive(Clone, Copy)]
struct Failures {
    count: u32,
    locked_until: Option<Instant>,
}

fn per_minute(n: u32) -> Option<DefaultKeyedRateLimiter<IpAddr>> {
    NonZeroU32::new(n).map(|n| governor::RateLimiter::keyed(Quota::per_minute(n)))
}

impl Limits {
    pub(crate) fn new(config: LimitsConfig) -> Limits {
        Limits {
            visitors: per_minute(config.visitors_per_minute),
            logins: per_minute(config.logins_per_minute),
            failures: DashMap::new(),
            config,
        }
    }

    /// The client's address: the TCP peer, or, when the peer is a trusted
    /// proxy, the last address in `X-Forwarded-For` that is not one.
    pub(crate) fn client_ip(&self, peer: SocketAddr, forwarded_for: Option<&str>) -> IpAddr {
        let trusted = |ip: &IpAddr| self.config.trusted_proxies.iter().any(|n| n.contains(ip));
        let peer = peer.ip();
        if !trusted(&peer) {
            return peer;
        }
        forwarded_for
            .unwrap_or("")
            .rsplit(',')
            .filter_map(|s| s.trim().parse::<IpAddr>().ok())
            .find(|ip| !trusted(ip))
            .unwrap_or(peer)
    }

    /// Ok, or how long until this address may create a visitor.
    pub(crate) fn visitor(&self, ip: IpAddr) -> Result<(), Duration> {
        check(self.visitors.as_ref(), ip)
    }

    /// Ok, or how long until this address may try to log in to `account`.
    pub(crate) fn login(&self, ip: IpAddr, account: &str) -> Result<(), Duration> {
        if let Some(until) = self.failures.get(account).and_then(|f| f.locked_until) {
            let now = Instant::now();
            if until > now {
                return Err(until - now);
            }
        }
        check(self.logins.as_ref(), ip)
    }

    /// Records a login's outcome for the account's back-off.
    pub(crate) fn login_result(&self, account: &str, ok: bool) {
        if ok {
            self.failures.remove(account);
            return;
        }
        if self.failures.len() >= MAX_ACCOUNTS {
            self.forget_unlocked();
        }
        let limit = self.config.login_failures.max(1);
        let mut entry = self.failures.entry(account.to_owned()).or_insert(Failures {
            count: 0,
            locked_until: None,
        });
        entry.count += 1;
        if entry.count >= limit {
            let doublings = (entry.count - limit).min(10);
            let lock = (FIRST_LOCK * 2u32.pow(doublings)).min(MAX_LOCK);
            entry.locked_until = Some(Instant::now() + lock);
            tracing::warn!(
                account,
                failures = entry.count,
                lock_s = lock.as_secs(),
                "login locked after wrong passwords"
            );
        }
    }

    fn forget_unlocked(&self) {
        let now = Instant::now();
        self.failures
            .retain(|_, f| f.locked_until.is_some_and(|until| until > now));
    }
}

fn check(limiter: Option<&DefaultKeyedRateLimiter<IpAddr>>, ip: IpAddr) -> Result<(), Duration> {
    let Some(limiter) = limiter else {
        return Ok(());
    };
    limiter.check_key(&ip).map_err(|not_until| {
        not_until.wait_time_from(governor::clock::Clock::now(
            &governor::clock::DefaultClock::default(),
        ))
    })?;
    if limiter.len() > MAX_ACCOUNTS {
        limiter.retain_recent();
    }
    Ok(())
}

#[cfg(test)]
mod tests;
