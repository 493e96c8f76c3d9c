//! First schema: users, tasks, messages, delivery state, files.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261126_000001_init"
    }
}

/// Length of user-id columns; tokens carry at most this many bytes.
const ID_LEN: u32 = 128;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Users::Table)
                .if_not_exists()
                .col(
                    ColumnDef::new(Users::Id)
                        .string_len(ID_LEN)
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new(Users::Role).string_len(16).not_null())
                .col(ColumnDef::new(Users::Name).string_len(256).not_null())
                .col(ColumnDef::new(Users::PasswordHash).string_len(256).null())
                .col(ColumnDef::new(Users::Status).string_len(16).not_null())
                .col(ColumnDef::new(Users::CreatedAt).big_integer().not_null())
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(TaskSequence::Table)
                .if_not_exists()
                .col(
                    ColumnDef::new(TaskSequence::Id)
                        .big_integer()
                        .not_null()
                        .auto_increment()
                        .primary_key(),
                )
                .col(
                    ColumnDef::new(TaskSequence::CreatedAt)
                        .big_integer()
                        .not_null(),
                )
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Tasks::Table)
                .if_not_exists()
                .col(
                    ColumnDef::new(Tasks::Id)
                        .big_integer()
                        .not_null()
                        .primary_key(),
                )
                .col(
                    ColumnDef::new(Tasks::CustomerId)
                        .string_len(ID_LEN)
                        .not_null(),
                )
                .col(ColumnDef::new(Tasks::AgentId).string_len(ID_LEN).null())
                .col(ColumnDef::new(Tasks::Status).string_len(16).not_null())
                .col(ColumnDef::new(Tasks::CreatedAt).big_integer().not_null())
                .col(ColumnDef::new(Tasks::EndedAt).big_integer().null())
                .col(ColumnDef::new(Tasks::RatingScore).integer().null())
                .col(ColumnDef::new(Tasks::RatingComment).string_len(2048).null())
                .to_owned(),
        )
        .await?;
        index(
            m,
            "idx_tasks_customer",
            Tasks::Table,
            &[Tasks::CustomerId, Tasks::Status],
            false,
        )
        .await?;
        index(
            m,
            "idx_tasks_agent",
            Tasks::Table,
            &[Tasks::AgentId, Tasks::Status],
            false,
        )
        .await?;
        index(
            m,
            "idx_tasks_status",
            Tasks::Table,
            &[Tasks::Status, Tasks::Id],
            false,
        )
        .await?;
        m.create_table(
            Table::create()
                .table(TaskAgents::Table)
                .if_not_exists()
                .col(ColumnDef::new(TaskAgents::TaskId).big_integer().not_null())
                .col(
                    ColumnDef::new(TaskAgents::AgentId)
                        .string_len(ID_LEN)
                        .not_null(),
                )
                .col(
                    ColumnDef::new(TaskAgents::AssignedAt)
                        .big_integer()
                        .not_null(),
                )
                .primary_key(
                    Index::create()
                        .col(TaskAgents::TaskId)
                        .col(TaskAgents::AgentId),
                )
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Messages::Table)
                .if_not_exists()
                .col(
                    ColumnDef::new(Messages::Id)
                        .big_integer()
                        .not_null()
                        .auto_increment()
                        .primary_key(),
                )
                .col(ColumnDef::new(Messages::TaskId).big_integer().not_null())
                .col(
                    ColumnDef::new(Messages::Sender)
                        .string_len(ID_LEN)
                        .not_null(),
                )
                .col(
                    ColumnDef::new(Messages::Recipient)
                        .string_len(ID_LEN)
                        .not_null(),
                )
                .col(ColumnDef::new(Messages::Category).string_len(16).not_null())
                .col(ColumnDef::new(Messages::Style).string_len(16).not_null())
                .col(ColumnDef::new(Messages::Kind).string_len(16).not_null())
                .col(ColumnDef::new(Messages::Content).text().not_null())
                .col(ColumnDef::new(Messages::Url).string_len(2048).null())
                .col(ColumnDef::new(Messages::Quote).big_integer().null())
                .col(ColumnDef::new(Messages::Ext).text().null())
                .col(ColumnDef::new(Messages::ClientMsgId).string_len(64).null())
                .col(ColumnDef::new(Messages::CreatedAt).big_integer().not_null())
                .col(ColumnDef::new(Messages::IsRead).boolean().not_null())
                .col(ColumnDef::new(Messages::IsRevoke).boolean().not_null())
                .to_owned(),
        )
        .await?;
        // The dedup guarantee: one row per (sender, client_msg_id), forever.
        index(
            m,
            "uq_messages_client_msg",
            Messages::Table,
            &[Messages::Sender, Messages::ClientMsgId],
            true,
        )
        .await?;
        index(
            m,
            "idx_messages_task",
            Messages::Table,
            &[Messages::TaskId, Messages::Id],
            false,
        )
        .await?;
        index(
            m,
            "idx_messages_unread",
            Messages::Table,
            &[Messages::Recipient, Messages::IsRead, Messages::TaskId],
            false,
        )
        .await?;
        m.create_table(
            Table::create()
                .table(MessageDeletes::Table)
                .if_not_exists()
                .col(
                    ColumnDef::new(MessageDeletes::MessageId)
                        .big_integer()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(MessageDeletes::UserId)
                        .string_len(ID_LEN)
                        .not_null(),
                )
                .primary_key(
                    Index::create()
                        .col(MessageDeletes::MessageId)
                        .col(MessageDeletes::UserId),
                )
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Undelivered::Table)
                .if_not_exists()
                .col(
                    ColumnDef::new(Undelivered::UserId)
                        .string_len(ID_LEN)
                        .not_null(),
                )
                .col(
                    ColumnDef::new(Undelivered::MessageId)
                        .big_integer()
                        .not_null(),
                )
                .primary_key(
                    Index::create()
                        .col(Undelivered::UserId)
                        .col(Undelivered::MessageId),
                )
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Files::Table)
                .if_not_exists()
                .col(
                    ColumnDef::new(Files::Key)
                        .string_len(64)
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new(Files::Owner).string_len(ID_LEN).not_null())
                .col(
                    ColumnDef::new(Files::ContentType)
                        .string_len(128)
                        .not_null(),
                )
                .col(ColumnDef::new(Files::Kind).string_len(16).not_null())
                .col(ColumnDef::new(Files::Size).big_integer().not_null())
                .col(ColumnDef::new(Files::CreatedAt).big_integer().not_null())
                .to_owned(),
        )
        .await?;
        let blob = match m.get_database_backend() {
            DatabaseBackend::MySql => ColumnType::custom("LONGBLOB"),
            _ => ColumnType::Blob,
        };
        m.create_table(
            Table::create()
                .table(FileChunks::Table)
                .if_not_exists()
                .col(
                    ColumnDef::new(FileChunks::FileKey)
                        .string_len(64)
                        .not_null(),
                )
                .col(ColumnDef::new(FileChunks::Seq).integer().not_null())
                .col(ColumnDef::new_with_type(FileChunks::Data, blob).not_null())
                .primary_key(
                    Index::create()
                        .col(FileChunks::FileKey)
                        .col(FileChunks::Seq),
                )
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Users::Table.into_iden(),
            TaskSequence::Table.into_iden(),
            Tasks::Table.into_iden(),
            TaskAgents::Table.into_iden(),
            Messages::Table.into_iden(),
            MessageDeletes::Table.into_iden(),
            Undelivered::Table.into_iden(),
            Files::Table.into_iden(),
            FileChunks::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}

