//! The Redis register: several register processes share one Redis, so any
//! of them can die without the cluster losing membership or locations.
//!
//! Keys (prefix `kefu:`):
//! - `members:{role}`: sorted set of member ids scored by lease expiry (ms);
//! - `addrs`: hash of member id → gRPC address;
//! - `loc:{user}`: hash of `{gateway}\x1f{conn}` → `{device}\x1f{role}`;
//! - `located`: set of users that have a `loc:` hash, for the sweep.
//!
//! A location whose gateway's lease lapsed is ignored on read and swept by
//! [`RedisRegister::sweep`]. If Redis restarts empty, the next keep-alive of
//! each gateway reports `rejoined` and the gateway announces its connections
//! again.

use crate::{Location, Member, Register, RegisterError, Result};
use redis::aio::ConnectionManager;
use redis::AsyncCommands;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

const SEP: char = '\u{1f}';

#[derive(Clone)]
pub struct RedisRegister {
    conn: ConnectionManager,
    prefix: String,
    breaker: Arc<Breaker>,
    /// Lookups waiting for the locator task, which answers all that queued
    /// up meanwhile with one pipeline: workers look up the recipients of
    /// every message, so lookups come many at a time.
    lookups: mpsc::UnboundedSender<Lookup>,
}

type Lookup = (Vec<String>, oneshot::Sender<Result<Vec<Location>>>);

/// How long one call (with its one retry) may take before it counts as
/// failed: a worker's ack waits for the lookup of its recipients.
const CALL_TIMEOUT: Duration = Duration::from_secs(1);

/// How long calls fail at once after one failed, instead of each waiting
/// for Redis: during an outage every send is still answered promptly (its
/// push skipped; the recipient reads it from /api/offline).
const BREAKER_OPEN_MS: i64 = 1_000;

/// Fails calls fast for [`BREAKER_OPEN_MS`] after a failure; the first
/// call after that tries Redis again.
#[derive(Default)]
struct Breaker {
    open_until_ms: AtomicI64,
}

impl Breaker {
    fn is_open(&self) -> bool {
        now_ms() < self.open_until_ms.load(Ordering::Relaxed)
    }

    fn record<T>(&self, result: &Result<T>) {
        let until = match result {
            Ok(_) => 0,
            Err(_) => now_ms() + BREAKER_OPEN_MS,
        };
        self.open_until_ms.store(until, Ordering::Relaxed);
    }
}

/// Users looked up in one pipeline at most.
const MAX_USERS_PER_LOOKUP: usize = 512;

/// A Redis key of this register: `prefix` then `rest`.
fn key(prefix: &str, rest: &str) -> String {
    format!("{prefix}{rest}")
}

/// Deletes every key under `prefix`: what a test cluster, or a cluster
/// retired from a shared Redis, leaves behind. Blocking; returns how many.
pub fn delete_prefix(url: &str, prefix: &str) -> redis::RedisResult<usize> {
    use redis::Commands;
    let mut conn = redis::Client::open(url)?.get_connection()?;
    let keys: Vec<String> = conn.scan_match(format!("{prefix}*"))?.collect();
    if !keys.is_empty() {
        redis::cmd("DEL").arg(&keys).exec(&mut conn)?;
    }
    Ok(keys.len())
}

