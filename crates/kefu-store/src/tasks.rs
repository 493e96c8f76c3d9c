//! Service sessions: opening, assignment, the waiting queue, transfer, end, rating.

use crate::entity::{task, task_agent, task_sequence, user};
use crate::{Result, Store, StoreError};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait,
    FromQueryResult, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait,
};
use std::collections::HashMap;

pub const WAITING: &str = "waiting";
pub const OPEN: &str = "open";
pub const ENDED: &str = "ended";

#[derive(FromQueryResult)]
struct AgentCount {
    agent_id: Option<String>,
    n: i64,
}

impl Store {
    /// The customer's task that is waiting or open, if any.
    pub async fn live_task_of(&self, customer: &str) -> Result<Option<task::Model>> {
        Ok(task::Entity::find()
            .filter(task::Column::CustomerId.eq(customer))
            .filter(task::Column::Status.is_in([WAITING, OPEN]))
            .order_by_desc(task::Column::Id)
            .one(&self.db)
            .await?)
    }

    pub async fn task(&self, id: i64) -> Result<Option<task::Model>> {
        Ok(task::Entity::find_by_id(id).one(&self.db).await?)
    }

    /// Opens a task in `shard` for a customer, assigned to `agent` or waiting.
    pub async fn create_task(
        &self,
        customer: &str,
        shard: u32,
        agent: Option<&str>,
        client_ip: Option<&str>,
    ) -> Result<task::Model> {
        let new = crate::writer::NewTask {
            customer: customer.to_owned(),
            name: String::new(),
            shard,
            agent: agent.map(str::to_owned),
            client_ip: client_ip.map(str::to_owned),
            capacity: None,
        };
        self.open_task(&new).await
    }

    /// Opens a task for a customer's first message, recording the customer
    /// (with their name, when it is not empty). With `capacity`, the task is
    /// assigned only while its agent holds fewer open tasks, and opened
    /// waiting otherwise (the returned row says which); the agent's row is
    /// locked for the check, as in [`Store::try_assign_task`].
    pub async fn open_task(&self, new: &crate::writer::NewTask) -> Result<task::Model> {
        let capacity = new.capacity;
        if !new.name.is_empty() {
            self.upsert_user(&new.customer, "customer", &new.name)
                .await?;
        }
        let now = kefu_protocol::now_ms();
        let txn = self.db.begin().await?;
        let agent = match (new.agent.as_deref(), self.capacity_checked(capacity)) {
            (Some(agent), Some(capacity)) => {
                has_room(&txn, agent, capacity).await?.then_some(agent)
            }
            (agent, _) => agent,
        };
        let seq = task_sequence::Entity::insert(task_sequence::ActiveModel {
            created_at: Set(now),
            ..Default::default()
        })
        .exec(&txn)
        .await?
        .last_insert_id;
        let row = task::Model {
            agent_id: agent.map(str::to_owned),
            ..crate::writer::new_task_row(new, seq, now)
        };
        let row = task::Model {
            status: if row.agent_id.is_some() {
                OPEN
            } else {
                WAITING
            }
            .to_owned(),
            ..row
        };
        task::Entity::insert(task::ActiveModel::from(row.clone()))
            .exec_without_returning(&txn)
            .await?;
        if let Some(agent) = agent {
            insert_task_agent(&txn, row.id, agent, now).await?;
        }
        txn.commit().await?;
        Ok(row)
    }

    /// The capacity to check in a transaction. SQLite has one worker, whose
    /// dispatcher already makes assignments take turns; and a read before
    /// the write would let SQLite refuse the write (SQLITE_BUSY_SNAPSHOT)
    /// when the message writer committed in between.
    fn capacity_checked(&self, capacity: Option<i64>) -> Option<i64> {
        capacity.filter(|_| self.db.get_database_backend() != DbBackend::Sqlite)
    }