async fn index<T: Iden + Clone + 'static, C: Iden + Clone + 'static>(
    m: &SchemaManager<'_>,
    name: &str,
    table: T,
    cols: &[C],
    unique: bool,
) -> Result<(), DbErr> {
    let mut stmt = Index::create();
    stmt.name(name).table(table).if_not_exists();
    for col in cols {
        stmt.col(col.clone());
    }
    if unique {
        stmt.unique();
    }
    m.create_index(stmt.to_owned()).await
}

#[derive(DeriveIden, Clone)]
enum Users {
    Table,
    Id,
    Role,
    Name,
    PasswordHash,
    Status,
    CreatedAt,
}

#[derive(DeriveIden, Clone)]
enum TaskSequence {
    Table,
    Id,
    CreatedAt,
}

#[derive(DeriveIden, Clone)]
enum Tasks {
    Table,
    Id,
    CustomerId,
    AgentId,
    Status,
    CreatedAt,
    EndedAt,
    RatingScore,
    RatingComment,
}

#[derive(DeriveIden, Clone)]
enum TaskAgents {
    Table,
    TaskId,
    AgentId,
    AssignedAt,
}

#[derive(DeriveIden, Clone)]
enum Messages {
    Table,
    Id,
    TaskId,
    Sender,
    Recipient,
    Category,
    Style,
    Kind,
    Content,
    Url,
    Quote,
    Ext,
    ClientMsgId,
    CreatedAt,
    IsRead,
    IsRevoke,
}

#[derive(DeriveIden, Clone)]
enum MessageDeletes {
    Table,
    MessageId,
    UserId,
}

#[derive(DeriveIden, Clone)]
enum Undelivered {
    Table,
    UserId,
    MessageId,
}

#[derive(DeriveIden, Clone)]
enum Files {
    Table,
    Key,
    Owner,
    ContentType,
    Kind,
    Size,
    CreatedAt,
}

#[derive(DeriveIden, Clone)]
enum FileChunks {
    Table,
    FileKey,
    Seq,
    Data,
}
