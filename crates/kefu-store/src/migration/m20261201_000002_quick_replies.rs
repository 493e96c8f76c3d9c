//! Agents' saved answers, inserted into the composer with `/`.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_000002_quick_replies"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(QuickReplies::Table)
                .if_not_exists()
                .col(
                    ColumnDef::new(QuickReplies::Id)
                        .big_integer()
                        .not_null()
                        .auto_increment()
                        .primary_key(),
                )
                .col(
                    ColumnDef::new(QuickReplies::AgentId)
                        .string_len(128)
                        .not_null(),
                )
                .col(
                    ColumnDef::new(QuickReplies::Title)
                        .string_len(256)
                        .not_null(),
                )
                .col(ColumnDef::new(QuickReplies::Content).text().not_null())
                .col(
                    ColumnDef::new(QuickReplies::UpdatedAt)
                        .big_integer()
                        .not_null(),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_quick_replies_agent")
                .table(QuickReplies::Table)
                .col(QuickReplies::AgentId)
                .if_not_exists()
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(
            Table::drop()
                .table(QuickReplies::Table)
                .if_exists()
                .to_owned(),
        )
        .await
    }
}

#[derive(DeriveIden, Clone)]
enum QuickReplies {
    Table,
    Id,
    AgentId,
    Title,
    Content,
    UpdatedAt,
}
