//! Accounts: customers seen in tokens, agents created by operators.

use crate::entity::user;
use crate::{Result, Store};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

pub const AVAILABLE: &str = "available";
pub const AWAY: &str = "away";

impl Store {
    /// Records a user's role and display name, keeping an agent's password
    /// and status. A user id keeps the role it was first recorded with:
    /// another is [`StoreError::RoleTaken`](crate::StoreError::RoleTaken).
    pub async fn upsert_user(&self, id: &str, role: &str, name: &str) -> Result<()> {
        self.check_role(id, role).await?;
        self.insert_user(new_user(id, role, name), [user::Column::Name])
            .await
    }

    /// Inserts `row`, or updates `columns` of the user with its id.
    async fn insert_user<const N: usize>(
        &self,
        row: user::ActiveModel,
        columns: [user::Column; N],
    ) -> Result<()> {
        user::Entity::insert(row)
            .on_conflict(
                OnConflict::column(user::Column::Id)
                    .update_columns(columns)
                    .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await?;
        Ok(())
    }

    /// Creates an agent account, or resets its name and password; refused
    /// for the id of a customer.
    pub async fn create_agent(&self, id: &str, name: &str, password_hash: &str) -> Result<()> {
        self.check_role(id, "agent").await?;
        let row = user::ActiveModel {
            password_hash: Set(Some(password_hash.to_owned())),
            ..new_user(id, "agent", name)
        };
        self.insert_user(row, [user::Column::Name, user::Column::PasswordHash])
            .await
    }

    /// Refuses `role` for an id recorded with another role.
    pub async fn check_role(&self, id: &str, role: &str) -> Result<()> {
        match self.user(id).await? {
            Some(u) if u.role != role => Err(crate::StoreError::RoleTaken {
                id: id.to_owned(),
                role: u.role,
            }),
            _ => Ok(()),
        }
    }

    pub async fn user(&self, id: &str) -> Result<Option<user::Model>> {
        Ok(user::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await?)
    }

    pub async fn users(&self, ids: &[String]) -> Result<Vec<user::Model>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(user::Entity::find()
            .filter(user::Column::Id.is_in(ids.iter().cloned()))
            .all(&self.db)
            .await?)
    }

    /// Every agent account, by id.
    pub async fn agents(&self) -> Result<Vec<user::Model>> {
        Ok(user::Entity::find()
            .filter(user::Column::Role.eq("agent"))
            .order_by_asc(user::Column::Id)
            .all(&self.db)
            .await?)
    }

    pub async fn set_agent_status(&self, id: &str, status: &str) -> Result<()> {
        user::Entity::update_many()
            .col_expr(user::Column::Status, status.into())
            .filter(user::Column::Id.eq(id))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Signs `id` out everywhere: every token issued up to now stops
    /// counting. Records the user (with `role` and `name`) if unknown.
    /// Returns the moment, in ms.
    pub async fn revoke_tokens(&self, id: &str, role: &str, name: &str) -> Result<i64> {
        let now = kefu_protocol::now_ms();
        let row = user::ActiveModel {
            tokens_revoked_at: Set(Some(now)),
            ..new_user(id, role, name)
        };
        self.insert_user(row, [user::Column::TokensRevokedAt])
            .await?;
        Ok(now)
    }

    /// Disables or enables an agent; either way the tokens issued so far
    /// stop counting. Returns the moment, in ms.
    pub async fn set_agent_disabled(&self, id: &str, disabled: bool) -> Result<i64> {
        let now = kefu_protocol::now_ms();
        let changed = user::Entity::update_many()
            .col_expr(user::Column::Disabled, disabled.into())
            .col_expr(user::Column::TokensRevokedAt, Some(now).into())
            .filter(user::Column::Id.eq(id))
            .filter(user::Column::Role.eq("agent"))
            .exec(&self.db)
            .await?;
        if changed.rows_affected == 0 {
            return Err(crate::StoreError::NotFound("agent"));
        }
        Ok(now)
    }

    /// Users signed out or disabled at or after `since_ms`, as
    /// (id, signed out at, disabled), oldest first.
    pub async fn sign_outs_since(&self, since_ms: i64) -> Result<Vec<(String, i64, bool)>> {
        Ok(user::Entity::find()
            .filter(user::Column::TokensRevokedAt.gte(since_ms))
            .order_by_asc(user::Column::TokensRevokedAt)
            .all(&self.db)
            .await?
            .into_iter()
            .filter_map(|u| Some((u.id, u.tokens_revoked_at?, u.disabled)))
            .collect())
    }
}

/// A user row as first recorded: available, no password, never signed out.
fn new_user(id: &str, role: &str, name: &str) -> user::ActiveModel {
    user::ActiveModel {
        id: Set(id.to_owned()),
        role: Set(role.to_owned()),
        name: Set(name.to_owned()),
        password_hash: Set(None),
        status: Set(AVAILABLE.to_owned()),
        created_at: Set(kefu_protocol::now_ms()),
        tokens_revoked_at: Set(None),
        disabled: Set(false),
    }
}
