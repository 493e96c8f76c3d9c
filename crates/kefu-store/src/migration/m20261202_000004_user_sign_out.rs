//! Signing users out: the moment their tokens stopped counting, and
//! agents an operator has disabled.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261202_000004_user_sign_out"
    }
}

#[derive(DeriveIden)]
enum Users {
    Table,
    TokensRevokedAt,
    Disabled,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one at a time.
        m.alter_table(
            Table::alter()
                .table(Users::Table)
                .add_column(ColumnDef::new(Users::TokensRevokedAt).big_integer().null())
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Users::Table)
                .add_column(
                    ColumnDef::new(Users::Disabled)
                        .boolean()
                        .not_null()
                        .default(false),
                )
                .to_owned(),
        )
        .await?;
        // Workers read the recent sign-outs every second.
        m.create_index(
            Index::create()
                .name("idx_users_tokens_revoked_at")
                .table(Users::Table)
                .col(Users::TokensRevokedAt)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name("idx_users_tokens_revoked_at")
                .table(Users::Table)
                .to_owned(),
        )
        .await?;
        for column in [Users::Disabled, Users::TokensRevokedAt] {
            m.alter_table(
                Table::alter()
                    .table(Users::Table)
                    .drop_column(column)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}
