//! Evaluation allocates nothing: a counting global allocator (this test binary only)
//! watches building Entitlements from parsed claims and every question asked of them.
//! (A caller with more than 128 declared roles would allocate once, for the role set.)

use chrono::{TimeZone, Utc};
use serde_json::json;
use tiergate::{Claims, Policy};

/// Allocations made on this thread while `f` runs. `allocation-counter` installs a
/// counting global allocator in this test binary only (it holds the `unsafe`, so this
/// crate has none).
fn allocations_in(f: impl FnOnce()) -> u64 {
    allocation_counter::measure(f).count_total
}

#[test]
fn entitlements_and_decisions_allocate_nothing() {
    let policy = Policy::from_yaml(tiergate::EXAMPLE_POLICY).unwrap();
    let now = Utc.with_ymd_and_hms(2026, 4, 20, 0, 0, 0).unwrap();
    let callers = [
        json!({ "plan": "free", "trial_ends": "2026-04-15", "seats": "five" }),
        json!({ "plan": "starter", "role": ["admin", "member"], "seats": 3 }),
        json!({ "plan": "platinum", "role": "ghost" }),
        json!({ "plan": "pro", "trial_ends": "2026-05-01" }),
    ];
    let requests = [
        ("GET", "/api/reports/2026/q1"),
        ("GET", "/api/reports/export"),
        ("POST", "/api/reports/export"),
        ("POST", "/api/members/invite"),
        ("GET", "/api/sso/config"),
        ("PUT", "/api/scim/Users/1"),
        ("DELETE", "/nowhere"),
        ("GET", "/api/onboarding/upgrade-offer"),
    ];
    for c in &callers {
        let claims = Claims::from_object(c);
        let mut allowed = 0;
        let n = allocations_in(|| {
            let ent = policy.entitlements(&claims, now);
            for (m, p) in requests {
                let d = ent.check_route(m, p);
                allowed += usize::from(d.allowed());
                let _ = (d.reason(), d.upgrade_to(), d.rule(), d.feature(), d.notes());
            }
            for f in ["sso", "billing", "members.invite", "nope"] {
                allowed += usize::from(ent.has(f)) + usize::from(ent.check(f).allowed());
            }
            for l in ["projects", "api_calls_per_day", "nope"] {
                allowed += usize::from(ent.within_limit(l, 5).allowed());
                let _ = ent.limit(l);
            }
            let _ = (ent.plan(), ent.trial(), ent.seats(), ent.claimed_plan());
        });
        assert_eq!(n, 0, "{c}: {n} allocations");
        assert!(allowed > 0);
    }
}

#[test]
fn the_counter_sees_allocations() {
    // Guards the test above against a counter that never counts.
    let n = allocations_in(|| drop(std::hint::black_box(vec![1u8; 64])));
    assert!(n >= 1);
}

#[test]
fn routes_with_static_and_wildcard_siblings_allocate_nothing() {
    // A static route beside a parameter and a catch-all: the router has to remember
    // where it could backtrack to.
    let policy = Policy::from_yaml(
        "version: 1\nplans: { free: { features: [x] } }\nfeatures: { x: {} }\nroutes:\n  - { path: \"/files/{*rest}\", require: x }\n  - { path: /files/special/share, public: true }\n  - { path: \"/docs/{id}/share\", require: x }\n  - { path: /docs/new/share, require: x }\n",
    )
    .unwrap();
    let claims = Claims::from_object(&json!({ "plan": "free" }));
    let now = Utc.with_ymd_and_hms(2026, 4, 20, 0, 0, 0).unwrap();
    let ent = policy.entitlements(&claims, now);
    for path in [
        "/files/special/share",
        "/files/special/other",
        "/docs/new/share",
        "/docs/new/edit",
        "/docs/7/share",
    ] {
        let n = allocations_in(|| {
            let _ = std::hint::black_box(ent.check_route("GET", path).allowed());
        });
        assert_eq!(n, 0, "GET {path}: {n} allocations");
    }
}

mod support;

