//! Pushes gathered per gateway, then delivered in one batch each.

use crate::{view, Inner};
use bytes::Bytes;
use kefu_proto::v1::push::Kind;
use kefu_proto::v1::{Close, Confirmed, Fanout, Push, PushBatch, Reply, Session};
use kefu_protocol::{Frame, ProtocolError};
use std::collections::HashMap;

#[derive(Default)]
pub struct Outbox {
    batches: HashMap<String, Vec<Push>>,
}

impl Outbox {
    fn to(&mut self, gateway: &str, kind: Kind) {
        self.batches
            .entry(gateway.to_owned())
            .or_default()
            .push(Push { kind: Some(kind) });
    }

    /// A frame for one connection (an ack, a notice).
    pub fn reply(&mut self, session: &Session, frame: &Frame) {
        self.reply_to(session, frame, false, None);
    }

    /// The error ack for a frame of `action` from one connection.
    pub fn refuse(
        &mut self,
        session: &Session,
        action: &str,
        client_msg_id: Option<String>,
        error: &ProtocolError,
    ) {
        let frame = Frame::error(action, client_msg_id, error.code, &error.message);
        self.reply_to(session, &frame, error.code.is_refusal(), None);
    }

    /// The answer to a send, its ack (`Ok`) or its error, for the sending
    /// connection.
    pub fn answer(
        &mut self,
        session: &Session,
        client_msg_id: &str,
        answer: Result<Frame, ProtocolError>,
    ) {
        let (frame, refused) = match answer {
            Ok(ack) => (ack, false),
            Err(e) => (
                Frame::error("send", Some(client_msg_id.to_owned()), e.code, &e.message),
                e.code.is_refusal(),
            ),
        };
        self.reply_to(session, &frame, refused, Some(client_msg_id));
    }

    fn reply_to(&mut self, session: &Session, frame: &Frame, refused: bool, answers: Option<&str>) {
        let reply = Reply {
            conn_id: session.conn_id.clone(),
            frame_json: frame.to_json().into(),
            refused,
            client_msg_id: answers.unwrap_or_default().to_owned(),
        };
        let kind = match answers {
            Some(_) => Kind::Answer(reply),
            None => Kind::Reply(reply),
        };
        self.to(&session.gateway_id, kind);
    }

    /// Closes one connection with `code`, after what was queued for it.
    pub fn close(&mut self, session: &Session, code: u32) {
        let close = Close {
            code,
            conn_id: session.conn_id.clone(),
            ..Close::default()
        };
        self.to(&session.gateway_id, Kind::Close(close));
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
            let fanout = Fanout {
                user_ids: users.clone(),
                exclude_conn: exclude_conn.to_owned(),
                frame_json: frame.clone(),
                message_id: message_id as u64,
            };
            self.to(&gateway, Kind::Fanout(fanout));
        }
    }

    /// Closes, with `code`, the connections of `user` whose token was
    /// issued at or before `up_to` (seconds since the epoch).
    pub async fn close_signed_out(&mut self, inner: &Inner, user: &str, up_to: u64, code: u32) {
        for gateway in gateways_of(inner, &[user.to_owned()]).await {
            let close = Close {
                code,
                user_id: user.to_owned(),
                issued_up_to: up_to,
                ..Close::default()
            };
            self.to(&gateway, Kind::Close(close));
        }
    }

    /// Tells every gateway of `user` that these messages were confirmed.
    pub async fn confirmed(&mut self, inner: &Inner, user: &str, ids: Vec<u64>) {
        for gateway in gateways_of(inner, &[user.to_owned()]).await {
            let confirmed = Confirmed {
                user_id: user.to_owned(),
                message_ids: ids.clone(),
            };
            self.to(&gateway, Kind::Confirmed(confirmed));
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
