//! The server's metrics for Prometheus: the recorder `tiergate serve` installs when
//! given `--metrics-addr`, the `GET /metrics` page on that address (never on the
//! public API's), and the per-route request latency. What every metric means:
//! `docs/metrics.md`.

use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::telemetry::SERVER_REQUEST_SECONDS;

/// Latency buckets, in seconds: the claims API's writes sit in 1–50 ms, a sign-in's
/// password hash near 50–100 ms.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// Installs the Prometheus recorder as the process's global recorder (the gated
/// demo app, in the same process, reports through it too).
pub(crate) fn install() -> Result<PrometheusHandle, String> {
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(SERVER_REQUEST_SECONDS.into()), &BUCKETS)
        .and_then(PrometheusBuilder::install_recorder)
        .map_err(|e| {
            format!("cannot install the Prometheus recorder (is another one installed?): {e}")
        })
}

/// `GET /metrics` in the Prometheus text format.
pub(crate) fn router(handle: PrometheusHandle) -> axum::Router {
    axum::Router::new().route(
        "/metrics",
        get(move || {
            let text = handle.render();
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    text,
                )
                    .into_response()
            }
        }),
    )
}

/// Runs the recorder's upkeep (draining histogram buffers) until the server stops.
pub(crate) async fn upkeep_forever(handle: PrometheusHandle) {
    loop {
        tokio::time::sleep(Duration::from_secs(5)).await;
        handle.run_upkeep();
    }
}

/// Records each request's latency under its route's pattern (never the raw path:
/// `/api/platform/claims`, not a user's email in a query), method and status class.
pub(crate) async fn track(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().as_str().to_owned();
    let started = Instant::now();
    let res = next.run(req).await;
    let status = match res.status().as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    metrics::histogram!(
        SERVER_REQUEST_SECONDS,
        "route" => route,
        "method" => method,
        "status" => status
    )
    .record(started.elapsed().as_secs_f64());
    res
}
