//! The responses a refused request gets: RFC 9457 problem+json over HTTP, a
//! trailers-only status over gRPC. None of them ever contains the token.

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE};
use http::{HeaderMap, Response, StatusCode};
use http_body_util::Full;
use serde_json::{Value, json};

use crate::engine::Decision;
use crate::token::{TokenError, TokenErrorKind};

/// Where a denial goes: a plain HTTP client or a gRPC client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    Http,
    Grpc,
}

impl Protocol {
    /// gRPC requests say so in their `content-type` (`application/grpc`, `+proto`, …).
    pub(crate) fn of(headers: &HeaderMap) -> Protocol {
        let grpc = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/grpc"));
        if grpc { Protocol::Grpc } else { Protocol::Http }
    }
}

/// gRPC status codes the layer answers with.
const GRPC_PERMISSION_DENIED: u8 = 7;
const GRPC_UNAVAILABLE: u8 = 14;
const GRPC_UNAUTHENTICATED: u8 = 16;
const GRPC_INTERNAL: u8 = 13;

/// 401 (HTTP) or UNAUTHENTICATED (gRPC) for a refused or missing token.
pub(crate) fn unauthorized(err: &TokenError, protocol: Protocol) -> Response<Full<Bytes>> {
    if matches!(
        err.kind(),
        TokenErrorKind::KeysUnavailable | TokenErrorKind::ClaimsChangesUnavailable
    ) {
        return unavailable(err.code(), err.detail(), protocol);
    }
    let detail = err.detail();
    match protocol {
        Protocol::Grpc => grpc(GRPC_UNAUTHENTICATED, detail, err.code(), None),
        Protocol::Http => {
            let challenge = match err.kind() {
                // RFC 6750 §3.1: no error code when the request had no credentials.
                TokenErrorKind::MissingToken => "Bearer".to_owned(),
                TokenErrorKind::AmbiguousCredentials | TokenErrorKind::UnsupportedScheme => {
                    format!(
                        "Bearer error=\"invalid_request\", error_description=\"{}\"",
                        quoted(detail)
                    )
                }
                _ => format!(
                    "Bearer error=\"invalid_token\", error_description=\"{}\"",
                    quoted(detail)
                ),
            };
            let mut res = problem(
                StatusCode::UNAUTHORIZED,
                err.code(),
                json!({ "title": "Unauthorized", "detail": detail }),
            );
            if let Ok(v) = HeaderValue::from_str(&challenge) {
                res.headers_mut().insert(WWW_AUTHENTICATE, v);
            }
            res
        }
    }
}

/// 403 (HTTP) or PERMISSION_DENIED (gRPC) for a denied decision: the reason, what is
/// missing, the caller's plan, the plan that would allow it and the rule.
pub(crate) fn forbidden(d: &Decision<'_>, protocol: Protocol) -> Response<Full<Bytes>> {
    let detail = d.explanation();
    let code = d.reason().code();
    match protocol {
        Protocol::Grpc => grpc(GRPC_PERMISSION_DENIED, &detail, code, d.upgrade_to()),
        Protocol::Http => {
            let mut body = json!({
                "title": "Forbidden",
                "detail": detail,
                "plan": d.plan(),
                "upgrade_to": d.upgrade_to(),
                "revision": d.revision().to_string(),
            });
            if let Some(members) = body.as_object_mut() {
                if let Some(f) = d.feature() {
                    members.insert("feature".into(), json!(f));
                }
                if let Some(r) = d.role() {
                    members.insert("role".into(), json!(r));
                }
                if let Some(rule) = d.rule() {
                    let rule = serde_json::to_value(rule).unwrap_or(Value::Null);
                    members.insert("rule".into(), rule);
                }
            }
            problem(StatusCode::FORBIDDEN, code, body)
        }
    }
}

