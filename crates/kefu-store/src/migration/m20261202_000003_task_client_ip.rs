//! The client address a waiting task came from, so that one address cannot
//! fill the queue (`--max-waiting-per-ip`).

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261202_000003_task_client_ip"
    }
}

#[derive(DeriveIden)]
enum Tasks {
    Table,
    ClientIp,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Tasks::Table)
                .add_column(ColumnDef::new(Tasks::ClientIp).string_len(45).null())
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_tasks_client_ip")
                .table(Tasks::Table)
                .col(Tasks::ClientIp)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name("idx_tasks_client_ip")
                .table(Tasks::Table)
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Tasks::Table)
                .drop_column(Tasks::ClientIp)
                .to_owned(),
        )
        .await
    }
}
