//! What the layer's counts cost alone (issue 22): a decision's count (six labels)
//! and a token-cache hit's (one), with no recorder installed — the facade's no-op —
//! and with a Prometheus recorder.
//!
//! `cargo bench --features test-util --bench telemetry`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use tiergate::telemetry_hooks::{cache_hit, decision};

const LABELS: [(&str, &str); 6] = [
    ("outcome", "allowed"),
    ("reason", "granted"),
    ("rule", "/api/dashboard"),
    ("plan", "pro"),
    ("feature", "dashboard"),
    ("upgrade_to", ""),
];

fn bench(c: &mut Criterion) {
    let prometheus = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let mut group = c.benchmark_group("telemetry");
    group.bench_function("decision_no_recorder", |b| {
        b.iter(|| decision(7, black_box(&LABELS)))
    });
    group.bench_function("cache_hit_no_recorder", |b| b.iter(cache_hit));
    group.bench_function("decision_prometheus", |b| {
        metrics::with_local_recorder(&prometheus, || b.iter(|| decision(7, black_box(&LABELS))))
    });
    group.bench_function("cache_hit_prometheus", |b| {
        metrics::with_local_recorder(&prometheus, || b.iter(cache_hit))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
