//! Messages: send, receive confirmations, read receipts, revoke, delete, typing.

use crate::lane::Finish;
use crate::outbox::{push_stored, Located, Outbox};
use crate::{metrics, pushed, store_error, tasks, view, Inner, Pushed, Sender};
use futures::future::BoxFuture;
use kefu_protocol::{Command, Frame, ProtocolError, Role, SendCommand};
use kefu_store::entity::task;
use kefu_store::writer::Written;
use kefu_store::NewMessage;
use std::sync::Arc;
use std::time::Instant;

/// What a send leaves for after its commit, in two steps: waiting for the
/// commit and locating the recipients, which may overlap the tails of the
/// sends after it, yields the ack and fan-out, which run in the lane's
/// order and yield the future of the pushes leaving this worker.
pub(crate) type SendTail = BoxFuture<'static, Finish<Pushed>>;

/// A send's head: checks, finds or opens the task, queues the message. The
/// returned tail acks and fans out once the row is committed.
pub(crate) async fn send(inner: Arc<Inner>, sender: Sender, cmd: SendCommand) -> Option<SendTail> {
    let action_cmid = cmd.client_msg_id.clone();
    let prepared = match prepare(&inner, &sender, cmd).await {
        Ok(Prepared::New(message)) => message,
        Ok(Prepared::Resent(first)) => {
            let written = Written {
                message: first,
                duplicate: true,
            };
            return Some(Box::pin(after_commit(inner, sender, written)));
        }
        Err(e) => {
            refuse_send(&inner, &sender, action_cmid, e).await;
            return None;
        }
    };
    let started = Instant::now();
    let pending = match inner.writer.enqueue(prepared).await {
        Ok(p) => p,
        Err(e) => {
            refuse_send(&inner, &sender, action_cmid, store_error(e)).await;
            return None;
        }
    };
    Some(Box::pin(async move {
        let written = pending
            .await
            .unwrap_or(Err(kefu_store::StoreError::WriterStopped));
        metrics::STORE_SECONDS.observe(started.elapsed().as_secs_f64());
        match written {
            Ok(w) => after_commit(inner, sender, w).await,
            Err(e) => Finish::new(async move {
                refuse_send(&inner, &sender, action_cmid, store_error(e)).await;
                pushed()
            }),
        }
    }))
}

async fn refuse_send(inner: &Inner, sender: &Sender, client_msg_id: String, e: ProtocolError) {
    let mut out = Outbox::default();
    out.answer(&sender.session, &client_msg_id, Err(e));
    out.send(inner).await;
}

/// What a send turns out to be before it is stored.
enum Prepared {
    New(NewMessage),
    /// A resend of a message stored earlier, whose task may have ended or
    /// moved since: it gets the first ack, whatever became of the task.
    Resent(kefu_store::entity::message::Model),
}

async fn prepare(
    inner: &Arc<Inner>,
    sender: &Sender,
    cmd: SendCommand,
) -> Result<Prepared, ProtocolError> {
    let task = match sender.role {
        Role::Customer => match tasks::live_of(inner, sender.user()).await? {
            Some(task) => Ok(task),
            // Only a send that would open a task can be the resend of one
            // stored in an earlier task; the writer's dedup covers the rest.
            None => match sent_before(inner, sender, &cmd.client_msg_id).await? {
                Some(first) => return Ok(Prepared::Resent(first)),
                None => tasks::open(inner, sender).await,
            },
        },
        Role::Agent => agent_task(inner, sender, cmd.task_id, cmd.to.as_deref()).await,
        Role::Admin => Err(ProtocolError::forbidden("admins do not send messages")),
    };
    let task = match task {
        Ok(task) => task,
        Err(e) => {
            return match sent_before(inner, sender, &cmd.client_msg_id).await? {
                Some(first) => Ok(Prepared::Resent(first)),
                None => Err(e),
            }
        }
    };
    let recipient = match sender.role {
        Role::Customer => task.agent_id.clone().unwrap_or_default(),
        _ => task.customer_id.clone(),
    };
    Ok(Prepared::New(NewMessage {
        task_id: task.id,
        sender: sender.user().to_owned(),
        undelivered_for: if recipient.is_empty() {
            Vec::new()
        } else {
            vec![recipient.clone()]
        },
        recipient,
        category: sender.role.category().to_owned(),
        style: cmd.style,
        kind: cmd.kind,
        content: cmd.content,
        url: cmd.url,
        quote: cmd.quote,
        ext: cmd.ext.map(|e| e.to_string()),
        client_msg_id: Some(cmd.client_msg_id),
        created_at: kefu_protocol::now_ms(),
    }))
}

async fn sent_before(
    inner: &Inner,
    sender: &Sender,
    client_msg_id: &str,
) -> Result<Option<kefu_store::entity::message::Model>, ProtocolError> {
    inner
        .store
        .sent_before(sender.user(), client_msg_id)
        .await
        .map_err(store_error)
}