/// A gate over the example policy for the test suite's HS256 tokens, with the
/// verified-token cache configured as given.
fn gate(cache: Option<tiergate::token::CacheOptions>) -> tiergate::TierGate {
    tiergate::TierGate::builder()
        .policy(Policy::from_yaml(tiergate::EXAMPLE_POLICY).unwrap())
        .verifier(
            tiergate::token::Verifier::builder()
                .hmac_secret(tiergate::token::Algorithm::HS256, support::SECRET)
                .issuer(support::ISSUER)
                .audience(support::AUDIENCE)
                .token_cache(cache)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap()
}

/// The layer's own allocations per request, through a `TierGateService` around a
/// service that allocates nothing, measured against the same service without it.
/// Documented in BENCHMARKS.md: a cache hit costs the three allocations of putting
/// the Caller into the request's extensions (http's extension map, its table, the
/// Caller's box; in an axum router the map usually exists already); an HS256
/// verification without the cache adds one, the token's `Arc` (the decoded payload
/// of up to 384 bytes is kept inside it; plan and role names are stored inline).
#[test]
fn the_layer_allocates_little_per_request() {
    use std::convert::Infallible;
    use std::task::{Context, Poll};
    use tiergate::token::CacheOptions;
    use tower::{Layer, Service};

    /// An empty body the layer can write its denials in (it allocates nothing).
    type Empty = http_body_util::Full<bytes::Bytes>;

    #[derive(Clone)]
    struct Nothing;
    impl Service<http::Request<()>> for Nothing {
        type Response = http::Response<Empty>;
        type Error = Infallible;
        type Future = std::future::Ready<Result<http::Response<Empty>, Infallible>>;
        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }
        fn call(&mut self, _: http::Request<()>) -> Self::Future {
            std::future::ready(Ok(http::Response::new(Empty::default())))
        }
    }

    let token = support::hs256(
        json!({ "plan": "pro", "role": "admin", "trial_ends": "2026-04-15", "seats": "5" }),
    );
    let request = || {
        http::Request::get("/api/dashboard")
            .header("authorization", format!("Bearer {token}"))
            .body(())
            .unwrap()
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let run = |svc: &mut dyn FnMut(http::Request<()>) -> u16| {
        let req = request();
        let mut status = 0;
        let n = allocations_in(|| status = svc(req));
        assert_eq!(status, 200);
        n
    };
    let mut plain = Nothing;
    let base = run(&mut |r| rt.block_on(plain.call(r)).unwrap().status().as_u16());

    let mut cached = gate(Some(CacheOptions::default())).layer().layer(Nothing);
    let first = run(&mut |r| rt.block_on(cached.call(r)).unwrap().status().as_u16());
    // The first hit also registers the thread's metric handles for it (once).
    let first_hit = run(&mut |r| rt.block_on(cached.call(r)).unwrap().status().as_u16());
    let hit = run(&mut |r| rt.block_on(cached.call(r)).unwrap().status().as_u16());
    assert!(first_hit >= hit);
    let mut uncached = gate(None).layer().layer(Nothing);
    // The first token also teaches the verifier its header (one-time allocations).
    let first_uncached = run(&mut |r| rt.block_on(uncached.call(r)).unwrap().status().as_u16());
    let miss = run(&mut |r| rt.block_on(uncached.call(r)).unwrap().status().as_u16());
    assert!(first_uncached >= miss);

    let (hit, miss, first) = (hit - base, miss - base, first - base);
    println!(
        "layer allocations per request: cache hit {hit}, HS256 without cache {miss}, first use (verify, cache entry, metric handles) {first}"
    );
    assert!(hit <= 3, "a cache hit made {hit} allocations");
    // The verified token (with the decoded payload inside it), and the Caller
    // extension (its box, the extension map and its table); plan and role names are
    // stored inline.
    assert!(miss <= 4, "an HS256 verification made {miss} allocations");
}

/// The same in an axum router, against a layer that does nothing (any layer costs
/// axum a few allocations of its own): the Caller's box and, we believe, the
/// extension table growing (axum has put three entries in it). The layer answers
/// with axum's own `Body` type, so axum does not box the response body again.
#[test]
fn the_layer_in_an_axum_router_allocates_little_on_a_cache_hit() {
    use axum::body::Body;
    use axum::{Router, routing::get};
    use tiergate::token::CacheOptions;
    use tower::ServiceExt;

    let gate = gate(Some(CacheOptions::default()));
    let token = support::hs256(json!({ "plan": "pro", "role": "admin" }));
    let route = || Router::new().route("/api/dashboard", get(|| async { "ok" }));
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let measure = |app: Router| {
        let mut last = 0;
        // The first requests warm up (the token cache, tracing's callsites).
        for _ in 0..3 {
            let req = http::Request::get("/api/dashboard")
                .header("authorization", format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap();
            let app = app.clone();
            let mut status = 0;
            last = allocations_in(|| {
                status = rt.block_on(app.oneshot(req)).unwrap().status().as_u16();
            });
            assert_eq!(status, 200);
        }
        last
    };
    let identity = measure(route().layer(tower::layer::util::Identity::new()));
    let gated = measure(route().layer(gate.layer()));
    println!(
        "axum router, cache hit: {identity} allocations with a do-nothing layer, {gated} with tiergate's"
    );
    assert!(gated <= identity + 2, "{gated} vs {identity}");
}
