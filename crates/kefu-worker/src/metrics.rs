//! The worker's metrics, registered in the default Prometheus registry.

use prometheus::{register_histogram, register_int_counter, Histogram, IntCounter};
use std::sync::LazyLock;

pub static FRAMES: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "kefu_worker_frames_total",
        "client frames handled by this worker"
    )
    .expect("metric")
});

pub static MESSAGES_STORED: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "kefu_messages_stored_total",
        "messages committed to the database"
    )
    .expect("metric")
});

pub static DUPLICATES: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "kefu_messages_duplicate_total",
        "resent client_msg_ids answered with the first ack"
    )
    .expect("metric")
});

pub static STORE_SECONDS: LazyLock<Histogram> = LazyLock::new(|| {
    register_histogram!(
        "kefu_message_store_seconds",
        "from queueing a message to its commit",
        vec![0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0]
    )
    .expect("metric")
});

pub static PUSHES_DROPPED: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "kefu_worker_pushes_dropped_total",
        "pushes dropped because their gateway's queue was full (the messages stay stored and undelivered)"
    )
    .expect("metric")
});

/// Registers every metric now, so /metrics lists them from the start.
pub fn init() {
    LazyLock::force(&FRAMES);
    LazyLock::force(&MESSAGES_STORED);
    LazyLock::force(&DUPLICATES);
    LazyLock::force(&STORE_SECONDS);
    LazyLock::force(&PUSHES_DROPPED);
}