/// The open task an agent writes into: named by id or by its customer; the
/// agent must be its current agent.
async fn agent_task(
    inner: &Inner,
    sender: &Sender,
    task_id: Option<i64>,
    to: Option<&str>,
) -> Result<task::Model, ProtocolError> {
    let task = match (task_id, to) {
        (Some(id), _) => tasks::by_id(inner, id).await?,
        (None, Some(customer)) => tasks::live_of(inner, customer).await?,
        (None, None) => None,
    };
    let task = task.ok_or_else(|| ProtocolError::not_found("no such open task"))?;
    if let Some(to) = to {
        if to != task.customer_id {
            return Err(ProtocolError::bad_request("to is not the task's customer"));
        }
    }
    if task.agent_id.as_deref() != Some(sender.user()) {
        return Err(ProtocolError::forbidden("the task is not assigned to you"));
    }
    if task.status != kefu_store::tasks::OPEN {
        return Err(ProtocolError::forbidden("the task is not open"));
    }
    Ok(task)
}

/// Once a message is committed: locates its recipient and sender (beside
/// the lane's other tails), then returns the ack and fan-out to run in order.
/// The lookup starts only after the commit, so a device that connects
/// before it is found, and one that connects after it reads the row.
async fn after_commit(inner: Arc<Inner>, sender: Sender, written: Written) -> Finish<Pushed> {
    if written.duplicate {
        return Finish::new(async move {
            metrics::DUPLICATES.inc();
            let m = written.message;
            let mut out = Outbox::default();
            ack(&mut out, &sender, &m);
            out.send(&inner).await;
            redrive(&inner, &m).await;
            pushed()
        });
    }
    let m = written.message;
    let located = Located::find(&inner, vec![m.recipient.clone(), m.sender.clone()]).await;
    Finish::new(async move {
        metrics::MESSAGES_STORED.inc();
        let mut out = Outbox::default();
        ack(&mut out, &sender, &m);
        let frame = view::message_frame(&m, false).to_json();
        out.for_located(located, &sender.session.conn_id, frame.into(), m.id);
        if !m.recipient.is_empty() {
            return out.send_queued(&inner).await;
        }
        out.send(&inner).await;
        // Stored while the task waited: if an agent took the task meanwhile,
        // the message is theirs.
        crate::notices::hand_over_waiting_messages(&inner, m.task_id).await;
        pushed()
    })
}

/// The ack of a stored send, for the connection that sent it.
fn ack(out: &mut Outbox, sender: &Sender, m: &kefu_store::entity::message::Model) {
    let client_msg_id = m.client_msg_id.as_deref().unwrap_or_default();
    out.answer(&sender.session, client_msg_id, Ok(view::send_ack(m)));
}

/// A resend of a stored message: if its recipient has not confirmed it (the
/// first push may have died with a worker), push it to them again.
async fn redrive(inner: &Inner, m: &kefu_store::entity::message::Model) {
    if m.recipient.is_empty() {
        return;
    }
    match inner.store.is_undelivered(&m.recipient, m.id).await {
        Ok(true) => push_stored(inner, m, vec![m.recipient.clone()]).await,
        Ok(false) => {}
        Err(e) => tracing::warn!(error = %e, "cannot check delivery"),
    }
}

/// A device confirmed pushes: they are delivered. The receipt joins the
/// next commit; false if it could not be queued.
pub(crate) async fn receive(inner: &Inner, sender: &Sender, ids: Vec<i64>) -> bool {
    match inner.writer.confirm(sender.user(), ids).await {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(error = %e, "cannot record receipt");
            false
        }
    }
}

/// Tells every device of the user that these pushes were confirmed, so
/// their retransmission stops; resolves once the pushes have left.
pub(crate) async fn announce_confirmed(inner: &Inner, sender: &Sender, ids: Vec<i64>) -> Pushed {
    let mut out = Outbox::default();
    out.confirmed(
        inner,
        sender.user(),
        ids.into_iter().map(|i| i as u64).collect(),
    )
    .await;
    out.send_queued(inner).await
}

/// Read, revoke, delete and typing: each answered with an ack or an error
/// (typing only with an error).
pub(crate) async fn other(inner: Arc<Inner>, sender: Sender, command: Command) {
    let action = command.action();
    let cmid = match &command {
        Command::Read { client_msg_id, .. }
        | Command::Revoke { client_msg_id, .. }
        | Command::Delete { client_msg_id, .. } => client_msg_id.clone(),
        _ => None,
    };
    let result = match command {
        Command::Read { task_id, up_to, .. } => read(&inner, &sender, task_id, up_to).await,
        Command::Revoke { id, .. } => revoke(&inner, &sender, id).await,
        Command::Delete { id, .. } => delete(&inner, &sender, id).await,
        Command::Typing { task_id, to } => {
            typing(&inner, &sender, task_id, to).await.map(|_| false)
        }
        _ => Ok(false),
    };
    let mut out = Outbox::default();
    match result {
        Ok(true) => out.reply(&sender.session, &Frame::ack(action, cmid)),
        Ok(false) => return,
        Err(e) => out.refuse(&sender.session, action, cmid, &e),
    }
    out.send(&inner).await
}

