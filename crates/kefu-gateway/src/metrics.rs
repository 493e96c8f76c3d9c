//! The gateway's metrics, registered in the default Prometheus registry.

use prometheus::{register_int_counter, register_int_gauge, IntCounter, IntGauge};
use std::sync::LazyLock;

pub static CONNECTIONS: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "kefu_gateway_connections",
        "open authenticated WebSocket connections"
    )
    .expect("metric")
});

pub static FRAMES_IN: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "kefu_gateway_frames_in_total",
        "text frames received from clients"
    )
    .expect("metric")
});

pub static FRAMES_REFUSED: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "kefu_gateway_frames_refused_total",
        "frames answered with an error by the gateway"
    )
    .expect("metric")
});

pub static FRAMES_OUT: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!("kefu_gateway_frames_out_total", "frames written to clients")
        .expect("metric")
});

pub static RETRANSMITS: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "kefu_gateway_retransmits_total",
        "messages pushed again for want of a receipt"
    )
    .expect("metric")
});

pub static SLOW_CONSUMERS: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "kefu_gateway_slow_consumers_total",
        "connections closed with 1013 as too slow: a full send queue or a write timeout"
    )
    .expect("metric")
});

pub static UPLOADS_REFUSED: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "kefu_gateway_uploads_refused_total",
        "Uploads refused with 429: --max-concurrent-uploads were being received"
    )
    .expect("metric")
});

pub static CONNECTIONS_REFUSED: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "kefu_gateway_connections_refused_total",
        "TCP connections refused: their client address held too many"
    )
    .expect("metric")
});

/// Registers every metric now, so /metrics lists them from the start.
pub fn init() {
    LazyLock::force(&CONNECTIONS);
    LazyLock::force(&FRAMES_IN);
    LazyLock::force(&FRAMES_REFUSED);
    LazyLock::force(&FRAMES_OUT);
    LazyLock::force(&RETRANSMITS);
    LazyLock::force(&SLOW_CONSUMERS);
    LazyLock::force(&CONNECTIONS_REFUSED);
    LazyLock::force(&UPLOADS_REFUSED);
}
