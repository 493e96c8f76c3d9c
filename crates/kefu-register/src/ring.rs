//! Consistent hashing of shards onto workers, with virtual nodes, so a
//! worker joining or leaving moves only its share of shards.

use std::collections::BTreeMap;

/// Virtual nodes per worker: enough to spread 65,536 shards evenly.
const VNODES: u32 = 160;

#[derive(Debug, Clone, Default)]
pub struct Ring {
    points: BTreeMap<u64, String>,
}

impl Ring {
    pub fn new<I, S>(workers: I) -> Ring
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut points = BTreeMap::new();
        for worker in workers {
            let worker = worker.as_ref();
            for v in 0..VNODES {
                let point = xxhash_rust::xxh3::xxh3_64(format!("{worker}#{v}").as_bytes());
                points.insert(point, worker.to_owned());
            }
        }
        Ring { points }
    }

    /// The worker owning a shard, or None for an empty ring.
    pub fn owner(&self, shard: u32) -> Option<&str> {
        let point = xxhash_rust::xxh3::xxh3_64(&shard.to_le_bytes());
        self.points
            .range(point..)
            .next()
            .or_else(|| self.points.iter().next())
            .map(|(_, w)| w.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }
}

#[cfg(test)]
mod tests;
