//! The layer's cost: a request through an axum `Router` with the layer versus the
//! same router without it (in-process, `tower::ServiceExt::oneshot`), for HS256,
//! EdDSA and RS256 tokens; beside it the floor — `jsonwebtoken::decode` of the same
//! token plus the engine's claims → Entitlements → decision.
//!
//! `cargo bench --bench layer && python3 benches/medians.py`; the claims-change
//! feed's share alone: `cargo bench --bench layer -- feed/`; a Prometheus
//! recorder's: `cargo bench --bench layer -- metrics/`

use std::future::Future;
use std::hint::black_box;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use axum::routing::get;
use base64::Engine as _;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Value, json};
use tiergate::token::{CacheOptions, Verifier, VerifyingKey};
use tiergate::{Claims, ClaimsLocation, Policy, TierGate};
use tower::ServiceExt;

const SECRET: &[u8] = b"a benchmark secret that is long enough, 48 bytes";
const ISS: &str = "http://127.0.0.1:8080";
const AUD: &str = "tiergate-demo";

fn key(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/keys/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

struct Case {
    alg: Algorithm,
    token: String,
    verifying: VerifyingKey,
    decoding: DecodingKey,
}

fn cases() -> Vec<Case> {
    let now = chrono::Utc::now().timestamp();
    // A typical access token: ~350 bytes with the seed's claims.
    let payload = json!({
        "sub": "usr_8f2a41", "email": "ada@example.com", "iss": ISS, "aud": AUD,
        "iat": now, "exp": now + 3600, "jti": "b7d1e0f4a9c2",
        "claims": { "plan": "pro", "role": "admin", "trial_ends": "2026-04-15", "seats": "5" },
    });
    let mk = |alg, enc: EncodingKey, verifying: VerifyingKey, decoding: DecodingKey| {
        let mut h = Header::new(alg);
        h.kid = Some("k1".into());
        let token = jsonwebtoken::encode(&h, &payload, &enc).unwrap();
        Case {
            alg,
            token,
            verifying: verifying.with_kid("k1"),
            decoding,
        }
    };
    vec![
        mk(
            Algorithm::HS256,
            EncodingKey::from_secret(SECRET),
            VerifyingKey::hmac(tiergate::token::Algorithm::HS256, SECRET).unwrap(),
            DecodingKey::from_secret(SECRET),
        ),
        mk(
            Algorithm::EdDSA,
            EncodingKey::from_ed_pem(&key("ed25519.pem")).unwrap(),
            VerifyingKey::from_pem(tiergate::token::Algorithm::EdDSA, key("ed25519.pub.pem"))
                .unwrap(),
            DecodingKey::from_ed_pem(&key("ed25519.pub.pem")).unwrap(),
        ),
        mk(
            Algorithm::RS256,
            EncodingKey::from_rsa_pem(&key("rsa.pem")).unwrap(),
            VerifyingKey::from_pem(tiergate::token::Algorithm::RS256, key("rsa.pub.pem")).unwrap(),
            DecodingKey::from_rsa_pem(&key("rsa.pub.pem")).unwrap(),
        ),
    ]
}

/// A gate for `case`'s key, with or without the verified-token cache.
fn gate(policy: &Policy, case: &Case, cache: Option<CacheOptions>) -> TierGate {
    TierGate::builder()
        .policy(policy.clone())
        .verifier(
            Verifier::builder()
                .key(case.verifying.clone())
                .issuer(ISS)
                .audience(AUD)
                .token_cache(cache)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap()
}

fn router() -> Router {
    Router::new().route("/api/dashboard", get(|| async { "ok" }))
}

fn request(bearer: &str) -> Request<Body> {
    Request::builder()
        .uri("/api/dashboard")
        .header("authorization", bearer)
        .body(Body::empty())
        .unwrap()
}

/// An inner service that does nothing (and allocates nothing), so that what the
/// `service` group measures is the layer's own work: `TierGateService::call`, the
/// Caller extension (and its free when the request is dropped) and the response
/// mapping — what the layer adds to any app, without the app's router around it.
#[derive(Clone)]
struct Nothing;

/// An empty body of a type the layer can write its denials in (no allocation).
type Empty = http_body_util::Full<bytes::Bytes>;

impl tower::Service<Request<()>> for Nothing {
    type Response = axum::http::Response<Empty>;
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<Self::Response, Self::Error>>;
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }
    fn call(&mut self, req: Request<()>) -> Self::Future {
        drop(req);
        std::future::ready(Ok(axum::http::Response::new(Empty::default())))
    }
}

/// A request without a body, for the `Nothing` service.
fn bare_request(bearer: &str) -> Request<()> {
    Request::builder()
        .uri("/api/dashboard")
        .header("authorization", bearer)
        .body(())
        .unwrap()
}

/// `Nothing` behind the layer, with or without the verified-token cache.
fn gated_nothing(
    policy: &Policy,
    case: &Case,
    cache: Option<CacheOptions>,
) -> tiergate::layer::TierGateService<Nothing> {
    tower::Layer::layer(&gate(policy, case, cache).layer(), Nothing)
}

/// Calls a service whose future is ready at once (no runtime needed) and returns
/// the status.
fn call_now<S, B>(svc: &mut S, req: Request<()>) -> u16
where
    S: tower::Service<Request<()>, Response = axum::http::Response<B>>,
    S::Error: std::fmt::Debug,
{
    let fut = std::pin::pin!(svc.call(req));
    match fut.poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(res) => res.unwrap().status().as_u16(),
        Poll::Pending => panic!("the service waited"),
    }
}