fn unavailable(e: redis::RedisError) -> RegisterError {
    RegisterError::Unavailable(e.to_string())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl RedisRegister {
    pub async fn connect(url: &str) -> Result<RedisRegister> {
        Self::with_prefix(url, "kefu:").await
    }

    /// Connects with a key prefix (tests use one each).
    pub async fn with_prefix(url: &str, prefix: &str) -> Result<RedisRegister> {
        let client = redis::Client::open(url).map_err(unavailable)?;
        // The connection manager retries a refused first connection without
        // end: one plain connection first says at once why Redis cannot be
        // reached.
        let probe = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Duration::from_secs(2))
            .set_response_timeout(Duration::from_secs(2));
        drop(
            client
                .get_multiplexed_async_connection_with_config(&probe)
                .await
                .map_err(unavailable)?,
        );
        // A reconnection tries twice, one second apart, then gives up until
        // the next call. (The manager's default backoff multiplies its delay
        // by a hundred per retry: a five-second outage kept a register
        // reconnecting for about two minutes.)
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(CALL_TIMEOUT)
            .set_response_timeout(CALL_TIMEOUT)
            .set_factor(1)
            .set_max_delay(1_000)
            .set_number_of_retries(1);
        let conn = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(unavailable)?;
        let (lookups, queued) = mpsc::unbounded_channel();
        tokio::spawn(locator(conn.clone(), prefix.to_owned(), queued));
        Ok(RedisRegister {
            conn,
            prefix: prefix.to_owned(),
            breaker: Arc::default(),
            lookups,
        })
    }

    fn key(&self, rest: &str) -> String {
        key(&self.prefix, rest)
    }

    async fn live_ids(&self, role: &str) -> Result<HashSet<String>> {
        let mut conn = self.conn.clone();
        let ids: Vec<String> = conn
            .zrangebyscore(self.key(&format!("members:{role}")), now_ms(), "+inf")
            .await
            .map_err(unavailable)?;
        Ok(ids.into_iter().collect())
    }

    /// Removes lapsed members and the locations of lapsed gateways.
    pub async fn sweep(&self) -> Result<()> {
        let mut conn = self.conn.clone();
        for role in ["gateway", "worker"] {
            let key = self.key(&format!("members:{role}"));
            let dead: Vec<String> = conn
                .zrangebyscore(&key, "-inf", now_ms())
                .await
                .map_err(unavailable)?;
            if dead.is_empty() {
                continue;
            }
            let _: () = conn.zrem(&key, &dead).await.map_err(unavailable)?;
            let _: () = conn
                .hdel(self.key("addrs"), &dead)
                .await
                .map_err(unavailable)?;
        }
        let live = self.live_ids("gateway").await?;
        let users: Vec<String> = conn
            .smembers(self.key("located"))
            .await
            .map_err(unavailable)?;
        for user in users {
            let key = self.key(&format!("loc:{user}"));
            let fields: Vec<String> = conn.hkeys(&key).await.map_err(unavailable)?;
            let stale: Vec<&String> = fields
                .iter()
                .filter(|f| !live.contains(f.split(SEP).next().unwrap_or("")))
                .collect();
            if !stale.is_empty() {
                let _: () = conn.hdel(&key, &stale).await.map_err(unavailable)?;
            }
            if stale.len() == fields.len() {
                let _: () = conn
                    .srem(self.key("located"), &user)
                    .await
                    .map_err(unavailable)?;
            }
        }
        Ok(())
    }
}

impl RedisRegister {
    async fn keep_alive_once(&self, member: Member, ttl: Duration) -> Result<bool> {
        let mut conn = self.conn.clone();
        let key = self.key(&format!("members:{}", member.role));
        let previous: Option<f64> = conn.zscore(&key, &member.id).await.map_err(unavailable)?;
        let now = now_ms();
        let expiry = now + ttl.as_millis() as i64;
        let _: () = redis::pipe()
            .zadd(&key, &member.id, expiry)
            .hset(self.key("addrs"), &member.id, &member.addr)
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(previous.is_none_or(|p| (p as i64) < now))
    }

    async fn leave_once(&self, member_id: &str) -> Result<()> {
        let mut conn = self.conn.clone();
        let _: () = redis::pipe()
            .zrem(self.key("members:gateway"), member_id)
            .zrem(self.key("members:worker"), member_id)
            .hdel(self.key("addrs"), member_id)
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn members_once(&self, role: &str) -> Result<Vec<Member>> {
        let mut ids: Vec<String> = self.live_ids(role).await?.into_iter().collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        ids.sort();
        let mut conn = self.conn.clone();
        let addrs: Vec<Option<String>> = conn
            .hget(self.key("addrs"), &ids)
            .await
            .map_err(unavailable)?;
        Ok(ids
            .into_iter()
            .zip(addrs)
            .map(|(id, addr)| Member {
                id,
                role: role.to_owned(),
                addr: addr.unwrap_or_default(),
            })
            .collect())
    }

    async fn announce_once(&self, locations: Vec<Location>) -> Result<()> {
        if locations.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for l in &locations {
            let field = format!("{}{SEP}{}", l.gateway_id, l.conn_id);
            let value = format!("{}{SEP}{}", l.device, l.role);
            pipe.hset(self.key(&format!("loc:{}", l.user_id)), field, value)
                .ignore();
            pipe.sadd(self.key("located"), &l.user_id).ignore();
        }
        let mut conn = self.conn.clone();
        pipe.query_async::<()>(&mut conn).await.map_err(unavailable)
    }

    async fn withdraw_once(&self, locations: Vec<Location>) -> Result<()> {
        if locations.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for l in &locations {
            let field = format!("{}{SEP}{}", l.gateway_id, l.conn_id);
            pipe.hdel(self.key(&format!("loc:{}", l.user_id)), field)
                .ignore();
        }
        let mut conn = self.conn.clone();
        pipe.query_async::<()>(&mut conn).await.map_err(unavailable)
    }

    async fn locate_once(&self, user_ids: &[String]) -> Result<Vec<Location>> {
        if user_ids.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, answer) = oneshot::channel();
        self.lookups
            .send((user_ids.to_vec(), reply))
            .map_err(|_| RegisterError::Unavailable("register stopped".into()))?;
        answer
            .await
            .map_err(|_| RegisterError::Unavailable("register stopped".into()))?
    }
}