/// The task's other side, seen from `sender`, if `sender` takes part in it.
async fn other_side(
    inner: &Inner,
    sender: &Sender,
    task: &task::Model,
) -> Result<Option<String>, ProtocolError> {
    if sender.role == Role::Customer {
        if task.customer_id != sender.user() {
            return Err(ProtocolError::forbidden("not your task"));
        }
        return Ok(task.agent_id.clone());
    }
    let current = task.agent_id.as_deref() == Some(sender.user());
    if !current
        && !inner
            .store
            .was_assigned(task.id, sender.user())
            .await
            .map_err(store_error)?
    {
        return Err(ProtocolError::forbidden("not your task"));
    }
    Ok(Some(task.customer_id.clone()))
}

async fn task(inner: &Inner, id: i64) -> Result<task::Model, ProtocolError> {
    inner
        .store
        .task(id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| ProtocolError::not_found("no such task"))
}

async fn read(
    inner: &Inner,
    sender: &Sender,
    task_id: i64,
    up_to: i64,
) -> Result<bool, ProtocolError> {
    let task = task(inner, task_id).await?;
    let other = other_side(inner, sender, &task).await?;
    inner
        .store
        .mark_read(task_id, sender.user(), up_to)
        .await
        .map_err(store_error)?;
    let mut frame = Frame::system("read");
    frame.task_id = Some(task_id);
    frame.quote = Some(up_to);
    frame.from = Some(sender.user().to_owned());
    let mut out = Outbox::default();
    let users = other
        .into_iter()
        .chain([sender.user().to_owned()])
        .collect();
    out.for_users(
        inner,
        users,
        &sender.session.conn_id,
        frame.to_json().into(),
        0,
    )
    .await;
    out.send(inner).await;
    Ok(true)
}

async fn message(
    inner: &Inner,
    id: i64,
) -> Result<kefu_store::entity::message::Model, ProtocolError> {
    inner
        .store
        .message(id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| ProtocolError::not_found("no such message"))
}

async fn revoke(inner: &Inner, sender: &Sender, id: i64) -> Result<bool, ProtocolError> {
    let message = message(inner, id).await?;
    if message.sender != sender.user() {
        return Err(ProtocolError::forbidden(
            "only the sender may revoke a message",
        ));
    }
    let age_ms = kefu_protocol::now_ms() - message.created_at;
    if age_ms > inner.config.revoke_window.as_millis() as i64 {
        return Err(ProtocolError::forbidden("too late to revoke"));
    }
    inner.store.revoke(id).await.map_err(store_error)?;
    let task = task(inner, message.task_id).await?;
    let mut frame = Frame::system("revoke");
    frame.style = Some("toast".into());
    frame.task_id = Some(task.id);
    frame.quote = Some(id);
    frame.from = Some(sender.user().to_owned());
    let users = vec![
        task.customer_id.clone(),
        task.agent_id.clone().unwrap_or_default(),
    ];
    let mut out = Outbox::default();
    out.for_users(inner, users, "", frame.to_json().into(), 0)
        .await;
    out.send(inner).await;
    Ok(true)
}

async fn delete(inner: &Inner, sender: &Sender, id: i64) -> Result<bool, ProtocolError> {
    let message = message(inner, id).await?;
    if message.sender != sender.user() && message.recipient != sender.user() {
        let task = task(inner, message.task_id).await?;
        other_side(inner, sender, &task).await?;
    }
    inner
        .store
        .delete_for(id, sender.user())
        .await
        .map_err(store_error)?;
    let mut frame = Frame::system("delete");
    frame.task_id = Some(message.task_id);
    frame.quote = Some(id);
    frame.from = Some(sender.user().to_owned());
    let mut out = Outbox::default();
    out.for_users(
        inner,
        vec![sender.user().to_owned()],
        &sender.session.conn_id,
        frame.to_json().into(),
        0,
    )
    .await;
    out.send(inner).await;
    Ok(true)
}

async fn typing(
    inner: &Inner,
    sender: &Sender,
    task_id: Option<i64>,
    to: Option<String>,
) -> Result<(), ProtocolError> {
    let task = match (task_id, to) {
        (Some(id), _) => task(inner, id).await?,
        (None, Some(customer)) => inner
            .store
            .live_task_of(&customer)
            .await
            .map_err(store_error)?
            .ok_or_else(|| ProtocolError::not_found("no such task"))?,
        (None, None) => return Err(ProtocolError::bad_request("typing needs task_id")),
    };
    let Some(other) = other_side(inner, sender, &task).await? else {
        return Ok(());
    };
    let mut frame = Frame::system("typing");
    frame.task_id = Some(task.id);
    frame.from = Some(sender.user().to_owned());
    let mut out = Outbox::default();
    out.for_users(inner, vec![other], "", frame.to_json().into(), 0)
        .await;
    out.send(inner).await;
    Ok(())
}