fn bench_layer(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let policy = Policy::from_yaml(tiergate::EXAMPLE_POLICY).unwrap();
    let mut group = c.benchmark_group("layer");
    for case in cases() {
        let name = format!("{:?}", case.alg);
        let bearer = format!("Bearer {}", case.token);
        let gate = |cache| gate(&policy, &case, cache);
        let plain = router();
        let uncached = router().layer(gate(None).layer());
        let cached = router().layer(gate(Some(CacheOptions::default())).layer());
        for app in [&uncached, &cached] {
            let res = rt.block_on(app.clone().oneshot(request(&bearer))).unwrap();
            assert_eq!(res.status(), 200, "{name}");
        }

        group.bench_function(BenchmarkId::new("without_layer", &name), |b| {
            b.iter(|| {
                rt.block_on(plain.clone().oneshot(request(black_box(&bearer))))
                    .unwrap()
            })
        });
        group.bench_function(BenchmarkId::new("with_layer", &name), |b| {
            b.iter(|| {
                rt.block_on(uncached.clone().oneshot(request(black_box(&bearer))))
                    .unwrap()
            })
        });
        group.bench_function(BenchmarkId::new("with_layer_cache_hit", &name), |b| {
            b.iter(|| {
                rt.block_on(cached.clone().oneshot(request(black_box(&bearer))))
                    .unwrap()
            })
        });
        if name == "HS256" {
            // What axum charges for any layer on a router: one that passes the
            // request on untouched (the same for every token, so measured once).
            let noop = router().layer(tower::util::MapRequestLayer::new(|r: Request<Body>| r));
            group.bench_function("with_noop_layer", |b| {
                b.iter(|| {
                    rt.block_on(noop.clone().oneshot(request(black_box(&bearer))))
                        .unwrap()
                })
            });
        }

        // The verifier alone: the path the layer takes, and (for HMAC) the general
        // path the fast path replaces.
        let verifier = Verifier::builder()
            .key(case.verifying.clone())
            .issuer(ISS)
            .audience(AUD)
            .token_cache(None)
            .build()
            .unwrap();
        let now = chrono::Utc::now();
        group.bench_function(BenchmarkId::new("verify", &name), |b| {
            b.iter(|| verifier.verify(black_box(&case.token), now).unwrap())
        });
        // The floors: jsonwebtoken's own decode of the same token (signature, exp,
        // iss, aud)…
        let mut validation = Validation::new(case.alg);
        validation.set_issuer(&[ISS]);
        validation.set_audience(&[AUD]);
        group.bench_function(BenchmarkId::new("floor_jsonwebtoken_decode", &name), |b| {
            b.iter(|| {
                jsonwebtoken::decode::<Value>(black_box(&case.token), &case.decoding, &validation)
                    .unwrap()
            })
        });
        // …and the bare signature check: for HMAC the fastest here, RustCrypto's
        // with the key's hash states precomputed (what tiergate uses), and aws-lc's
        // beside it; aws-lc's verify for the others.
        let (message, signature) = case.token.rsplit_once('.').unwrap();
        if name == "HS256" {
            use hmac::Mac as _;
            let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(signature)
                .unwrap();
            let key = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET).unwrap();
            group.bench_function(BenchmarkId::new("floor_signature", &name), |b| {
                b.iter(|| {
                    key.clone()
                        .chain_update(black_box(message.as_bytes()))
                        .verify_slice(&sig)
                        .unwrap()
                })
            });
            let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, SECRET);
            group.bench_function(BenchmarkId::new("floor_signature_aws_lc", &name), |b| {
                b.iter(|| {
                    aws_lc_rs::hmac::verify(&key, black_box(message.as_bytes()), &sig).unwrap()
                })
            });
        } else {
            group.bench_function(BenchmarkId::new("floor_signature", &name), |b| {
                b.iter(|| {
                    jsonwebtoken::crypto::verify(
                        signature,
                        black_box(message.as_bytes()),
                        &case.decoding,
                        case.alg,
                    )
                    .unwrap()
                })
            });
        }
    }
    // …plus the engine: claims → Entitlements → route decision.
    let payload: Value = json!({ "claims": { "plan": "pro", "role": "admin", "trial_ends": "2026-04-15", "seats": "5" } });
    let now = chrono::Utc::now();
    group.bench_function("floor_engine_decision", |b| {
        b.iter(|| {
            let claims = Claims::from_payload(black_box(&payload), &ClaimsLocation::default());
            let ent = policy.entitlements(&claims, now);
            ent.check_route("GET", "/api/dashboard").allowed()
        })
    });
    group.finish();
}