/// Answers lookups until every handle is gone: whatever queued up while the
/// last pipeline ran goes in the next one, with the live gateways read once.
async fn locator(
    conn: ConnectionManager,
    prefix: String,
    mut queued: mpsc::UnboundedReceiver<Lookup>,
) {
    let mut batch: Vec<Lookup> = Vec::new();
    while let Some(first) = queued.recv().await {
        let mut users = first.0.len();
        batch.push(first);
        while users < MAX_USERS_PER_LOOKUP {
            match queued.try_recv() {
                Ok(more) => {
                    users += more.0.len();
                    batch.push(more);
                }
                Err(_) => break,
            }
        }
        let mut wanted: Vec<&String> = batch.iter().flat_map(|(u, _)| u).collect();
        wanted.sort_unstable();
        wanted.dedup();
        // Bounded, so lookups queued behind a stalled one are not held up
        // longer than their own calls' timeout.
        let found = tokio::time::timeout(CALL_TIMEOUT, locate_all(&conn, &prefix, &wanted))
            .await
            .unwrap_or_else(|_| Err(no_answer()));
        match found {
            Ok(found) => {
                for (users, reply) in batch.drain(..) {
                    let mine = users
                        .iter()
                        .flat_map(|u| found.get(u).cloned().unwrap_or_default())
                        .collect();
                    let _ = reply.send(Ok(mine));
                }
            }
            Err(e) => {
                for (_, reply) in batch.drain(..) {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
}

/// The live locations of `users`, by user, in one pipeline.
async fn locate_all(
    conn: &ConnectionManager,
    prefix: &str,
    users: &[&String],
) -> Result<HashMap<String, Vec<Location>>> {
    let mut pipe = redis::pipe();
    pipe.zrangebyscore(key(prefix, "members:gateway"), now_ms(), "+inf");
    for user in users {
        pipe.hgetall(key(prefix, &format!("loc:{user}")));
    }
    let mut conn = conn.clone();
    let mut values: Vec<redis::Value> = pipe.query_async(&mut conn).await.map_err(unavailable)?;
    let live: Vec<String> = redis::from_redis_value(&values.remove(0)).map_err(unavailable)?;
    let live: HashSet<String> = live.into_iter().collect();
    let mut found = HashMap::with_capacity(users.len());
    for (&user, fields) in users.iter().zip(values) {
        let fields: HashMap<String, String> =
            redis::from_redis_value(&fields).map_err(unavailable)?;
        let mut locations = Vec::with_capacity(fields.len());
        for (field, value) in fields {
            let (gateway, conn_id) = field.split_once(SEP).unwrap_or((&field, ""));
            if !live.contains(gateway) {
                continue;
            }
            let (device, role) = value.split_once(SEP).unwrap_or((&value, ""));
            locations.push(Location {
                user_id: user.clone(),
                gateway_id: gateway.to_owned(),
                conn_id: conn_id.to_owned(),
                device: device.to_owned(),
                role: role.to_owned(),
            });
        }
        found.insert(user.clone(), locations);
    }
    Ok(found)
}

impl RedisRegister {
    /// Runs a call within [`CALL_TIMEOUT`], failing at once while the
    /// breaker is open. An idempotent call (`retry`) runs once more if it
    /// fails: the first call after Redis restarts fails on the dead
    /// connection while the connection manager reconnects.
    async fn guarded<T, F, Fut>(&self, retry: bool, call: F) -> Result<T>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        if self.breaker.is_open() {
            return Err(RegisterError::Unavailable(
                "Redis is unreachable (trying again every second)".into(),
            ));
        }
        let attempts = async {
            match call().await {
                Err(_) if retry => call().await,
                done => done,
            }
        };
        let result = tokio::time::timeout(CALL_TIMEOUT, attempts)
            .await
            .unwrap_or_else(|_| Err(no_answer()));
        self.breaker.record(&result);
        result
    }
}

fn no_answer() -> RegisterError {
    RegisterError::Unavailable(format!(
        "no answer from Redis within {} ms",
        CALL_TIMEOUT.as_millis()
    ))
}

#[async_trait::async_trait]
impl Register for RedisRegister {
    /// Not retried: a repeated renewal could hide that the first one
    /// rejoined; the next renewal comes soon anyway.
    async fn keep_alive(&self, member: Member, ttl: Duration) -> Result<bool> {
        self.guarded(false, || self.keep_alive_once(member.clone(), ttl))
            .await
    }

    async fn leave(&self, member_id: &str) -> Result<()> {
        self.guarded(true, || self.leave_once(member_id)).await
    }

    async fn members(&self, role: &str) -> Result<Vec<Member>> {
        self.guarded(true, || self.members_once(role)).await
    }

    async fn announce(&self, locations: Vec<Location>) -> Result<()> {
        self.guarded(true, || self.announce_once(locations.clone()))
            .await
    }

    async fn withdraw(&self, locations: Vec<Location>) -> Result<()> {
        self.guarded(true, || self.withdraw_once(locations.clone()))
            .await
    }

    async fn locate(&self, user_ids: &[String]) -> Result<Vec<Location>> {
        self.guarded(true, || self.locate_once(user_ids)).await
    }
}

#[cfg(test)]
mod tests;