    /// Gives a task to `agent`, who may then read all of it, if it is still
    /// where the caller saw it: waiting (`from` None) or open with agent
    /// `from`. Fails with Conflict otherwise, so two workers assigning or
    /// transferring at once cannot both win.
    pub async fn assign_task(&self, id: i64, agent: &str, from: Option<&str>) -> Result<()> {
        self.assign_task_within(id, agent, from, None).await
    }

    /// Like [`Store::assign_task`], and only while `agent` holds fewer than
    /// `capacity` open tasks (Conflict otherwise).
    pub async fn assign_task_within(
        &self,
        id: i64,
        agent: &str,
        from: Option<&str>,
        capacity: Option<i64>,
    ) -> Result<()> {
        match self.try_assign_task(id, agent, from, capacity).await? {
            Assigned::Yes => Ok(()),
            Assigned::AgentFull => Err(StoreError::Conflict(format!("{agent} is at capacity"))),
            Assigned::TaskMoved => {
                Err(StoreError::Conflict(format!("task {id} changed meanwhile")))
            }
        }
    }

    /// Gives a task to `agent` if it is still where the caller saw it and
    /// the agent has room. The agent's row is locked for the check, so
    /// workers assigning to one agent at once take turns and none can push
    /// them past their capacity.
    pub async fn try_assign_task(
        &self,
        id: i64,
        agent: &str,
        from: Option<&str>,
        capacity: Option<i64>,
    ) -> Result<Assigned> {
        let txn = self.db.begin().await?;
        if let Some(capacity) = self.capacity_checked(capacity) {
            if !has_room(&txn, agent, capacity).await? {
                return Ok(Assigned::AgentFull);
            }
        }
        let backend = self.backend();
        let updated = txn
            .execute(assign_statement(backend, id, agent, from))
            .await?;
        if updated.rows_affected() == 0 {
            return Ok(Assigned::TaskMoved);
        }
        let now = kefu_protocol::now_ms();
        txn.execute(task_agent_statement(backend, id, agent, now))
            .await?;
        txn.commit().await?;
        Ok(Assigned::Yes)
    }

    /// The agent's open tasks, oldest first.
    pub async fn open_tasks_of(&self, agent: &str) -> Result<Vec<task::Model>> {
        Ok(task::Entity::find()
            .filter(task::Column::AgentId.eq(agent))
            .filter(task::Column::Status.eq(OPEN))
            .order_by_asc(task::Column::Id)
            .all(&self.db)
            .await?)
    }

    /// Puts an open task of `agent` back in the queue. Its place comes from
    /// its creation time, so it goes ahead of every customer who came
    /// later. Conflict when the task changed meanwhile.
    pub async fn requeue_task(&self, id: i64, agent: &str) -> Result<()> {
        let updated = task::Entity::update_many()
            .col_expr(task::Column::AgentId, Expr::value(Option::<String>::None))
            .col_expr(task::Column::Status, Expr::value(WAITING))
            .filter(task::Column::Id.eq(id))
            .filter(task::Column::Status.eq(OPEN))
            .filter(task::Column::AgentId.eq(agent))
            .exec(&self.db)
            .await?;
        if updated.rows_affected == 0 {
            return Err(StoreError::Conflict(format!("task {id} changed meanwhile")));
        }
        Ok(())
    }

    /// Open tasks whose customer has waited for an answer since before
    /// `cutoff_ms`: a customer message older than that with no agent
    /// message at or after it, in a task its agent has held since before
    /// `cutoff_ms`. Oldest first.
    pub async fn unanswered_tasks(&self, cutoff_ms: i64) -> Result<Vec<task::Model>> {
        let backend = self.db.get_database_backend();
        let p = |n: usize| match backend {
            DbBackend::Postgres => format!("${n}"),
            _ => "?".to_owned(),
        };
        let sql = format!(
            "SELECT t.* FROM tasks t \
             JOIN task_agents ta ON ta.task_id = t.id AND ta.agent_id = t.agent_id \
             WHERE t.status = 'open' AND ta.assigned_at < {} AND EXISTS ( \
               SELECT 1 FROM messages c WHERE c.task_id = t.id AND c.category = 'customer' \
               AND c.created_at < {} AND NOT EXISTS ( \
                 SELECT 1 FROM messages a WHERE a.task_id = t.id AND a.category = 'manager' \
                 AND a.created_at >= c.created_at)) \
             ORDER BY t.created_at, t.id",
            p(1),
            p(2)
        );
        let statement = sea_orm::Statement::from_sql_and_values(
            backend,
            sql,
            [cutoff_ms.into(), cutoff_ms.into()],
        );
        Ok(task::Entity::find()
            .from_raw_sql(statement)
            .all(&self.db)
            .await?)
    }