/// The layer's own cost, without a router: the gated `Nothing` service against
/// `Nothing` alone. Both build the request in the timed part (so its bytes are in
/// the cache, as they are when a server has just read them); the difference is the
/// layer.
fn bench_service(c: &mut Criterion) {
    let policy = Policy::from_yaml(tiergate::EXAMPLE_POLICY).unwrap();
    let mut group = c.benchmark_group("service");
    for case in cases() {
        let name = format!("{:?}", case.alg);
        let bearer = format!("Bearer {}", case.token);
        let request = || bare_request(&bearer);
        let gated = |cache| gated_nothing(&policy, &case, cache);
        let mut uncached = gated(None);
        let mut cached = gated(Some(CacheOptions::default()));
        assert_eq!(call_now(&mut uncached, request()), 200, "{name}");
        assert_eq!(call_now(&mut cached, request()), 200, "{name}");

        let mut plain = Nothing;
        group.bench_function(BenchmarkId::new("without_layer", &name), |b| {
            b.iter(|| call_now(&mut plain, request()))
        });
        group.bench_function(BenchmarkId::new("with_layer", &name), |b| {
            b.iter(|| call_now(&mut uncached, request()))
        });
        group.bench_function(BenchmarkId::new("with_layer_cache_hit", &name), |b| {
            b.iter(|| call_now(&mut cached, request()))
        });
    }
    group.finish();
}

/// Times `iters` calls of `plain` and of `gated`, interleaved in batches of 32, and
/// returns what `gated` took beyond `plain` (at least 1 ns per sample).
///
/// The `service` and `layer` groups time each variant in its own benchmark, a few
/// seconds apart; on a shared machine whose speed drifts by 10–30% over minutes, the
/// difference of two such medians carries that drift. Here both run in every sample,
/// a few microseconds apart, so a drift slows both alike and cancels.
fn paired(iters: u64, mut plain: impl FnMut(), mut gated: impl FnMut()) -> Duration {
    const BATCH: u64 = 32;
    let (mut without, mut with) = (Duration::ZERO, Duration::ZERO);
    let mut left = iters;
    while left > 0 {
        let n = left.min(BATCH);
        let t = Instant::now();
        for _ in 0..n {
            plain();
        }
        without += t.elapsed();
        let t = Instant::now();
        for _ in 0..n {
            gated();
        }
        with += t.elapsed();
        left -= n;
    }
    // A sample in which noise made the layer look free (or better) is kept as
    // nearly zero rather than dropped: criterion refuses a zero, and the median
    // it reports is not moved by a few such samples.
    with.saturating_sub(without).max(Duration::from_nanos(1))
}

