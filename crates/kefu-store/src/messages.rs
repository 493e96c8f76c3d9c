//! Reading and changing stored messages: history, offline, receipts, read,
//! revoke, delete, unread counts.

use crate::entity::{message, message_delete, undelivered};
use crate::{Result, Store};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait,
    FromQueryResult, QueryFilter, QueryOrder, QuerySelect, QueryTrait,
};

use kefu_protocol::token::SYSTEM_USER as SYSTEM;
use std::collections::{HashMap, HashSet};

/// The field of a queue notice's `ext` that holds the place it told.
pub const QUEUE_PLACE: &str = "queue_position";

/// Task ids per query when reading the places told: a long queue's ids
/// stay well under every backend's limit on bound values.
const TASKS_PER_QUERY: usize = 500;

/// A message as one user sees it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub message: message::Model,
    pub deleted: bool,
}

#[derive(FromQueryResult)]
struct TaskCount {
    task_id: i64,
    n: i64,
}

#[derive(FromQueryResult)]
struct TaskMax {
    id: i64,
}

impl Store {
    pub async fn message(&self, id: i64) -> Result<Option<message::Model>> {
        Ok(message::Entity::find_by_id(id).one(&self.db).await?)
    }

    /// One page of a task's history as `viewer` sees it: the `limit` newest
    /// messages below `before`, oldest first.
    pub async fn history(
        &self,
        task_id: i64,
        before: Option<i64>,
        limit: u64,
        viewer: &str,
    ) -> Result<Vec<Seen>> {
        self.history_where(task_id, before, limit, viewer, Condition::all())
            .await
    }

    /// Like [`Store::history`], without the system notices addressed to
    /// someone else: a customer's queue positions are not the agent's.
    pub async fn participant_history(
        &self,
        task_id: i64,
        before: Option<i64>,
        limit: u64,
        viewer: &str,
    ) -> Result<Vec<Seen>> {
        self.history_where(task_id, before, limit, viewer, notices_for(viewer))
            .await
    }

    async fn history_where(
        &self,
        task_id: i64,
        before: Option<i64>,
        limit: u64,
        viewer: &str,
        only: Condition,
    ) -> Result<Vec<Seen>> {
        let mut query = message::Entity::find()
            .filter(message::Column::TaskId.eq(task_id))
            .filter(only);
        if let Some(before) = before {
            query = query.filter(message::Column::Id.lt(before));
        }
        let mut rows = query
            .order_by_desc(message::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?;
        rows.reverse();
        self.seen_by(rows, viewer).await
    }

    /// The user's messages no device of theirs has confirmed, in id order.
    pub async fn offline(&self, user: &str, after: i64, limit: u64) -> Result<Vec<Seen>> {
        let ids: Vec<i64> = undelivered::Entity::find()
            .filter(undelivered::Column::UserId.eq(user))
            .filter(undelivered::Column::MessageId.gt(after))
            .order_by_asc(undelivered::Column::MessageId)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|u| u.message_id)
            .collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = message::Entity::find()
            .filter(message::Column::Id.is_in(ids))
            .order_by_asc(message::Column::Id)
            .all(&self.db)
            .await?;
        self.seen_by(rows, user).await
    }

    /// A device of `user` received these messages: they are delivered.
    pub async fn confirm(&self, user: &str, ids: &[i64]) -> Result<()> {
        undelivered::Entity::delete_many()
            .filter(undelivered::Column::UserId.eq(user))
            .filter(undelivered::Column::MessageId.is_in(ids.iter().copied()))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// The message a sender already sent with this client_msg_id, if any.
    pub async fn sent_before(
        &self,
        sender: &str,
        client_msg_id: &str,
    ) -> Result<Option<message::Model>> {
        Ok(message::Entity::find()
            .filter(message::Column::Sender.eq(sender))
            .filter(message::Column::ClientMsgId.eq(client_msg_id))
            .one(&self.db)
            .await?)
    }

    /// Whether no device of `user` has confirmed message `id` yet.
    pub async fn is_undelivered(&self, user: &str, id: i64) -> Result<bool> {
        Ok(undelivered::Entity::find_by_id((user.to_owned(), id))
            .one(&self.db)
            .await?
            .is_some())
    }

    /// Marks the reader's messages of a task up to `up_to` read; returns how many changed.
    pub async fn mark_read(&self, task_id: i64, reader: &str, up_to: i64) -> Result<u64> {
        let res = message::Entity::update_many()
            .col_expr(message::Column::IsRead, Expr::value(true))
            .filter(message::Column::TaskId.eq(task_id))
            .filter(message::Column::Recipient.eq(reader))
            .filter(message::Column::Id.lte(up_to))
            .filter(message::Column::IsRead.eq(false))
            .exec(&self.db)
            .await?;
        Ok(res.rows_affected)
    }

    pub async fn revoke(&self, id: i64) -> Result<()> {
        message::Entity::update_many()
            .col_expr(message::Column::IsRevoke, Expr::value(true))
            .filter(message::Column::Id.eq(id))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Hides a message for one user.
    pub async fn delete_for(&self, id: i64, user: &str) -> Result<()> {
        message_delete::Entity::insert(message_delete::ActiveModel {
            message_id: Set(id),
            user_id: Set(user.to_owned()),
        })
        .on_conflict(
            OnConflict::columns([
                message_delete::Column::MessageId,
                message_delete::Column::UserId,
            ])
            .update_column(message_delete::Column::MessageId)
            .to_owned(),
        )
        .exec_without_returning(&self.db)
        .await?;
        Ok(())
    }

    /// Unread messages addressed to `user`, per task; system messages never count.
    pub async fn unread_by_task(&self, user: &str) -> Result<HashMap<i64, i64>> {
        let rows = message::Entity::find()
            .select_only()
            .column(message::Column::TaskId)
            .column_as(message::Column::Id.count(), "n")
            .filter(message::Column::Recipient.eq(user))
            .filter(message::Column::IsRead.eq(false))
            .filter(message::Column::Category.ne("system"))
            .group_by(message::Column::TaskId)
            .into_model::<TaskCount>()
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(|r| (r.task_id, r.n)).collect())
    }

    /// Each task's newest message that `viewer` sees (system notices to
    /// others left out).
    pub async fn last_messages(
        &self,
        task_ids: &[i64],
        viewer: &str,
    ) -> Result<HashMap<i64, message::Model>> {
        if task_ids.is_empty() {
            return Ok(HashMap::new());
        }
        let ids: Vec<i64> = message::Entity::find()
            .select_only()
            .column_as(message::Column::Id.max(), "id")
            .filter(message::Column::TaskId.is_in(task_ids.iter().copied()))
            .filter(notices_for(viewer))
            .group_by(message::Column::TaskId)
            .into_model::<TaskMax>()
            .all(&self.db)
            .await?
            .into_iter()
            .map(|r| r.id)
            .collect();
        let rows = message::Entity::find()
            .filter(message::Column::Id.is_in(ids))
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(|m| (m.task_id, m)).collect())
    }

