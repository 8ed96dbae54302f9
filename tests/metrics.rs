//! The layer's metrics, through a recorder that keeps what it is given
//! (`metrics-util`'s `DebuggingRecorder`, installed for one thread at a time):
//! the counters and their labels for each kind of request, labels that stay
//! bounded by the policy whatever paths are requested, and the policy reloads.

mod support;

use std::collections::BTreeSet;

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use axum::routing::{get, post};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use serde_json::json;
use support::*;
use tiergate::token::{Algorithm, Verifier};
use tiergate::{Policy, PolicyStore, TierGate};
use tower::ServiceExt;

type Series = (String, Vec<(String, String)>, DebugValue);

fn series(recorder: &DebuggingRecorder) -> Vec<Series> {
    recorder
        .snapshotter()
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let mut labels: Vec<(String, String)> = key
                .key()
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            labels.sort();
            (key.key().name().to_owned(), labels, value)
        })
        .collect()
}

/// The counter `name` with exactly these labels (0 when absent).
fn counter(all: &[Series], name: &str, labels: &[(&str, &str)]) -> u64 {
    let mut want: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    want.sort();
    all.iter()
        .filter(|(n, l, _)| n == name && *l == want)
        .map(|(_, _, v)| match v {
            DebugValue::Counter(n) => *n,
            _ => 0,
        })
        .sum()
}

fn gate() -> TierGate {
    TierGate::builder()
        .policy(Policy::from_yaml(tiergate::EXAMPLE_POLICY).unwrap())
        .verifier(
            Verifier::builder()
                .hmac_secret(Algorithm::HS256, SECRET)
                .issuer(ISSUER)
                .audience(AUDIENCE)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap()
}

fn app(gate: &TierGate) -> Router {
    Router::new()
        .route("/api/dashboard", get(|| async { "ok" }))
        .route("/api/reports/export", post(|| async { "csv" }))
        .route("/healthz", get(|| async { "ok" }))
        .layer(gate.layer())
}

/// Sends requests through `app` on this thread (a current-thread runtime), so the
/// thread's recorder sees what the layer counts.
fn send(app: &Router, requests: Vec<Request<Body>>) -> Vec<u16> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    requests
        .into_iter()
        .map(|r| {
            rt.block_on(app.clone().oneshot(r))
                .unwrap()
                .status()
                .as_u16()
        })
        .collect()
}

fn req(method: &str, path: &str, token: Option<&str>) -> Request<Body> {
    let mut b = Request::builder().method(method).uri(path);
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    b.body(Body::empty()).unwrap()
}

#[test]
fn decisions_refusals_and_the_token_cache_are_counted_with_their_labels() {
    let recorder = DebuggingRecorder::new();
    let gate = gate();
    let app = app(&gate);
    let pro = hs256(json!({ "plan": "pro" }));
    let free = hs256(json!({ "plan": "free" }));
    let forged = forge(
        &json!({ "alg": "HS256", "typ": "JWT" }),
        &payload(json!({ "plan": "pro" })),
        b"not the secret, but at least 32 bytes long",
    );
    let statuses = metrics::with_local_recorder(&recorder, || {
        send(
            &app,
            vec![
                req("GET", "/api/dashboard", Some(&pro)),
                req("GET", "/api/dashboard", Some(&pro)),
                req("POST", "/api/reports/export", Some(&free)),
                req("GET", "/api/dashboard", None),
                req("GET", "/api/dashboard", Some(&forged)),
                req("GET", "/healthz", None),
            ],
        )
    });
    assert_eq!(statuses, [200, 200, 403, 401, 401, 200]);
    let all = series(&recorder);
    let d = "tiergate_decisions_total";
    assert_eq!(
        counter(
            &all,
            d,
            &[
                ("outcome", "allowed"),
                ("reason", "granted"),
                ("rule", "/api/dashboard"),
                ("plan", "pro"),
                ("feature", "dashboard"),
                ("upgrade_to", ""),
            ]
        ),
        2,
        "{all:#?}"
    );
    assert_eq!(
        counter(
            &all,
            d,
            &[
                ("outcome", "denied"),
                ("reason", "feature_not_in_plan"),
                ("rule", "/api/reports/export"),
                ("plan", "free"),
                ("feature", "reports.export"),
                ("upgrade_to", "starter"),
            ]
        ),
        1,
        "{all:#?}"
    );
    assert_eq!(
        counter(
            &all,
            d,
            &[
                ("outcome", "allowed"),
                ("reason", "public_route"),
                ("rule", ""),
                ("plan", ""),
                ("feature", ""),
                ("upgrade_to", ""),
            ]
        ),
        1,
        "{all:#?}"
    );
    let refused = "tiergate_tokens_refused_total";
    assert_eq!(counter(&all, refused, &[("reason", "missing_token")]), 1);
    assert_eq!(counter(&all, refused, &[("reason", "bad_signature")]), 1);
    let v = "tiergate_token_verifications_total";
    assert_eq!(counter(&all, v, &[("result", "ok"), ("alg", "HS256")]), 2);
    assert_eq!(
        counter(&all, v, &[("result", "bad_signature"), ("alg", "unknown")]),
        1
    );
    let cache = "tiergate_token_cache_total";
    assert_eq!(counter(&all, cache, &[("result", "hit")]), 1);
    assert_eq!(counter(&all, cache, &[("result", "miss")]), 3);
}