/// What the layer adds, paired in time (see [`paired`]): around the do-nothing
/// service (`alone_*`) and in an axum router (`axum_*`), on a cache miss and a hit.
fn bench_added(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let policy = Policy::from_yaml(tiergate::EXAMPLE_POLICY).unwrap();
    let mut group = c.benchmark_group("added");
    for case in cases() {
        let name = format!("{:?}", case.alg);
        let bearer = format!("Bearer {}", case.token);
        let bare_request = || bare_request(&bearer);
        let mut plain = Nothing;
        let mut variants = vec![
            ("alone_miss", gated_nothing(&policy, &case, None)),
            (
                "alone_hit",
                gated_nothing(&policy, &case, Some(CacheOptions::default())),
            ),
        ];
        if name == "HS256" {
            // The same token read through a claims mapping (`preset: tiergate`, the
            // default layout as a mapping) instead of the verifier's own location:
            // what reading claims through any preset costs.
            let mapped = Policy::from_yaml(&format!(
                "{}\nclaims: {{ preset: tiergate }}\n",
                tiergate::EXAMPLE_POLICY
            ))
            .unwrap();
            variants.push(("alone_miss_preset", gated_nothing(&mapped, &case, None)));
            let hit = Some(CacheOptions::default());
            variants.push(("alone_hit_preset", gated_nothing(&mapped, &case, hit)));
        }
        for (variant, mut svc) in variants {
            assert_eq!(call_now(&mut svc, bare_request()), 200, "{name}");
            group.bench_function(BenchmarkId::new(variant, &name), |b| {
                b.iter_custom(|iters| {
                    paired(
                        iters,
                        || {
                            black_box(call_now(&mut plain, bare_request()));
                        },
                        || {
                            black_box(call_now(&mut svc, bare_request()));
                        },
                    )
                })
            });
        }

        let router_plain = router();
        // One request through `app`, answered and dropped.
        let through = |app: &Router| {
            drop(black_box(
                rt.block_on(app.clone().oneshot(request(&bearer))),
            ))
        };
        for (variant, cache) in [
            ("axum_miss", None),
            ("axum_hit", Some(CacheOptions::default())),
        ] {
            let app = router().layer(gate(&policy, &case, cache).layer());
            let res = rt.block_on(app.clone().oneshot(request(&bearer))).unwrap();
            assert_eq!(res.status(), 200, "{name}");
            group.bench_function(BenchmarkId::new(variant, &name), |b| {
                b.iter_custom(|iters| paired(iters, || through(&router_plain), || through(&app)))
            });
        }
        if name == "HS256" {
            // What axum charges for any layer (see the `layer` group's `with_noop_layer`).
            let noop = router().layer(tower::util::MapRequestLayer::new(|r: Request<Body>| r));
            group.bench_function("axum_noop_layer", |b| {
                b.iter_custom(|iters| paired(iters, || through(&router_plain), || through(&noop)))
            });
        }
    }
    group.finish();
}

/// A claims-change feed on loopback holding `n` changed subjects (the HS256 case's
/// caller among them, changed before its token was minted), long-polled; returns
/// its URL. Runs on `rt`.
fn feed_with(rt: &tokio::runtime::Runtime, n: usize) -> String {
    let now = chrono::Utc::now().timestamp();
    let set = |sub: &str, at: i64, i: usize| {
        let payload = json!({
            "iss": ISS, "aud": AUD, "iat": at, "jti": format!("e{i}"),
            "sub_id": { "format": "iss_sub", "iss": ISS, "sub": sub },
            "events": { "https://schemas.openid.net/secevent/caep/event-type/token-claims-change":
                { "event_timestamp": at, "changed_claims": ["plan"] } },
        });
        let mut h = Header::new(Algorithm::HS256);
        h.typ = Some("secevent+jwt".into());
        h.kid = Some("k1".into());
        jsonwebtoken::encode(&h, &payload, &EncodingKey::from_secret(SECRET)).unwrap()
    };
    let mut sets: Vec<String> = (0..n - 1)
        .map(|i| set(&format!("usr_{i:024x}"), now - 60, i))
        .collect();
    sets.push(set("usr_8f2a41", now - 100, n - 1));
    let sets = std::sync::Arc::new(sets);
    let page = move |uri: axum::http::Uri| {
        let sets = sets.clone();
        async move {
            let after: usize = uri
                .query()
                .unwrap_or("")
                .split('&')
                .find_map(|kv| kv.strip_prefix("after="))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if after >= sets.len() {
                // Nothing new: hold the poll, as a real feed does.
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
            let end = sets.len().min(after + 1000);
            let page: serde_json::Map<String, Value> = (after..end)
                .map(|i| (format!("e{i}"), json!(sets[i])))
                .collect();
            axum::Json(
                json!({ "sets": page, "moreAvailable": end < sets.len(), "cursor": end.to_string() }),
            )
        }
    };
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new().route("/feed", get(page));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}/feed")
    })
}

