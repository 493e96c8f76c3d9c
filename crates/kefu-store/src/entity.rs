//! sea-orm entities, one per table.

pub mod file;
pub mod file_chunk;
pub mod message;
pub mod message_delete;
pub mod quick_reply;
pub mod task;
pub mod task_agent;
pub mod task_sequence;
pub mod undelivered;
pub mod user;
