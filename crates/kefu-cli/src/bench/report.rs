//! Latency histograms and the printed results.

use hdrhistogram::Histogram;
use serde_json::{json, Value};

/// Microsecond latencies, up to a minute.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3)
        .unwrap_or_else(|_| Histogram::new(3).expect("histogram"))
}

pub fn percentiles(h: &Histogram<u64>) -> Value {
    let ms = |v: u64| (v as f64) / 1000.0;
    json!({
        "count": h.len(),
        "p50_ms": ms(h.value_at_quantile(0.50)),
        "p90_ms": ms(h.value_at_quantile(0.90)),
        "p99_ms": ms(h.value_at_quantile(0.99)),
        "p999_ms": ms(h.value_at_quantile(0.999)),
        "max_ms": ms(h.max()),
    })
}

pub fn latency_row(name: &str, h: &Histogram<u64>) -> String {
    let p = |q: f64| (h.value_at_quantile(q) as f64) / 1000.0;
    format!(
        "{name:<22} p50 {:>8.3} ms  p90 {:>8.3} ms  p99 {:>8.3} ms  p99.9 {:>8.3} ms  max {:>8.3} ms",
        p(0.5),
        p(0.9),
        p(0.99),
        p(0.999),
        (h.max() as f64) / 1000.0
    )
}