    /// Waiting tasks in arrival order.
    pub async fn waiting_tasks(&self) -> Result<Vec<task::Model>> {
        Ok(task::Entity::find()
            .filter(task::Column::Status.eq(WAITING))
            .order_by_asc(task::Column::CreatedAt)
            .order_by_asc(task::Column::Id)
            .all(&self.db)
            .await?)
    }

    /// How many tasks opened from `client_ip` wait for an agent.
    pub async fn count_waiting_from(&self, client_ip: &str) -> Result<u64> {
        Ok(task::Entity::find()
            .filter(task::Column::Status.eq(WAITING))
            .filter(task::Column::ClientIp.eq(client_ip))
            .count(&self.db)
            .await?)
    }

    /// How many tasks wait for an agent.
    pub async fn count_waiting(&self) -> Result<u64> {
        Ok(task::Entity::find()
            .filter(task::Column::Status.eq(WAITING))
            .count(&self.db)
            .await?)
    }

    /// Open tasks per agent.
    pub async fn open_task_counts(&self) -> Result<HashMap<String, i64>> {
        let rows = task::Entity::find()
            .select_only()
            .column(task::Column::AgentId)
            .column_as(task::Column::Id.count(), "n")
            .filter(task::Column::Status.eq(OPEN))
            .group_by(task::Column::AgentId)
            .into_model::<AgentCount>()
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| r.agent_id.map(|a| (a, r.n)))
            .collect())
    }

    /// Ends a live task. Fails with Conflict when it already ended.
    pub async fn end_task(&self, id: i64) -> Result<()> {
        let end = end_statement(self.backend(), id, kefu_protocol::now_ms());
        if self.db.execute(end).await?.rows_affected() == 0 {
            return Err(not_live(id));
        }
        Ok(())
    }

    /// Ends a task that still waits for an agent (its customer left the
    /// queue); false if it no longer waits.
    pub async fn abandon_waiting_task(&self, id: i64) -> Result<bool> {
        let updated = task::Entity::update_many()
            .col_expr(task::Column::Status, Expr::value(ENDED))
            .col_expr(task::Column::EndedAt, Expr::value(kefu_protocol::now_ms()))
            .filter(task::Column::Id.eq(id))
            .filter(task::Column::Status.eq(WAITING))
            .exec(&self.db)
            .await?;
        Ok(updated.rows_affected == 1)
    }

    /// Rates an ended task once. Fails with Conflict on a second rating.
    pub async fn rate_task(&self, id: i64, score: i32, comment: &str) -> Result<()> {
        let updated = task::Entity::update_many()
            .col_expr(task::Column::RatingScore, Expr::value(score))
            .col_expr(task::Column::RatingComment, Expr::value(comment))
            .filter(task::Column::Id.eq(id))
            .filter(task::Column::Status.eq(ENDED))
            .filter(task::Column::RatingScore.is_null())
            .exec(&self.db)
            .await?;
        if updated.rows_affected == 0 {
            return Err(StoreError::Conflict(format!("task {id} was rated already")));
        }
        Ok(())
    }

    /// A customer's tasks, newest first, at most `limit`.
    pub async fn tasks_of_customer(&self, customer: &str, limit: u64) -> Result<Vec<task::Model>> {
        Ok(task::Entity::find()
            .filter(task::Column::CustomerId.eq(customer))
            .order_by_desc(task::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?)
    }

    /// Whether an agent was ever assigned to the task.
    pub async fn was_assigned(&self, task_id: i64, agent: &str) -> Result<bool> {
        Ok(task_agent::Entity::find_by_id((task_id, agent.to_owned()))
            .one(&self.db)
            .await?
            .is_some())
    }

    /// The agent's open tasks and those ended since `ended_since`, newest first.
    pub async fn contact_tasks(&self, agent: &str, ended_since: i64) -> Result<Vec<task::Model>> {
        Ok(task::Entity::find()
            .filter(task::Column::AgentId.eq(agent))
            .filter(
                Condition::any().add(task::Column::Status.eq(OPEN)).add(
                    task::Column::Status
                        .eq(ENDED)
                        .and(task::Column::EndedAt.gte(ended_since)),
                ),
            )
            .order_by_desc(task::Column::Id)
            .all(&self.db)
            .await?)
    }
}

