//! The schema, as sea-orm migrations: one set for SQLite, MySQL and PostgreSQL.

use sea_orm_migration::prelude::*;

mod m20261126_000001_init;
mod m20261201_000002_quick_replies;
mod m20261202_000003_task_client_ip;
mod m20261202_000004_user_sign_out;
mod m20261203_000005_sqlite_pages;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261126_000001_init::Migration),
            Box::new(m20261201_000002_quick_replies::Migration),
            Box::new(m20261202_000003_task_client_ip::Migration),
            Box::new(m20261202_000004_user_sign_out::Migration),
            Box::new(m20261203_000005_sqlite_pages::Migration),
        ]
    }
}
