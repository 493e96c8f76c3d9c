//! The opening most tests share: an agent online, then a customer whose first
//! message opens a task that the agent receives.

use super::client::{Client, WAIT};
use super::frames::{push_of, Acked};
use super::server::Server;

pub struct Chat {
    pub customer: Client,
    pub agent: Client,
    pub task_id: i64,
    /// The customer's first message.
    pub first: Acked,
}

impl Chat {
    /// Agent `a1` and customer `c1`, both confirming pushes.
    pub async fn open(server: &Server) -> Chat {
        Chat::between(server, "c1", "a1").await
    }

    pub async fn between(server: &Server, customer_id: &str, agent_id: &str) -> Chat {
        let agent = server.agent(agent_id).await;
        Chat::with_agent(server, customer_id, agent).await
    }

    /// The customer opens a task that `agent` (already connected, and the
    /// only one free) receives.
    pub async fn with_agent(server: &Server, customer_id: &str, mut agent: Client) -> Chat {
        let mut customer = server.customer(customer_id).await;
        let first = customer
            .say(&format!("open-{customer_id}"), "hello, I need help")
            .await;
        agent.recv_until(push_of(first.id), WAIT).await;
        Chat {
            customer,
            agent,
            task_id: first.task_id,
            first,
        }
    }
}
