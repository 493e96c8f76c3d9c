//! A service session: one customer's problem, from first message to rating.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tasks")]
pub struct Model {
    /// `sequence << 16 | shard`, see `kefu_protocol::shard`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: i64,
    pub customer_id: String,
    pub agent_id: Option<String>,
    /// "waiting", "open" or "ended".
    pub status: String,
    pub created_at: i64,
    pub ended_at: Option<i64>,
    pub rating_score: Option<i32>,
    pub rating_comment: Option<String>,
    /// The address the customer wrote from when the task was opened; None
    /// when exempt from per-address limits (loopback, or unknown).
    pub client_ip: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
