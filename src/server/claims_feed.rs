//! The claims-change feed: every applied change to a user (claims, a new password,
//! a reused refresh token) as a signed Security Event Token (RFC 8417) carrying an
//! OpenID CAEP event, for gated apps that refuse tokens minted before a change.
//!
//! ```text
//! GET /api/platform/claims-changes?after=41&wait=20&limit=200
//! Authorization: Basic base64(client_id:client_secret)
//!
//! 200 {"sets": {"chg-42": "eyJ0eXAiOiJzZWNldmVudCtqd3Qi…"}, "moreAvailable": false,
//!      "cursor": "42", "window_seconds": 360}
//! ```
//!
//! The answer's shape is RFC 8936's (poll-based SET delivery) with a cursor
//! instead of acknowledgements, so the server keeps no state per reader: a reader
//! sends the last `cursor` back as `after`. It long-polls: with nothing after the
//! cursor it waits up to `wait` seconds (at most 30) and answers as soon as a change
//! is numbered (`Db::keep_feed`, just after it commits) — on this instance or,
//! through PostgreSQL's notifications, on any other.
//!
//! Each SET names the user (`sub_id`, format `iss_sub`), the time of the change, the
//! user's new claims version (tokens carry the version they were minted from, as
//! `cv`) and the names of the claims that changed — never their values: every app
//! that reads the feed would otherwise learn every user's subscription. (CAEP's
//! `token-claims-change` puts the new values in a `claims` member; this feed sends
//! `changed_claims` instead, and an app that needs the values asks for a new token.)
//! Changes are kept for `window_seconds` — the token lifetime plus a minute of
//! leeway — and then dropped: a token minted before an older change has expired.

use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::client_auth::{authenticate, credentials};
use super::db::{ChangeKind, ChangeRow};
use super::problem::ApiError;
use super::state::{AppState, ClientAddr, Shared, query_error};

/// Where the feed is served (advertised in the OpenID configuration).
pub(crate) const PATH: &str = "/api/platform/claims-changes";

/// The CAEP event for a change of claims.
pub(crate) const TOKEN_CLAIMS_CHANGE: &str =
    "https://schemas.openid.net/secevent/caep/event-type/token-claims-change";

/// The CAEP event for revoked sessions (a new password, a reused refresh token).
pub(crate) const SESSION_REVOKED: &str =
    "https://schemas.openid.net/secevent/caep/event-type/session-revoked";

/// The longest a request waits for a change.
const MAX_WAIT_SECS: u64 = 30;
/// The most SETs in one answer, and the default.
const MAX_LIMIT: i64 = 1000;
const DEFAULT_LIMIT: i64 = 200;

/// The feed's route.
pub fn router() -> Router<Shared> {
    Router::new().route(PATH, get(feed))
}

/// How long changes are kept: a token minted before an older change has expired
/// (its lifetime, plus the minute of clock leeway a verifier may allow).
pub(crate) fn window(token_ttl: Duration) -> Duration {
    token_ttl.saturating_add(Duration::from_secs(60))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedQuery {
    after: Option<String>,
    wait: Option<u64>,
    limit: Option<i64>,
}

async fn feed(
    State(s): State<Shared>,
    addr: ClientAddr,
    headers: HeaderMap,
    query: Result<Query<FeedQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let (client, secret) = credentials(&headers, None, None)?;
    authenticate(&s, addr, &client, &secret).await?;
    let Query(q) = query.map_err(|e| query_error(&e))?;
    let mut after = match q.after.as_deref() {
        None | Some("") => 0,
        Some(text) => text.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
            ApiError::field(
                "after",
                "`after` is a cursor: the `cursor` of an earlier answer (a whole number, 0 for the start)",
            )
        })?,
    };
    let wait = q.wait.unwrap_or(0);
    if wait > MAX_WAIT_SECS {
        return Err(ApiError::field(
            "wait",
            format!("`wait` is at most {MAX_WAIT_SECS} seconds"),
        ));
    }
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::field(
            "limit",
            format!("`limit` is from 1 to {MAX_LIMIT}"),
        ));
    }
    // `wait` is at most 30 s: far from overflowing an Instant.
    let deadline = tokio::time::Instant::now()
        .checked_add(Duration::from_secs(wait))
        .unwrap_or_else(tokio::time::Instant::now);
    let mut latest = s.db.watch_changes();
    loop {
        // Marked seen before reading, so a change numbered while we read wakes
        // the wait below instead of being missed.
        latest.borrow_and_update();
        // The last number first, then the rows: every change numbered up to `last`
        // was committed (rows and number in one transaction) before the rows are
        // read, so a change missing from them was dropped, not numbered meanwhile.
        // (Read the other way round, a change numbered between the two reads looked
        // dropped, and the reader was moved past it for good.)
        let last = s.db.last_change_seq().await?;
        if last < after {
            // A cursor from the future: the database was reset. Start over.
            after = 0;
        }
        let rows = s.db.changes_after(after, limit.saturating_add(1)).await?;
        if !rows.is_empty() {
            return answer(&s, rows, after, limit).await;
        }
        if last > after {
            // Everything after the cursor up to `last` is past the window.
            return answer(&s, Vec::new(), last, limit).await;
        }
        let woke = tokio::time::timeout_at(deadline, latest.changed()).await;
        if !matches!(woke, Ok(Ok(()))) {
            return answer(&s, Vec::new(), after, limit).await;
        }
    }
}

