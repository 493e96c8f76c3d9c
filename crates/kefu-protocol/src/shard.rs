//! Which shard a frame belongs to, the unit a worker owns.
//!
//! A task's shard is the shard of its customer, and the shard is written into
//! the low 16 bits of the task id. So a customer's frames (which carry no task
//! id) and an agent's frames (which carry the task id or the customer's id)
//! hash to the same shard, and one worker handles a conversation in order.

/// Number of shards; a task id's low bits hold its shard.
pub const SHARDS: u32 = 1 << SHARD_BITS;
pub const SHARD_BITS: u32 = 16;

/// The shard of a user: the shard of every task that user opens as a customer.
pub fn of_user(user_id: &str) -> u32 {
    (xxhash_rust::xxh3::xxh3_64(user_id.as_bytes()) % SHARDS as u64) as u32
}

/// The shard a task id was minted in.
pub fn of_task(task_id: i64) -> u32 {
    (task_id as u64 % SHARDS as u64) as u32
}

/// A task id from a database sequence number and the customer's shard.
/// Stays below 2^53 for 2^37 tasks.
pub fn task_id(sequence: i64, shard: u32) -> i64 {
    (sequence << SHARD_BITS) | shard as i64
}

/// The shard a client's command is handled in. A customer's commands go to
/// their own shard (their task lives there); an agent's go to the shard of
/// the task or customer they name, else to the agent's own.
pub fn of_command(command: &crate::Command, claims: &crate::Claims) -> u32 {
    use crate::Command;
    if claims.role == crate::Role::Customer {
        return of_user(&claims.sub);
    }
    match command {
        Command::Send(send) => match (send.task_id, send.to.as_deref()) {
            (Some(task), _) => of_task(task),
            (None, Some(customer)) => of_user(customer),
            (None, None) => of_user(&claims.sub),
        },
        Command::Read { task_id, .. } => of_task(*task_id),
        Command::Typing {
            task_id: Some(task),
            ..
        } => of_task(*task),
        Command::Typing {
            to: Some(customer), ..
        } => of_user(customer),
        _ => of_user(&claims.sub),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_lives_in_its_customers_shard() {
        let shard = of_user("customer-42");
        let task = task_id(7, shard);
        assert_eq!(of_task(task), shard);
        assert_eq!(task >> SHARD_BITS, 7);
    }

    #[test]
    fn shards_spread_over_users() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..1000 {
            seen.insert(of_user(&format!("u{i}")));
        }
        assert!(seen.len() > 900, "only {} distinct shards", seen.len());
    }
}
