//! Latency histograms and a run's results, as a table or JSON.

use hdrhistogram::Histogram;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::fmt::Write;

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

/// One target's counts and latencies from a run.
pub struct Results {
    pub target: String,
    pub sent: u64,
    pub acked: u64,
    pub delivered: u64,
    pub lost: u64,
    pub duplicates: u64,
    pub unanswered: u64,
    pub errors: HashMap<String, u64>,
    pub delivered_per_sec: f64,
    pub ack: Histogram<u64>,
    pub delivery: Histogram<u64>,
    /// Open loop only: how late each send left against its schedule. The
    /// latencies count from the actual send (the timer's millisecond
    /// granularity would otherwise be added to every one), so this shows
    /// whether the generator kept its schedule (no coordinated omission).
    pub send_lag: Option<Histogram<u64>>,
    /// Processor use while the load ran.
    pub cpu: Option<crate::cpu::CpuShare>,
}

fn to_json(r: &Results) -> Value {
    json!({
        "target": r.target, "sent": r.sent, "acked": r.acked, "delivered": r.delivered,
        "lost": r.lost, "duplicates": r.duplicates, "unanswered": r.unanswered, "errors": r.errors,
        "delivered_per_sec": r.delivered_per_sec,
        "ack_latency": percentiles(&r.ack), "delivery_latency": percentiles(&r.delivery),
        "send_lag": r.send_lag.as_ref().map(percentiles),
        "cpu_cores": r.cpu.as_ref().map(|c| json!({
            "generator": c.generator, "server": c.server(), "stolen": c.stolen,
            "server_processes": c.processes.iter()
                .map(|p| json!({"name": p.name, "cores": p.cores}))
                .collect::<Vec<_>>(),
            "server_us_per_message": c.server().and_then(|s| per_message_us(s, r.delivered_per_sec)),
        })),
    })
}

/// Prints a run's results, as a table or (`json`) one JSON object.
pub fn print(json: bool, kefu: &Results, relay: Option<&Results>) {
    if json {
        let mut out = json!({"kefu": to_json(kefu)});
        if let Some(r) = relay {
            out["relay"] = to_json(r);
            out["ratio_of_relay"] = json!(kefu.delivered_per_sec / r.delivered_per_sec.max(1e-9));
        }
        println!("{out}");
        return;
    }
    for r in relay.into_iter().chain([kefu]) {
        println!("== {} ==", r.target);
        println!(
            "sent {}  acked {}  delivered {}  lost {}  duplicates {}  unanswered {}  errors {:?}",
            r.sent, r.acked, r.delivered, r.lost, r.duplicates, r.unanswered, r.errors
        );
        println!("delivered {:.0} msgs/s", r.delivered_per_sec);
        println!("{}", latency_row("ack latency", &r.ack));
        println!("{}", latency_row("delivery latency", &r.delivery));
        if let Some(lag) = &r.send_lag {
            println!("{}", latency_row("send lag", lag));
        }
        if let Some(cpu) = &r.cpu {
            println!("{}", cpu_row(cpu, r.delivered_per_sec));
        }
    }
    if let Some(r) = relay {
        println!(
            "kefu / relay delivered throughput: {:.3}",
            kefu.delivered_per_sec / r.delivered_per_sec.max(1e-9)
        );
    }
}

/// Cores used while the load ran, of the machine's; with several server
/// processes, each one's.
fn cpu_row(cpu: &crate::cpu::CpuShare, delivered_per_sec: f64) -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let server =
        cpu.server().map_or(
            "not measured (--server-pid)".to_owned(),
            |s| match per_message_us(s, delivered_per_sec) {
                Some(us) => format!("{s:.2} cores ({us:.1} µs per delivered message)"),
                None => format!("{s:.2} cores"),
            },
        );
    let stolen = cpu
        .stolen
        .map_or(String::new(), |s| format!("  stolen by the host {s:.2}"));
    let mut row = format!(
        "cpu (of {cores} cores)     generator {:.2} cores  server {server}{stolen}",
        cpu.generator
    );
    if cpu.processes.len() > 1 {
        row.push_str("\nserver by process    ");
        for p in &cpu.processes {
            let _ = write!(row, "  {} {:.2}", p.name, p.cores);
        }
    }
    row
}

/// The server's processor time per delivered message, in microseconds:
/// unlike a ratio of throughputs, comparable between machines of one
/// speed whether or not the generator set the pace.
fn per_message_us(server_cores: f64, delivered_per_sec: f64) -> Option<f64> {
    (delivered_per_sec > 0.0).then(|| server_cores * 1e6 / delivered_per_sec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::{CpuShare, ProcessShare};

    #[test]
    fn a_cluster_row_names_each_process_and_the_cost_per_message() {
        let process = |name: &str, cores| ProcessShare {
            name: name.to_owned(),
            cores,
        };
        let cpu = CpuShare {
            generator: 0.16,
            processes: vec![process("kefu worker", 0.75), process("mariadbd", 0.75)],
            stolen: Some(0.0),
        };
        let row = cpu_row(&cpu, 25_000.0);
        assert!(
            row.contains("server 1.50 cores (60.0 µs per delivered message)"),
            "{row}"
        );
        assert!(
            row.ends_with("server by process      kefu worker 0.75  mariadbd 0.75"),
            "{row}"
        );
        let alone = CpuShare {
            processes: vec![process("kefu serve", 1.5)],
            ..cpu
        };
        assert!(!cpu_row(&alone, 0.0).contains("by process"));
        assert!(!cpu_row(&alone, 0.0).contains("µs"));
    }
}