/// 503 (HTTP) or UNAVAILABLE (gRPC): the gate cannot decide, so it refuses.
pub(crate) fn unavailable(code: &str, detail: &str, protocol: Protocol) -> Response<Full<Bytes>> {
    match protocol {
        Protocol::Grpc => grpc(GRPC_UNAVAILABLE, detail, code, None),
        Protocol::Http => problem(
            StatusCode::SERVICE_UNAVAILABLE,
            code,
            json!({ "title": "Service Unavailable", "detail": detail }),
        ),
    }
}

/// 500 (HTTP) or INTERNAL (gRPC): the application is wired wrong (e.g. a handler
/// reads Entitlements on a route the layer does not cover). Fails closed.
pub(crate) fn misconfigured(detail: &str, protocol: Protocol) -> Response<Full<Bytes>> {
    match protocol {
        Protocol::Grpc => grpc(GRPC_INTERNAL, detail, "gate_missing", None),
        Protocol::Http => problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "gate_missing",
            json!({ "title": "Internal Server Error", "detail": detail }),
        ),
    }
}

/// `application/problem+json` with `type`, `status` and `reason` filled in. The
/// claims server's API errors are built here too, so every problem has one shape.
pub(crate) fn problem(status: StatusCode, reason: &str, body: Value) -> Response<Full<Bytes>> {
    // Anything but an object (no caller passes one) becomes its `detail`.
    let mut body = match body {
        Value::Object(members) => members,
        other => serde_json::Map::from_iter([("detail".to_owned(), other)]),
    };
    body.insert(
        "type".into(),
        json!(format!("urn:tiergate:problem:{reason}")),
    );
    body.insert("status".into(), json!(status.as_u16()));
    body.insert("reason".into(), json!(reason));
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    let mut res = Response::new(Full::new(Bytes::from(bytes)));
    *res.status_mut() = status;
    res.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    res
}

/// A trailers-only gRPC response: HTTP 200, the status in the headers. The reason
/// code and the upgrade plan travel as `tiergate-reason` / `tiergate-upgrade-to`
/// metadata so clients can act on them without parsing the message.
fn grpc(
    status: u8,
    message: &str,
    reason: &str,
    upgrade_to: Option<&str>,
) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(Bytes::new()));
    let h = res.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    h.insert("grpc-status", HeaderValue::from(u16::from(status)));
    if let Ok(v) = HeaderValue::from_str(&percent_encode(message)) {
        h.insert("grpc-message", v);
    }
    if let Ok(v) = HeaderValue::from_str(reason) {
        h.insert("tiergate-reason", v);
    }
    if let Some(v) = upgrade_to.and_then(|u| HeaderValue::from_str(u).ok()) {
        h.insert("tiergate-upgrade-to", v);
    }
    res
}

/// gRPC's `grpc-message` encoding: bytes outside printable ASCII, and `%`, as `%XX`.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Safe inside an RFC 7230 quoted-string: no `"` or `\`, printable ASCII only.
fn quoted(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '"' | '\\' => '\'',
            c if c.is_ascii() && !c.is_ascii_control() => c,
            _ => '?',
        })
        .collect()
}

/// What extractors and guards answer when a request has no Entitlements.
pub(crate) fn missing_entitlements(
    extensions: &http::Extensions,
    headers: &http::HeaderMap,
) -> http::Response<http_body_util::Full<bytes::Bytes>> {
    let protocol = Protocol::of(headers);
    // An anonymous Caller passed a public route: 401 (sign in), not 500 (no layer).
    if extensions.get::<super::caller::Caller>().is_some() {
        let err = crate::token::TokenError::new(
            crate::token::TokenErrorKind::MissingToken,
            "this needs a signed-in caller; send `Authorization: Bearer <token>`",
        );
        return unauthorized(&err, protocol);
    }
    misconfigured(
        "no Entitlements on this request: the route is not behind tiergate's layer (add .layer(gate.layer()) to the router that serves it)",
        protocol,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_message_is_percent_encoded() {
        assert_eq!(percent_encode("50% off — now"), "50%25 off %E2%80%94 now");
    }

    #[test]
    fn challenge_text_cannot_break_out_of_its_quotes() {
        assert_eq!(quoted(r#"a "b" \c"#), "a 'b' 'c");
    }
}
