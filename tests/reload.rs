//! Hot reload in a temp directory: every way a file gets saved, every way an edit
//! can be bad, and requests evaluated while the policy flips 200 times. Each test
//! waits for the store's status with a deadline; no sleep is an assertion.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use tiergate::reload::{PolicyStore, StoreStatus, WatchHandle, WatchOptions};
use tiergate::{Claims, Revision};

/// Policy A is the shipped SaaS policy; in B, free users may also export.
fn policy_a() -> String {
    tiergate::EXAMPLE_POLICY.to_owned()
}

fn policy_b() -> String {
    let b = policy_a().replace(
        "features: [dashboard, reports.view]",
        "features: [dashboard, reports.view, reports.export]",
    );
    assert_ne!(b, policy_a());
    b
}

fn tempdir() -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "tiergate-reload-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Events drive these tests: the poll backstop is set far beyond any deadline.
fn event_driven() -> WatchOptions {
    WatchOptions {
        debounce: Duration::from_millis(50),
        poll_interval: Duration::from_secs(3600),
    }
}

struct Fixture {
    dir: PathBuf,
    path: PathBuf,
    store: PolicyStore,
    a: Revision,
    _watch: WatchHandle,
}

fn fixture_at(dir: PathBuf, path: PathBuf, options: WatchOptions) -> Fixture {
    let store = PolicyStore::open(&path).unwrap();
    let a = store.policy().revision();
    let watch = store.watch(options).unwrap();
    Fixture {
        dir,
        path,
        store,
        a,
        _watch: watch,
    }
}

fn fixture() -> Fixture {
    let dir = tempdir();
    let path = dir.join("policy.yaml");
    std::fs::write(&path, policy_a()).unwrap();
    fixture_at(dir, path, event_driven())
}

fn wait_until(store: &PolicyStore, what: &str, done: impl Fn(&StoreStatus) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = store.status();
        if done(&status) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; status: {status:#?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn free_can_export(store: &PolicyStore) -> bool {
    let claims = Claims::from_object(&json!({ "plan": "free" }));
    store
        .policy()
        .entitlements(&claims, chrono::Utc::now())
        .has("reports.export")
}

impl Fixture {
    fn revision_b(&self) -> Revision {
        tiergate::Policy::from_yaml(&policy_b()).unwrap().revision()
    }

    fn expect_b(&self) {
        let b = self.revision_b();
        wait_until(&self.store, "policy B", |s| s.revision == b);
        assert!(free_can_export(&self.store));
        assert!(self.store.status().last_error.is_none());
        assert_eq!(self.store.status().reloads, 1);
    }

    /// The last good policy (A) still serves, with the error recorded.
    fn expect_rejected(&self, line: Option<usize>, message: &str) {
        wait_until(&self.store, "a rejected reload", |s| s.rejections >= 1);
        let status = self.store.status();
        assert_eq!(status.revision, self.a, "the last good policy stays active");
        assert!(
            !free_can_export(&self.store),
            "decisions are still policy A's"
        );
        let err = status.last_error.expect("the error is recorded");
        assert_eq!(err.line, line, "{}", err.message);
        assert!(err.message.contains(message), "{}", err.message);
    }
}

// ---------- save styles ----------

#[test]
fn in_place_write() {
    let f = fixture();
    std::fs::write(&f.path, policy_b()).unwrap();
    f.expect_b();
}

#[test]
fn write_to_temp_then_rename() {
    let f = fixture();
    let tmp = f.dir.join(".policy.yaml.tmp");
    std::fs::write(&tmp, policy_b()).unwrap();
    std::fs::rename(&tmp, &f.path).unwrap();
    f.expect_b();
}

#[test]
fn vim_style_backup_then_new_file() {
    let f = fixture();
    let backup = f.dir.join("policy.yaml~");
    std::fs::rename(&f.path, &backup).unwrap();
    std::fs::write(&f.path, policy_b()).unwrap();
    std::fs::remove_file(&backup).unwrap();
    f.expect_b();
}

#[test]
fn cp_over_the_file() {
    let f = fixture();
    let elsewhere = tempdir().join("new.yaml");
    std::fs::write(&elsewhere, policy_b()).unwrap();
    std::fs::copy(&elsewhere, &f.path).unwrap();
    f.expect_b();
}

#[test]
fn mv_over_the_file() {
    let f = fixture();
    let elsewhere = tempdir().join("new.yaml");
    std::fs::write(&elsewhere, policy_b()).unwrap();
    std::fs::rename(&elsewhere, &f.path).unwrap();
    f.expect_b();
}

#[cfg(unix)]
#[test]
fn kubernetes_configmap_symlink_swap() {
    use std::os::unix::fs::symlink;
    // What the kubelet writes: policy.yaml -> ..data/policy.yaml, ..data -> ..<timestamp>.
    let dir = tempdir();
    std::fs::create_dir(dir.join("..2026_01_01")).unwrap();
    std::fs::write(dir.join("..2026_01_01/policy.yaml"), policy_a()).unwrap();
    symlink("..2026_01_01", dir.join("..data")).unwrap();
    symlink("..data/policy.yaml", dir.join("policy.yaml")).unwrap();
    let f = fixture_at(dir.clone(), dir.join("policy.yaml"), event_driven());

    // An update: a new timestamped folder, a temporary link, renamed over ..data.
    std::fs::create_dir(dir.join("..2026_02_01")).unwrap();
    std::fs::write(dir.join("..2026_02_01/policy.yaml"), policy_b()).unwrap();
    symlink("..2026_02_01", dir.join("..data_tmp")).unwrap();
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
    std::fs::remove_dir_all(dir.join("..2026_01_01")).unwrap();
    f.expect_b();
}

#[test]
fn delete_then_recreate() {
    let f = fixture();
    std::fs::remove_file(&f.path).unwrap();
    f.expect_rejected(None, "cannot read policy file");
    std::fs::write(&f.path, policy_b()).unwrap();
    let b = f.revision_b();
    wait_until(&f.store, "policy B", |s| {
        s.revision == b && s.last_error.is_none()
    });
}

#[test]
fn parent_directory_removed_and_recreated() {
    let root = tempdir();
    let dir = root.join("conf");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("policy.yaml"), policy_a()).unwrap();
    let f = fixture_at(dir.clone(), dir.join("policy.yaml"), event_driven());
    std::fs::remove_dir_all(&dir).unwrap();
    f.expect_rejected(None, "cannot read policy file");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("policy.yaml"), policy_b()).unwrap();
    let b = f.revision_b();
    wait_until(&f.store, "policy B after the directory came back", |s| {
        s.revision == b
    });
}