/// The RFC 8936 answer: the SETs by `jti`, whether more are waiting, the cursor to
/// send next and the window.
async fn answer(
    s: &AppState,
    mut rows: Vec<ChangeRow>,
    after: i64,
    limit: i64,
) -> Result<Response, ApiError> {
    let more = rows.len() > usize::try_from(limit).unwrap_or(usize::MAX);
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let cursor = rows.last().map_or(after, |r| r.seq);
    tracing::trace!(target: "tiergate::server", after, cursor, changes = rows.len(), "claims feed: answered");
    let now = chrono::Utc::now().timestamp();
    let events: Vec<Value> = rows.iter().map(|r| event(s, r, now)).collect();
    // An empty answer (a long poll that timed out) needs no key.
    let signed = if events.is_empty() {
        Vec::new()
    } else {
        s.signer.sign_events(&events).await?
    };
    let sets: Map<String, Value> = rows
        .iter()
        .zip(signed)
        .map(|(r, set)| (jti(r), Value::String(set)))
        .collect();
    let mut res = Json(json!({
        "sets": sets,
        "moreAvailable": more,
        "cursor": cursor.to_string(),
        "window_seconds": window(s.signer.ttl()).as_secs(),
    }))
    .into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

fn jti(r: &ChangeRow) -> String {
    format!("chg-{}", r.seq)
}

/// One change as a SET payload.
fn event(s: &AppState, r: &ChangeRow, now: i64) -> Value {
    let at = r.at.div_euclid(1000);
    let entity = match r.actor.split_once(':').map_or(r.actor.as_str(), |(k, _)| k) {
        "admin" => "admin",
        "client" => "system",
        _ => "policy",
    };
    let (kind, body) = match r.kind {
        ChangeKind::Claims => (
            TOKEN_CLAIMS_CHANGE,
            json!({
                "event_timestamp": at,
                "initiating_entity": entity,
                "claims_version": r.version,
                "changed_claims": r.changed,
            }),
        ),
        ChangeKind::Revocation => (
            SESSION_REVOKED,
            json!({
                "event_timestamp": at,
                "initiating_entity": entity,
                "claims_version": r.version,
            }),
        ),
    };
    json!({
        "iss": s.issuer,
        "aud": s.audience,
        "iat": now,
        "jti": jti(r),
        "sub_id": { "format": "iss_sub", "iss": s.issuer, "sub": r.user_id },
        "events": { kind: body },
    })
}

/// Keeps the feed to its window: drops older changes every so often, until the
/// server stops.
pub(crate) async fn prune_forever(s: Shared) {
    let window = window(s.signer.ttl());
    let every = window
        .checked_div(4)
        .unwrap_or(window)
        .clamp(Duration::from_secs(1), Duration::from_secs(60));
    loop {
        let cutoff = super::db::now_ms()
            .saturating_sub(i64::try_from(window.as_millis()).unwrap_or(i64::MAX));
        if let Err(e) = s.db.prune_changes(cutoff).await {
            tracing::warn!(target: "tiergate::server", error = %e, "claims feed: dropping old changes failed");
        }
        tokio::time::sleep(every).await;
    }
}