/// Issue 20: a cache-hit request of a gate that follows a claims-change feed
/// holding 10,000 changed subjects (the caller's among them), against the same
/// gate without a feed, paired; and each against the do-nothing service alone.
fn bench_feed(c: &mut Criterion) {
    const SUBJECTS: usize = 10_000;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let policy = Policy::from_yaml(tiergate::EXAMPLE_POLICY).unwrap();
    let case = cases().remove(0);
    let bearer = format!("Bearer {}", case.token);
    let feed = feed_with(&rt, SUBJECTS);
    let hit = Some(CacheOptions::default());
    let followed = rt.block_on(async {
        let gate = TierGate::builder()
            .policy(policy.clone())
            .verifier(
                Verifier::builder()
                    .key(case.verifying.clone())
                    .issuer(ISS)
                    .audience(AUD)
                    .token_cache(hit.clone())
                    .build()
                    .unwrap(),
            )
            .claims_changes(tiergate::ClaimsChanges::new(feed))
            .build()
            .unwrap();
        while gate.claims_changes_status()[0].subjects < SUBJECTS {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        gate
    });
    let mut with_feed = tower::Layer::layer(&followed.layer(), Nothing);
    let mut without_feed = gated_nothing(&policy, &case, hit);
    let mut plain = Nothing;
    assert_eq!(call_now(&mut with_feed, bare_request(&bearer)), 200);
    assert_eq!(call_now(&mut without_feed, bare_request(&bearer)), 200);
    let mut group = c.benchmark_group("feed");
    group.bench_function("hit_added_by_feed", |b| {
        b.iter_custom(|iters| {
            paired(
                iters,
                || {
                    black_box(call_now(&mut without_feed, bare_request(&bearer)));
                },
                || {
                    black_box(call_now(&mut with_feed, bare_request(&bearer)));
                },
            )
        })
    });
    group.bench_function("hit_layer_without_feed", |b| {
        b.iter_custom(|iters| {
            paired(
                iters,
                || {
                    black_box(call_now(&mut plain, bare_request(&bearer)));
                },
                || {
                    black_box(call_now(&mut without_feed, bare_request(&bearer)));
                },
            )
        })
    });
    group.bench_function("hit_layer_with_feed", |b| {
        b.iter_custom(|iters| {
            paired(
                iters,
                || {
                    black_box(call_now(&mut plain, bare_request(&bearer)));
                },
                || {
                    black_box(call_now(&mut with_feed, bare_request(&bearer)));
                },
            )
        })
    });
    group.finish();
    drop(followed);
    drop(rt);
}

/// Issue 22: a cache-hit request (HS256, the do-nothing service behind the layer)
/// with a Prometheus recorder installed for this thread, against the same request
/// with no recorder (the facade's no-op): each alone, in batches of 32, and the
/// difference paired in the same samples.
fn bench_metrics(c: &mut Criterion) {
    const BATCH: u64 = 32;
    let policy = Policy::from_yaml(tiergate::EXAMPLE_POLICY).unwrap();
    let case = cases().remove(0);
    let bearer = format!("Bearer {}", case.token);
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let mut svc = gated_nothing(&policy, &case, Some(CacheOptions::default()));
    // Warm both: the token cache, and each recorder's handles on this thread.
    for _ in 0..2 {
        assert_eq!(call_now(&mut svc, bare_request(&bearer)), 200);
        metrics::with_local_recorder(&recorder, || {
            assert_eq!(call_now(&mut svc, bare_request(&bearer)), 200);
        });
    }
    let batch = |svc: &mut tiergate::layer::TierGateService<Nothing>, n: u64| {
        for _ in 0..n {
            black_box(call_now(svc, bare_request(&bearer)));
        }
    };
    let mut group = c.benchmark_group("metrics");
    group.bench_function("hit_no_recorder", |b| {
        b.iter_custom(|iters| {
            let t = Instant::now();
            let mut left = iters;
            while left > 0 {
                let n = left.min(BATCH);
                batch(&mut svc, n);
                left -= n;
            }
            t.elapsed()
        })
    });
    group.bench_function("hit_prometheus", |b| {
        b.iter_custom(|iters| {
            let t = Instant::now();
            let mut left = iters;
            while left > 0 {
                let n = left.min(BATCH);
                metrics::with_local_recorder(&recorder, || batch(&mut svc, n));
                left -= n;
            }
            t.elapsed()
        })
    });
    group.bench_function("hit_added_by_prometheus", |b| {
        b.iter_custom(|iters| {
            let (mut without, mut with) = (Duration::ZERO, Duration::ZERO);
            let mut left = iters;
            while left > 0 {
                let n = left.min(BATCH);
                let t = Instant::now();
                batch(&mut svc, n);
                without += t.elapsed();
                let t = Instant::now();
                metrics::with_local_recorder(&recorder, || batch(&mut svc, n));
                with += t.elapsed();
                left -= n;
            }
            with.saturating_sub(without).max(Duration::from_nanos(1))
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    bench_service,
    bench_layer,
    bench_added,
    bench_feed,
    bench_metrics
);
criterion_main!(benches);
