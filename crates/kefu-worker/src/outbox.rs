//! Pushes gathered per gateway, then delivered in one batch each.

use crate::{view, Inner};
use bytes::Bytes;
use kefu_proto::v1::{Push, PushBatch, Session};
use std::collections::HashMap;

#[derive(Default)]
pub struct Outbox {
    batches: HashMap<String, Vec<Push>>,
}

impl Outbox {
    /// A frame for one connection (an ack or an error).
    pub fn for_conn(&mut self, session: &Session, frame: Bytes) {
        self.batches
            .entry(session.gateway_id.clone())
            .or_default()
            .push(Push {
                conn_ids: vec![session.conn_id.clone()],
                frame_json: frame,
                ..Push::default()
            });
    }

    /// Closes one connection with `code`, after what was queued for it.
    pub fn close(&mut self, session: &Session, code: u32) {
        self.batches
            .entry(session.gateway_id.clone())
            .or_default()
            .push(Push {
                conn_ids: vec![session.conn_id.clone()],
                close_code: code,
                ..Push::default()
            });
    }

    /// The answer to a send (its ack or error) for the sending connection.
    pub fn send_answer(&mut self, session: &Session, client_msg_id: &str, frame: Bytes) {
        self.batches
            .entry(session.gateway_id.clone())
            .or_default()
            .push(Push {
                conn_ids: vec![session.conn_id.clone()],
                frame_json: frame,
                answers_send: client_msg_id.to_owned(),
                ..Push::default()
            });
    }

    /// A frame for every device of `users` but `exclude_conn`; a non-zero
    /// `message_id` is retransmitted until confirmed.
    pub async fn for_users(
        &mut self,
        inner: &Inner,
        users: Vec<String>,
        exclude_conn: &str,
        frame: Bytes,
        message_id: i64,
    ) {
        let located = Located::find(inner, users).await;
        self.for_located(located, exclude_conn, frame, message_id);
    }

    /// Like [`Outbox::for_users`], for users located already.
    pub fn for_located(
        &mut self,
        located: Located,
        exclude_conn: &str,
        frame: Bytes,
        message_id: i64,
    ) {
        let Located { users, gateways } = located;
        for gateway in gateways {
            self.batches.entry(gateway).or_default().push(Push {
                user_ids: users.clone(),
                exclude_conn: exclude_conn.to_owned(),
                frame_json: frame.clone(),
                message_id: message_id as u64,
                ..Push::default()
            });
        }
    }

    /// Closes, with `code`, the connections of `user` whose token was
    /// issued at or before `up_to` (seconds since the epoch).
    pub async fn close_signed_out(&mut self, inner: &Inner, user: &str, up_to: u64, code: u32) {
        for gateway in gateways_of(inner, &[user.to_owned()]).await {
            self.batches.entry(gateway).or_default().push(Push {
                user_ids: vec![user.to_owned()],
                close_code: code,
                close_issued_up_to: up_to,
                ..Push::default()
            });
        }
    }

    /// Tells every gateway of `user` that these messages were confirmed.
    pub async fn confirmed(&mut self, inner: &Inner, user: &str, ids: Vec<u64>) {
        for gateway in gateways_of(inner, &[user.to_owned()]).await {
            self.batches.entry(gateway).or_default().push(Push {
                confirmed_ids: ids.clone(),
                confirmed_by: user.to_owned(),
                ..Push::default()
            });
        }
    }

    /// Delivers and waits until the pushes have left.
    pub async fn send(self, inner: &Inner) {
        self.send_queued(inner).await.wait().await;
    }

    /// Hands the pushes over; the result resolves once they have left.
    pub async fn send_queued(self, inner: &Inner) -> crate::Pushed {
        let mut sent = Vec::with_capacity(self.batches.len());
        for (gateway, pushes) in self.batches {
            sent.push(inner.gateways.deliver(&gateway, PushBatch { pushes }).await);
        }
        crate::Pushed::new(async move {
            futures::future::join_all(sent.into_iter().map(crate::Pushed::wait)).await;
        })
    }
}

/// Users and the gateways holding any of their connections.
pub struct Located {
    users: Vec<String>,
    gateways: Vec<String>,
}

impl Located {
    /// Looks `users` up in the register; empty ids are left out.
    pub async fn find(inner: &Inner, users: Vec<String>) -> Located {
        let users: Vec<String> = users.into_iter().filter(|u| !u.is_empty()).collect();
        let gateways = gateways_of(inner, &users).await;
        Located { users, gateways }
    }
}

/// The gateways holding any connection of `users`.
async fn gateways_of(inner: &Inner, users: &[String]) -> Vec<String> {
    if users.is_empty() {
        return Vec::new();
    }
    match inner.register.locate(users).await {
        Ok(locations) => {
            inner.locate_outage.recovered();
            let mut gateways: Vec<String> = locations.into_iter().map(|l| l.gateway_id).collect();
            gateways.sort();
            gateways.dedup();
            gateways
        }
        Err(e) => {
            // The message is stored and marked undelivered: the client gets
            // it from /api/offline or the retransmission after reconnect.
            inner.locate_outage.failed(&e);
            Vec::new()
        }
    }
}

/// Pushes a stored message to every device of `users`.
pub(crate) async fn push_stored(
    inner: &Inner,
    m: &kefu_store::entity::message::Model,
    users: Vec<String>,
) {
    let mut out = Outbox::default();
    out.for_users(
        inner,
        users,
        "",
        view::message_frame(m, false).to_json().into(),
        m.id,
    )
    .await;
    out.send(inner).await;
}