    /// Gives a task's messages that were stored while it waited (no
    /// recipient) to its agent. Each row is claimed by one caller only, so two
    /// workers racing here never both push it.
    pub async fn claim_waiting_messages(
        &self,
        task_id: i64,
        agent: &str,
    ) -> Result<Vec<message::Model>> {
        let unclaimed = self.unclaimed_messages(task_id).await?;
        let backend = self.backend();
        let mut claimed = Vec::new();
        for mut m in unclaimed {
            let (claim, mark) = claim_statements(backend, m.id, agent);
            let txn = self.db.begin().await?;
            if txn.execute(claim).await?.rows_affected() == 1 {
                txn.execute(mark).await?;
                m.recipient = agent.to_owned();
                claimed.push(m);
            }
            txn.commit().await?;
        }
        Ok(claimed)
    }

    /// The last place in line each of these tasks was told, read from the
    /// queue notices in their histories; a task never told is absent.
    /// A dispatcher taking over reads it, so that it tells those its
    /// predecessor had not told yet and repeats nothing to the others.
    pub async fn queue_places_told(&self, task_ids: &[i64]) -> Result<HashMap<i64, usize>> {
        let mut told = HashMap::new();
        for chunk in task_ids.chunks(TASKS_PER_QUERY) {
            let notices: Vec<(i64, Option<String>)> = message::Entity::find()
                .select_only()
                .columns([message::Column::TaskId, message::Column::Ext])
                .filter(message::Column::TaskId.is_in(chunk.iter().copied()))
                .filter(message::Column::Sender.eq(SYSTEM))
                .filter(message::Column::Ext.like(format!("%\"{QUEUE_PLACE}\"%")))
                .order_by_asc(message::Column::Id)
                .into_tuple()
                .all(&self.db)
                .await?;
            for (task_id, ext) in notices {
                let place = ext
                    .and_then(|ext| serde_json::from_str::<serde_json::Value>(&ext).ok())
                    .and_then(|ext| usize::try_from(ext[QUEUE_PLACE].as_u64()?).ok());
                if let Some(place) = place {
                    told.insert(task_id, place);
                }
            }
        }
        Ok(told)
    }

    /// The messages of a task stored while it waited for an agent.
    pub(crate) async fn unclaimed_messages(&self, task_id: i64) -> Result<Vec<message::Model>> {
        Ok(message::Entity::find()
            .filter(message::Column::TaskId.eq(task_id))
            .filter(message::Column::Recipient.eq(""))
            .order_by_asc(message::Column::Id)
            .all(&self.db)
            .await?)
    }

    async fn seen_by(&self, rows: Vec<message::Model>, viewer: &str) -> Result<Vec<Seen>> {
        let deleted: HashSet<i64> = if rows.is_empty() {
            HashSet::new()
        } else {
            message_delete::Entity::find()
                .filter(message_delete::Column::UserId.eq(viewer))
                .filter(message_delete::Column::MessageId.is_in(rows.iter().map(|m| m.id)))
                .all(&self.db)
                .await?
                .into_iter()
                .map(|d| d.message_id)
                .collect()
        };
        Ok(rows
            .into_iter()
            .map(|message| Seen {
                deleted: deleted.contains(&message.id),
                message,
            })
            .collect())
    }
}

/// Messages people wrote, and system notices addressed to `viewer`.
fn notices_for(viewer: &str) -> Condition {
    Condition::any()
        .add(message::Column::Sender.ne(SYSTEM))
        .add(message::Column::Recipient.eq(viewer))
}

/// Claiming message `id` for `agent`: the update, which changes no row if
/// another claim came first, and the undelivered mark to write if it did.
pub(crate) fn claim_statements(
    backend: DbBackend,
    id: i64,
    agent: &str,
) -> (sea_orm::Statement, sea_orm::Statement) {
    let claim = message::Entity::update_many()
        .col_expr(message::Column::Recipient, Expr::value(agent))
        .filter(message::Column::Id.eq(id))
        .filter(message::Column::Recipient.eq(""))
        .build(backend);
    let mark = undelivered::Entity::insert(undelivered::ActiveModel {
        user_id: Set(agent.to_owned()),
        message_id: Set(id),
    })
    .build(backend);
    (claim, mark)
}
