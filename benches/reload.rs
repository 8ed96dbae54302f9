//! The time from writing the policy file (an atomic rename, as editors and
//! deploy tools do) to the new revision being active, with the default watch
//! options (200 ms debounce). Issue 4's target: ≤ 500 ms.
//!
//! Run: `cargo bench --bench reload`.

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use tiergate::reload::{PolicyStore, WatchOptions};

fn write_to_active(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("tiergate-bench-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("policy.yaml");
    let a = tiergate::EXAMPLE_POLICY.to_owned();
    let b = format!("{a}\n# edited\n");
    std::fs::write(&path, &a).unwrap();
    let store = PolicyStore::open(&path).unwrap();
    let _watch = store.watch(WatchOptions::default()).unwrap();
    let revisions = [
        tiergate::Policy::from_yaml(&a).unwrap().revision(),
        tiergate::Policy::from_yaml(&b).unwrap().revision(),
    ];
    let tmp = dir.join(".policy.yaml.tmp");
    let mut next = 1usize;

    let mut group = c.benchmark_group("reload");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(15))
        .warm_up_time(Duration::from_millis(500));
    group.bench_function("write_to_active_default_debounce", |bench| {
        bench.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let (content, want) = if next == 1 {
                    (&b, revisions[1])
                } else {
                    (&a, revisions[0])
                };
                std::fs::write(&tmp, content).unwrap();
                let start = Instant::now();
                std::fs::rename(&tmp, &path).unwrap();
                while store.status().revision != want {
                    assert!(
                        start.elapsed() < Duration::from_secs(10),
                        "the new revision never became active"
                    );
                    std::thread::sleep(Duration::from_micros(200));
                }
                total += start.elapsed();
                next = 1 - next;
            }
            total
        })
    });
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, write_to_active);
criterion_main!(benches);
