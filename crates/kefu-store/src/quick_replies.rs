//! Agents' quick replies: each agent's own list, on every device they use.

use crate::entity::quick_reply;
use crate::{Result, Store};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder,
};

impl Store {
    /// The agent's quick replies, by title.
    pub async fn quick_replies(&self, agent: &str) -> Result<Vec<quick_reply::Model>> {
        Ok(quick_reply::Entity::find()
            .filter(quick_reply::Column::AgentId.eq(agent))
            .order_by_asc(quick_reply::Column::Title)
            .order_by_asc(quick_reply::Column::Id)
            .all(&self.db)
            .await?)
    }

    pub async fn count_quick_replies(&self, agent: &str) -> Result<u64> {
        Ok(quick_reply::Entity::find()
            .filter(quick_reply::Column::AgentId.eq(agent))
            .count(&self.db)
            .await?)
    }

    pub async fn add_quick_reply(
        &self,
        agent: &str,
        title: &str,
        content: &str,
    ) -> Result<quick_reply::Model> {
        Ok(quick_reply::ActiveModel {
            agent_id: Set(agent.to_owned()),
            title: Set(title.to_owned()),
            content: Set(content.to_owned()),
            updated_at: Set(kefu_protocol::now_ms()),
            ..Default::default()
        }
        .insert(&self.db)
        .await?)
    }

    /// Changes one of the agent's own quick replies; None when the agent has
    /// no reply with that id.
    pub async fn update_quick_reply(
        &self,
        agent: &str,
        id: i64,
        title: &str,
        content: &str,
    ) -> Result<Option<quick_reply::Model>> {
        let Some(row) = self.own_quick_reply(agent, id).await? else {
            return Ok(None);
        };
        let mut row: quick_reply::ActiveModel = row.into();
        row.title = Set(title.to_owned());
        row.content = Set(content.to_owned());
        row.updated_at = Set(kefu_protocol::now_ms());
        Ok(Some(row.update(&self.db).await?))
    }

    /// Deletes one of the agent's own quick replies; false when there was none.
    pub async fn delete_quick_reply(&self, agent: &str, id: i64) -> Result<bool> {
        let deleted = quick_reply::Entity::delete_many()
            .filter(quick_reply::Column::Id.eq(id))
            .filter(quick_reply::Column::AgentId.eq(agent))
            .exec(&self.db)
            .await?;
        Ok(deleted.rows_affected > 0)
    }

    async fn own_quick_reply(&self, agent: &str, id: i64) -> Result<Option<quick_reply::Model>> {
        Ok(quick_reply::Entity::find_by_id(id)
            .filter(quick_reply::Column::AgentId.eq(agent))
            .one(&self.db)
            .await?)
    }
}
