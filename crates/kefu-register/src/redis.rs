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
use std::time::Duration;

const SEP: char = '\u{1f}';

#[derive(Clone)]
pub struct RedisRegister {
    conn: ConnectionManager,
    prefix: String,
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
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Duration::from_secs(2))
            .set_response_timeout(Duration::from_secs(2))
            .set_number_of_retries(2);
        let conn = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(unavailable)?;
        Ok(RedisRegister {
            conn,
            prefix: prefix.to_owned(),
        })
    }

    fn key(&self, rest: &str) -> String {
        format!("{}{}", self.prefix, rest)
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
        let mut pipe = redis::pipe();
        pipe.zrangebyscore(self.key("members:gateway"), now_ms(), "+inf");
        for user in user_ids {
            pipe.hgetall(self.key(&format!("loc:{user}")));
        }
        let mut conn = self.conn.clone();
        let (live, per_user): (Vec<String>, Vec<HashMap<String, String>>) = {
            let mut values: Vec<redis::Value> =
                pipe.query_async(&mut conn).await.map_err(unavailable)?;
            let live: Vec<String> =
                redis::from_redis_value(&values.remove(0)).map_err(unavailable)?;
            let per_user = values
                .iter()
                .map(redis::from_redis_value)
                .collect::<Result<Vec<HashMap<String, String>>, _>>()
                .map_err(unavailable)?;
            (live, per_user)
        };
        let live: HashSet<String> = live.into_iter().collect();
        let mut found = Vec::new();
        for (user, fields) in user_ids.iter().zip(per_user) {
            for (field, value) in fields {
                let (gateway, conn_id) = field.split_once(SEP).unwrap_or((&field, ""));
                if !live.contains(gateway) {
                    continue;
                }
                let (device, role) = value.split_once(SEP).unwrap_or((&value, ""));
                found.push(Location {
                    user_id: user.clone(),
                    gateway_id: gateway.to_owned(),
                    conn_id: conn_id.to_owned(),
                    device: device.to_owned(),
                    role: role.to_owned(),
                });
            }
        }
        Ok(found)
    }
}

/// Runs an idempotent call, once more if it fails: the first call after
/// Redis restarts fails on the dead connection while the connection manager
/// reconnects.
async fn twice<T, F, Fut>(call: F) -> Result<T>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    match call().await {
        Ok(v) => Ok(v),
        Err(_) => call().await,
    }
}

#[async_trait::async_trait]
impl Register for RedisRegister {
    /// Not retried: a repeated renewal could hide that the first one
    /// rejoined; the next renewal comes soon anyway.
    async fn keep_alive(&self, member: Member, ttl: Duration) -> Result<bool> {
        self.keep_alive_once(member, ttl).await
    }

    async fn leave(&self, member_id: &str) -> Result<()> {
        twice(|| self.leave_once(member_id)).await
    }

    async fn members(&self, role: &str) -> Result<Vec<Member>> {
        twice(|| self.members_once(role)).await
    }

    async fn announce(&self, locations: Vec<Location>) -> Result<()> {
        twice(|| self.announce_once(locations.clone())).await
    }

    async fn withdraw(&self, locations: Vec<Location>) -> Result<()> {
        twice(|| self.withdraw_once(locations.clone())).await
    }

    async fn locate(&self, user_ids: &[String]) -> Result<Vec<Location>> {
        twice(|| self.locate_once(user_ids)).await
    }
}

#[cfg(test)]
mod tests;
