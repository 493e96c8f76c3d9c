//! Everyone the desk knows: customers (names from their tokens) and agents.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// "customer", "agent" or "admin".
    pub role: String,
    pub name: String,
    /// Argon2 PHC string, for agents who log in with a password.
    pub password_hash: Option<String>,
    /// Agents: "available" or "away".
    pub status: String,
    pub created_at: i64,
    /// Milliseconds since the epoch of the user's last sign-out: tokens
    /// issued up to that second are refused.
    pub tokens_revoked_at: Option<i64>,
    /// An agent an operator disabled: no login, no token accepted.
    pub disabled: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
