//! The hash ring: building it from a membership, and finding a shard's owner.

use criterion::{criterion_group, criterion_main, Criterion};
use kefu_register::Ring;
use std::hint::black_box;

fn ring(c: &mut Criterion) {
    let workers: Vec<String> = (0..8).map(|i| format!("worker-127.0.0.{i}:7100")).collect();
    c.bench_function("build_ring_8_workers", |b| {
        b.iter(|| Ring::new(black_box(&workers)))
    });
    let ring = Ring::new(&workers);
    let mut shard = 0u32;
    c.bench_function("owner_of_shard", |b| {
        b.iter(|| {
            shard = shard.wrapping_add(7919) % 65_536;
            black_box(ring.owner(black_box(shard)))
        })
    });
}

criterion_group!(benches, ring);
criterion_main!(benches);
