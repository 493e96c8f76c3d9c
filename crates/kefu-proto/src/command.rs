//! A validated client [`Command`] on the wire between gateway and worker.
//!
//! The gateway checks a frame once ([`Command::from_frame`]) and sends the
//! command typed; the worker takes it back without parsing the client's
//! JSON again. Heartbeats are answered by the gateway and have no wire form.

use crate::v1::{self, client_command::Command as Wire};
use kefu_protocol::{Command, SendCommand};

impl v1::ClientCommand {
    /// The wire form of a command; `None` for a heartbeat, which the gateway
    /// answers itself.
    pub fn from_command(command: Command) -> Option<v1::ClientCommand> {
        let wire = match command {
            Command::Send(s) => Wire::Send(v1::SendCommand {
                style: s.style,
                kind: s.kind,
                content: s.content,
                to: s.to,
                task_id: s.task_id,
                url: s.url,
                quote: s.quote,
                ext: s.ext,
                client_msg_id: s.client_msg_id,
            }),
            Command::Receive { ids } => Wire::Receive(v1::ReceiveCommand { ids }),
            Command::Read {
                task_id,
                up_to,
                client_msg_id,
            } => Wire::Read(v1::ReadCommand {
                task_id,
                up_to,
                client_msg_id,
            }),
            Command::Revoke { id, client_msg_id } => {
                Wire::Revoke(v1::MessageCommand { id, client_msg_id })
            }
            Command::Delete { id, client_msg_id } => {
                Wire::Delete(v1::MessageCommand { id, client_msg_id })
            }
            Command::Typing { task_id, to } => Wire::Typing(v1::TypingCommand { task_id, to }),
            Command::Heartbeat => return None,
        };
        Some(v1::ClientCommand {
            command: Some(wire),
        })
    }

    /// The command again; `None` when the message carries none (a peer
    /// speaking a newer contract).
    pub fn into_command(self) -> Option<Command> {
        Some(match self.command? {
            Wire::Send(s) => Command::Send(SendCommand {
                style: s.style,
                kind: s.kind,
                content: s.content,
                to: s.to,
                task_id: s.task_id,
                url: s.url,
                quote: s.quote,
                ext: s.ext,
                client_msg_id: s.client_msg_id,
            }),
            Wire::Receive(r) => Command::Receive { ids: r.ids },
            Wire::Read(r) => Command::Read {
                task_id: r.task_id,
                up_to: r.up_to,
                client_msg_id: r.client_msg_id,
            },
            Wire::Revoke(m) => Command::Revoke {
                id: m.id,
                client_msg_id: m.client_msg_id,
            },
            Wire::Delete(m) => Command::Delete {
                id: m.id,
                client_msg_id: m.client_msg_id,
            },
            Wire::Typing(t) => Command::Typing {
                task_id: t.task_id,
                to: t.to,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kefu_protocol::{Claims, Frame, Limits, Role};
    use prost::Message;

    /// Every command a client can send survives the trip through protobuf
    /// bytes unchanged, `ext` included as the gateway encoded it.
    #[test]
    fn every_command_comes_back_as_it_left() {
        let customer = Claims::new("c-1".to_owned(), Role::Customer, u64::MAX);
        let frames = [
            r#"{"category":"customer","action":"send","content":"hi","client_msg_id":"m-1"}"#,
            r#"{"category":"customer","action":"send","style":"card","kind":"text","content":"x","to":"a-1","task_id":7,"url":"https://e.com/a","quote":3,"ext":{"url":"https://e.com","n":[1,2]},"client_msg_id":"m-2"}"#,
            r#"{"category":"receive","id":5,"ext":{"ids":[6,7]}}"#,
            r#"{"category":"customer","action":"read","task_id":4,"quote":9,"client_msg_id":"r"}"#,
            r#"{"category":"customer","action":"revoke","quote":9}"#,
            r#"{"category":"customer","action":"delete","quote":9,"client_msg_id":"d"}"#,
            r#"{"category":"customer","action":"typing","task_id":4}"#,
            r#"{"category":"customer","action":"typing","to":"a-1"}"#,
        ];
        for text in frames {
            let frame = Frame::parse(text.as_bytes()).expect("parses");
            let command = Command::from_frame(frame, &customer, &Limits::default()).expect("valid");
            let wire = v1::ClientCommand::from_command(command.clone()).expect("has a wire form");
            let bytes = wire.encode_to_vec();
            let back = v1::ClientCommand::decode(bytes.as_slice())
                .expect("decodes")
                .into_command();
            assert_eq!(back.as_ref(), Some(&command), "{text}");
        }
    }

    #[test]
    fn a_heartbeat_stays_at_the_gateway_and_an_empty_command_is_none() {
        assert_eq!(v1::ClientCommand::from_command(Command::Heartbeat), None);
        assert_eq!(v1::ClientCommand::default().into_command(), None);
    }
}
