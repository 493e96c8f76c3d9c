//! The store's metrics, registered in the default Prometheus registry.

use prometheus::{register_histogram, Histogram};
use std::sync::LazyLock;

pub static BATCH_MESSAGES: LazyLock<Histogram> = LazyLock::new(|| {
    register_histogram!(
        "kefu_store_batch_messages",
        "messages per group-commit transaction",
        vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0]
    )
    .expect("metric")
});

pub static BATCH_SECONDS: LazyLock<Histogram> = LazyLock::new(|| {
    register_histogram!(
        "kefu_store_batch_seconds",
        "time to write and commit one group-commit transaction",
        vec![0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0]
    )
    .expect("metric")
});
