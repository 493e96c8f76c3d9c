//! Black-box acceptance tests of the client contract (shared/CONTRACT.md).
//!
//! Each test starts its own `kefu serve` on port 0 with a fresh data dir and
//! talks to it only as a client would: WebSocket frames and HTTP calls.
//!
//! The flows that touch storage run on every backend: SQLite always, MySQL
//! when `KEFU_TEST_MYSQL_URL` is set, PostgreSQL when `KEFU_TEST_POSTGRES_URL`
//! is set (each server gets a database of its own under that server URL).
//! Their tests are named `<group>::<backend>::<behaviour>`, e.g.
//! `messaging::postgres::resent_client_msg_id_returns_the_first_ack`.
//!
//! Run: `cargo test --test contract -- --test-threads 2`.
//!
//! # Layout
//! - `support/`: the harness (server process, WebSocket client, helpers).
//! - `contract/auth.rs`: authentication, heartbeats, pings.
//! - `contract/messaging.rs`: send, ack, fan-out to devices, dedup, ids.
//! - `contract/delivery.rs`: retransmission and offline messages.
//! - `contract/queue.rs`: waiting customers, queue positions, away agents.
//! - `contract/tasks.rs`: transfer, end, rating, a customer's task list.
//! - `contract/desk.rs`: quick replies, customer details, the queue's length.
//! - `contract/receipts.rs`: read, unread, revoke, delete, typing.
//! - `contract/history.rs`: history pages and who may read them.
//! - `contract/http_api.rs`: visitor, login, 401s, contacts, agents, health.
//! - `contract/files.rs`: uploads.
//! - `contract/bad_input.rs`: refused frames and the close codes.
//! - `contract/limits.rs`: slow and stalled clients, limits against abuse.
//! - `contract/durability.rs`: SIGTERM drain, kill -9, restarts.
//! - `contract/operations.rs`: config mistakes and unreachable dependencies,
//!   as an operator meets them.
//! - `contract/sessions.rs`: access and refresh tokens, signing out,
//!   disabled agents.
//! - `contract/outages.rs`: the database gone and back.
//! - `contract/tools.rs`: `kefu bench` (a smoke run: no loss) and `--config`.
//! - `contract/cluster.rs`: a worker, a register replica, a gateway killed;
//!   Redis restarted empty.

mod support;

/// Defines each `async fn name(backend: Backend)` and a test per backend:
/// `sqlite::name`, `mysql::name`, `postgres::name`, and against a cluster
/// (two registers on Redis, two workers, two gateways, each user's devices
/// spread over the gateways): `cluster_mysql::name`, `cluster_postgres::name`. MySQL, PostgreSQL
/// and cluster tests are reported as ignored when their URL variable is unset.
macro_rules! on_every_backend {
    ($($(#[$meta:meta])* async fn $name:ident($backend:ident: Backend) $body:block)*) => {
        $(
            $(#[$meta])*
            async fn $name($backend: crate::support::Backend) $body
        )*

        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(crate::support::Backend::Sqlite).await;
                }
            )*
        }

        mod mysql {
            $(
                #[tokio::test]
                #[cfg_attr(not(kefu_test_mysql), ignore = "needs KEFU_TEST_MYSQL_URL")]
                async fn $name() {
                    super::$name(crate::support::Backend::mysql()).await;
                }
            )*
        }

        mod postgres {
            $(
                #[tokio::test]
                #[cfg_attr(not(kefu_test_postgres), ignore = "needs KEFU_TEST_POSTGRES_URL")]
                async fn $name() {
                    super::$name(crate::support::Backend::postgres()).await;
                }
            )*
        }

        mod cluster_mysql {
            $(
                #[tokio::test]
                #[cfg_attr(not(all(kefu_test_mysql, kefu_test_redis)), ignore = "needs KEFU_TEST_MYSQL_URL and KEFU_TEST_REDIS_URL")]
                async fn $name() {
                    super::$name(crate::support::Backend::cluster_mysql()).await;
                }
            )*
        }

        mod cluster_postgres {
            $(
                #[tokio::test]
                #[cfg_attr(not(all(kefu_test_postgres, kefu_test_redis)), ignore = "needs KEFU_TEST_POSTGRES_URL and KEFU_TEST_REDIS_URL")]
                async fn $name() {
                    super::$name(crate::support::Backend::cluster_postgres()).await;
                }
            )*
        }
    };
}

#[path = "contract/auth.rs"]
mod auth;
#[path = "contract/bad_input.rs"]
mod bad_input;
#[path = "contract/cluster.rs"]
mod cluster;
#[path = "contract/delivery.rs"]
mod delivery;
#[path = "contract/desk.rs"]
mod desk;
#[path = "contract/dispatch.rs"]
mod dispatch;
#[path = "contract/durability.rs"]
mod durability;
#[path = "contract/files.rs"]
mod files;
#[path = "contract/history.rs"]
mod history;
#[path = "contract/http_api.rs"]
mod http_api;
#[path = "contract/limits.rs"]
mod limits;
#[path = "contract/messaging.rs"]
mod messaging;
#[path = "contract/operations.rs"]
mod operations;
#[path = "contract/outages.rs"]
mod outages;
#[path = "contract/queue.rs"]
mod queue;
#[path = "contract/receipts.rs"]
mod receipts;
#[path = "contract/sessions.rs"]
mod sessions;
#[path = "contract/tasks.rs"]
mod tasks;
#[path = "contract/tools.rs"]
mod tools;