/// What became of an assignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assigned {
    Yes,
    /// The agent holds `capacity` open tasks already.
    AgentFull,
    /// The task is no longer where the caller saw it.
    TaskMoved,
}

/// Whether `agent` holds fewer than `capacity` open tasks, with the agent's
/// row locked until the transaction ends.
pub(crate) async fn has_room(
    txn: &impl sea_orm::ConnectionTrait,
    agent: &str,
    capacity: i64,
) -> Result<bool> {
    user::Entity::find_by_id(agent.to_owned())
        .lock_exclusive()
        .one(txn)
        .await?;
    let open = task::Entity::find()
        .filter(task::Column::AgentId.eq(agent))
        .filter(task::Column::Status.eq(OPEN))
        .count(txn)
        .await?;
    Ok((open as i64) < capacity)
}

async fn insert_task_agent(
    txn: &impl sea_orm::ConnectionTrait,
    task_id: i64,
    agent: &str,
    now: i64,
) -> Result<()> {
    let backend = txn.get_database_backend();
    txn.execute(task_agent_statement(backend, task_id, agent, now))
        .await?;
    Ok(())
}

/// Gives task `id` to `agent` if it is still waiting (`from` None) or open
/// with agent `from`; no row changes otherwise.
pub(crate) fn assign_statement(
    backend: DbBackend,
    id: i64,
    agent: &str,
    from: Option<&str>,
) -> sea_orm::Statement {
    let update = task::Entity::update_many()
        .col_expr(task::Column::AgentId, Expr::value(agent))
        .col_expr(task::Column::Status, Expr::value(OPEN))
        .filter(task::Column::Id.eq(id));
    let update = match from {
        None => update.filter(task::Column::Status.eq(WAITING)),
        Some(current) => update
            .filter(task::Column::Status.eq(OPEN))
            .filter(task::Column::AgentId.eq(current)),
    };
    update.build(backend)
}

/// Ends task `id` at `now` if it is live; no row changes otherwise.
pub(crate) fn end_statement(backend: DbBackend, id: i64, now: i64) -> sea_orm::Statement {
    task::Entity::update_many()
        .col_expr(task::Column::Status, Expr::value(ENDED))
        .col_expr(task::Column::EndedAt, Expr::value(now))
        .filter(task::Column::Id.eq(id))
        .filter(task::Column::Status.is_in([WAITING, OPEN]))
        .build(backend)
}

pub(crate) fn not_live(id: i64) -> StoreError {
    StoreError::Conflict(format!("task {id} is not live"))
}

/// Records that `agent` was given task `task_id` at `now`.
pub(crate) fn task_agent_statement(
    backend: DbBackend,
    task_id: i64,
    agent: &str,
    now: i64,
) -> sea_orm::Statement {
    task_agent::Entity::insert(task_agent::ActiveModel {
        task_id: Set(task_id),
        agent_id: Set(agent.to_owned()),
        assigned_at: Set(now),
    })
    .on_conflict(
        // Given back to an agent who had it before: their time starts now.
        OnConflict::columns([task_agent::Column::TaskId, task_agent::Column::AgentId])
            .update_column(task_agent::Column::AssignedAt)
            .to_owned(),
    )
    .build(backend)
}
