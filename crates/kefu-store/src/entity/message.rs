//! A stored message, user-sent or system.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "messages")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub task_id: i64,
    /// The sender's user id, or "system".
    pub sender: String,
    pub recipient: String,
    pub category: String,
    pub style: String,
    pub kind: String,
    pub content: String,
    pub url: Option<String>,
    pub quote: Option<i64>,
    /// JSON object text.
    pub ext: Option<String>,
    /// Unique per sender: a resend finds the first row.
    pub client_msg_id: Option<String>,
    pub created_at: i64,
    pub is_read: bool,
    pub is_revoke: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