#[test]
fn the_slow_poll_finds_changes_without_events() {
    // A store whose events never come (as on some network mounts) still converges:
    // here the debounce is never reached because the poll fires first.
    let dir = tempdir();
    let path = dir.join("policy.yaml");
    std::fs::write(&path, policy_a()).unwrap();
    let store = PolicyStore::open(&path).unwrap();
    let _watch = store
        .watch(WatchOptions {
            debounce: Duration::from_secs(3600),
            poll_interval: Duration::from_millis(100),
        })
        .unwrap();
    std::fs::write(&path, policy_b()).unwrap();
    let b = tiergate::Policy::from_yaml(&policy_b()).unwrap().revision();
    wait_until(&store, "policy B by polling", |s| s.revision == b);
}

#[test]
fn an_unchanged_file_is_not_swapped() {
    let f = fixture();
    // Touch the file with the same content, and an unrelated file in the directory.
    std::fs::write(&f.path, policy_a()).unwrap();
    std::fs::write(f.dir.join("README"), "unrelated").unwrap();
    let rx = f.store.subscribe();
    f.store.reload().unwrap();
    assert!(!rx.has_changed().unwrap());
    assert_eq!(f.store.status().reloads, 0);
}

// ---------- bad edits keep the last good policy ----------

#[test]
fn a_syntax_error_is_rejected_with_its_line() {
    let f = fixture();
    std::fs::write(
        &f.path,
        "version: 1\nplans:\n  free: { features: [dashboard }\n",
    )
    .unwrap();
    f.expect_rejected(Some(3), "error:");
}

#[test]
fn a_validation_error_is_rejected_with_its_line() {
    let f = fixture();
    let broken = policy_a().replace("require: reports.export }", "require: reports.exprot }");
    // The line the misspelling is on.
    let line = broken
        .lines()
        .position(|l| l.contains("reports.exprot"))
        .unwrap()
        + 1;
    std::fs::write(&f.path, &broken).unwrap();
    f.expect_rejected(Some(line), "did you mean `reports.export`?");
}

