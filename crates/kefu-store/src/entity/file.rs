//! An uploaded file, kept in the database so any gateway can serve it.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "files")]
pub struct Model {
    /// Unguessable: 128 random bits, hex.
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    pub owner: String,
    pub content_type: String,
    pub kind: String,
    pub size: i64,
    pub created_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