#[test]
fn thousands_of_distinct_paths_add_no_series() {
    let recorder = DebuggingRecorder::new();
    let gate = gate();
    let app = app(&gate);
    let pro = hs256(json!({ "plan": "pro" }));
    let requests: Vec<_> = (0..3000)
        .map(|i| match i % 3 {
            0 => req("GET", &format!("/api/reports/{i}/q{i}"), Some(&pro)),
            1 => req("GET", &format!("/nowhere/{i}?x={i}"), Some(&pro)),
            _ => req("DELETE", &format!("/api/members/{i}"), None),
        })
        .collect();
    metrics::with_local_recorder(&recorder, || send(&app, requests));
    let all = series(&recorder);
    let decisions: Vec<_> = all
        .iter()
        .filter(|(n, _, _)| n == "tiergate_decisions_total")
        .collect();
    let rules: BTreeSet<&str> = decisions
        .iter()
        .flat_map(|(_, l, _)| {
            l.iter()
                .filter(|(k, _)| k == "rule")
                .map(|(_, v)| v.as_str())
        })
        .collect();
    let patterns: BTreeSet<&str> = ["", "/api/reports/{*rest}"].into();
    assert!(rules.is_subset(&patterns), "{rules:?}");
    assert!(decisions.len() <= 3, "{decisions:#?}");
    let total: u64 = decisions
        .iter()
        .map(|(_, _, v)| match v {
            DebugValue::Counter(n) => *n,
            _ => 0,
        })
        .sum::<u64>()
        + counter(
            &all,
            "tiergate_tokens_refused_total",
            &[("reason", "missing_token")],
        );
    assert_eq!(total, 3000);
    // No label anywhere holds a requested path.
    assert!(
        !all.iter().any(|(_, l, _)| l
            .iter()
            .any(|(_, v)| v.contains("nowhere") || v.contains("q1"))),
        "{all:#?}"
    );
}

#[test]
fn policy_reloads_are_counted_and_the_active_revision_is_a_gauge() {
    let dir = std::env::temp_dir().join(format!("tiergate-metrics-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("policy.yaml");
    std::fs::write(&file, tiergate::EXAMPLE_POLICY).unwrap();
    let recorder = DebuggingRecorder::new();
    let (first, second) = metrics::with_local_recorder(&recorder, || {
        let store = PolicyStore::open(&file).unwrap();
        let first = store.policy().revision().to_string();
        std::fs::write(&file, "version: 1\nplans: {").unwrap();
        assert!(store.reload().is_err());
        std::fs::write(
            &file,
            tiergate::EXAMPLE_POLICY.replace("Export reports", "Export"),
        )
        .unwrap();
        store.reload().unwrap();
        (first, store.policy().revision().to_string())
    });
    std::fs::remove_dir_all(&dir).ok();
    let all = series(&recorder);
    let r = "tiergate_policy_reloads_total";
    assert_eq!(counter(&all, r, &[("outcome", "rejected")]), 1, "{all:#?}");
    assert_eq!(counter(&all, r, &[("outcome", "swapped")]), 1, "{all:#?}");
    let gauge = |revision: &str| {
        all.iter()
            .find(|(n, l, _)| {
                n == "tiergate_policy_info"
                    && l == &vec![("revision".to_owned(), revision.to_owned())]
            })
            .map(|(_, _, v)| match v {
                DebugValue::Gauge(g) => g.into_inner(),
                _ => f64::NAN,
            })
    };
    assert_eq!(gauge(&first), Some(0.0));
    assert_eq!(gauge(&second), Some(1.0));
}

/// Every metric tiergate emits is documented in docs/metrics.md, and every metric
/// the docs' PromQL and the Grafana dashboard name is one tiergate emits.
#[test]
fn the_docs_and_the_dashboard_name_exactly_the_metrics_emitted() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();
    let source = read("src/telemetry.rs");
    let emitted: BTreeSet<String> = source
        .lines()
        .filter(|l| l.starts_with("pub(crate) const "))
        .filter_map(|l| l.split('"').nth(1))
        .filter(|n| n.starts_with("tiergate_"))
        .map(str::to_owned)
        .collect();
    assert!(emitted.len() >= 14, "{emitted:?}");
    let named = |text: &str| -> BTreeSet<String> {
        text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| w.starts_with("tiergate_") && w.len() > "tiergate_".len())
            .map(|w| {
                ["_bucket", "_count", "_sum"]
                    .iter()
                    .fold(w, |w, s| w.strip_suffix(s).unwrap_or(w))
                    .to_owned()
            })
            .collect()
    };
    let docs = read("docs/metrics.md");
    let dashboard = read("docs/grafana-dashboard.json");
    serde_json::from_str::<serde_json::Value>(&dashboard).expect("the dashboard is JSON");
    for m in &emitted {
        assert!(docs.contains(&format!("`{m}`")), "{m} is not documented");
    }
    for m in named(&docs).union(&named(&dashboard)) {
        assert!(
            emitted.contains(m),
            "the docs or the dashboard name {m}, which is not emitted"
        );
    }
}