#[test]
fn a_file_replaced_by_a_directory_is_rejected() {
    let f = fixture();
    std::fs::remove_file(&f.path).unwrap();
    std::fs::create_dir(&f.path).unwrap();
    f.expect_rejected(None, "cannot read policy file");
}

#[cfg(unix)]
#[test]
fn a_dangling_symlink_is_rejected() {
    let f = fixture();
    std::fs::remove_file(&f.path).unwrap();
    std::os::unix::fs::symlink(f.dir.join("nowhere.yaml"), &f.path).unwrap();
    f.expect_rejected(None, "cannot read policy file");
}

#[test]
fn an_oversized_file_is_rejected() {
    let f = fixture();
    std::fs::write(&f.path, "#".repeat(tiergate::policy::MAX_POLICY_BYTES + 1)).unwrap();
    f.expect_rejected(None, "byte limit");
}

#[test]
fn a_bad_file_at_startup_is_an_error() {
    let dir = tempdir();
    let path = dir.join("policy.yaml");
    std::fs::write(&path, "version: 1\nplans: { free: { features: [nope] } }\n").unwrap();
    let err = PolicyStore::open(&path).unwrap_err();
    assert!(err.to_string().contains("unknown feature `nope`"), "{err}");
    assert!(PolicyStore::open(dir.join("missing.yaml")).is_err());
}

#[test]
fn staleness_is_reported_only_when_configured() {
    let f = fixture();
    std::fs::write(&f.path, "not: [a, policy").unwrap();
    f.expect_rejected(Some(1), "error:");
    assert!(!f.store.is_stale(), "off by default");
    f.store.set_max_staleness(Some(Duration::from_millis(1)));
    wait_until(&f.store, "staleness", |_| f.store.is_stale());
    std::fs::write(&f.path, policy_a()).unwrap();
    wait_until(&f.store, "the file back to the active policy", |s| {
        s.last_error.is_none()
    });
    assert!(!f.store.is_stale());
}

// ---------- concurrency ----------

#[test]
fn requests_see_one_whole_policy_while_it_flips_200_times() {
    let f = fixture();
    let (a, b) = (policy_a(), policy_b());
    let rev_b = f.revision_b();
    let questions: Vec<(serde_json::Value, &str, &str)> = vec![
        (json!({ "plan": "free" }), "POST", "/api/reports/export"),
        (json!({ "plan": "free" }), "GET", "/api/reports/q1"),
        (json!({ "plan": "starter" }), "POST", "/api/reports/export"),
        (
            json!({ "plan": "pro", "role": "admin", "seats": 3 }),
            "POST",
            "/api/members/invite",
        ),
    ];
    let answers = |store: &PolicyStore| -> (Revision, Vec<bool>) {
        let policy = store.policy();
        let now = chrono::Utc::now();
        let got = questions
            .iter()
            .map(|(c, m, p)| {
                policy
                    .entitlements(&Claims::from_object(c), now)
                    .check_route(m, p)
                    .allowed()
            })
            .collect();
        (policy.revision(), got)
    };
    let expected_a = vec![false, true, true, true];
    let expected_b = vec![true, true, true, true];

    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let checkers: Vec<_> = (0..3)
            .map(|_| {
                scope.spawn(|| {
                    let mut n = 0u64;
                    while !done.load(Ordering::Relaxed) {
                        let (rev, got) = answers(&f.store);
                        let want = if rev == f.a {
                            &expected_a
                        } else if rev == rev_b {
                            &expected_b
                        } else {
                            panic!("unknown revision {rev}")
                        };
                        assert_eq!(&got, want, "revision {rev}");
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        let tmp = f.dir.join(".next.yaml");
        for i in 0..200 {
            std::fs::write(&tmp, if i % 2 == 0 { &b } else { &a }).unwrap();
            std::fs::rename(&tmp, &f.path).unwrap();
            f.store.reload().unwrap();
        }
        done.store(true, Ordering::Relaxed);
        for t in checkers {
            assert!(t.join().unwrap() > 0, "every thread evaluated requests");
        }
    });
    let status = f.store.status();
    assert_eq!(status.rejections, 0);
    assert_eq!(
        status.reloads, 200,
        "one swap per write, whether the watcher or reload() made it"
    );
    assert_eq!(status.revision, f.a, "200 flips end on A");
}
