//! The in-memory register: one process's maps, leases checked on read.

use crate::{Location, Member, Register, Result};
use dashmap::DashMap;
use std::time::Duration;
use tokio::time::Instant;

#[derive(Default)]
pub struct MemoryRegister {
    members: DashMap<String, (Member, Instant)>,
    /// user id → (gateway id, conn id) → location.
    locations: DashMap<String, Vec<Location>>,
}

impl MemoryRegister {
    pub fn new() -> Self {
        Self::default()
    }

    /// Drops the locations of gateways whose lease expired.
    fn expire(&self) {
        let now = Instant::now();
        let dead: Vec<String> = self
            .members
            .iter()
            .filter(|e| e.value().1 <= now)
            .map(|e| e.key().clone())
            .collect();
        for id in dead {
            self.members.remove(&id);
            self.locations.retain(|_, locs| {
                locs.retain(|l| l.gateway_id != id);
                !locs.is_empty()
            });
        }
    }
}

#[async_trait::async_trait]
impl Register for MemoryRegister {
    async fn keep_alive(&self, member: Member, ttl: Duration) -> Result<bool> {
        self.expire();
        let known = self
            .members
            .insert(member.id.clone(), (member, Instant::now() + ttl))
            .is_some();
        Ok(!known)
    }

    async fn leave(&self, member_id: &str) -> Result<()> {
        if let Some(entry) = self.members.get_mut(member_id) {
            let mut entry = entry;
            entry.1 = Instant::now();
        }
        self.expire();
        Ok(())
    }

    async fn members(&self, role: &str) -> Result<Vec<Member>> {
        self.expire();
        let mut list: Vec<Member> = self
            .members
            .iter()
            .filter(|e| e.value().0.role == role)
            .map(|e| e.value().0.clone())
            .collect();
        list.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(list)
    }

    async fn announce(&self, locations: Vec<Location>) -> Result<()> {
        for loc in locations {
            // Most users have one device: no room for four.
            let mut entry = self
                .locations
                .entry(loc.user_id.clone())
                .or_insert_with(|| Vec::with_capacity(1));
            if !entry
                .iter()
                .any(|l| l.gateway_id == loc.gateway_id && l.conn_id == loc.conn_id)
            {
                entry.push(loc);
            }
        }
        Ok(())
    }

    async fn withdraw(&self, locations: Vec<Location>) -> Result<()> {
        for loc in locations {
            let empty = match self.locations.get_mut(&loc.user_id) {
                Some(mut entry) => {
                    entry.retain(|l| !(l.gateway_id == loc.gateway_id && l.conn_id == loc.conn_id));
                    entry.is_empty()
                }
                None => false,
            };
            if empty {
                self.locations.remove_if(&loc.user_id, |_, v| v.is_empty());
            }
        }
        Ok(())
    }

    async fn locate(&self, user_ids: &[String]) -> Result<Vec<Location>> {
        let mut found = Vec::new();
        for user in user_ids {
            if let Some(entry) = self.locations.get(user) {
                found.extend(entry.iter().cloned());
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests;
