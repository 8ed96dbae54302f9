//! One request's admission: take the token, verify it, decide the route.
//!
//! Synchronous on purpose: everything here is CPU work. The only wait — a JWKS
//! refetch for a `kid` not seen yet — is reported as [`Admission::Fetch`] and
//! done by the service's response future.

use std::borrow::Cow;

use bytes::Bytes;
use http::header::{AUTHORIZATION, COOKIE};
use http::{HeaderMap, Method, Response};
use http_body_util::Full;

use super::gate::GateInner;
use super::response::{self, Protocol};
use crate::claims::{Claims, ClaimsLocation, ClaimsMapping};
use crate::engine::TokenPart;
use crate::token::{ClaimsFrom, TokenError, TokenErrorKind as Kind, VerifiedToken};
use crate::{Entitlements, Policy, telemetry};

/// What the handler gets: a verified caller, or nobody (a public route).
pub(crate) type Admitted = Option<(VerifiedToken, Entitlements)>;

/// What to do with a request.
pub(crate) enum Admission {
    /// Let it through, with these extensions.
    Pass(Admitted),
    /// Answer with this response.
    Deny(Response<Full<Bytes>>),
    /// The token names a `kid` no loaded key of issuer `.1` has: refetch that
    /// issuer's JWKS, then decide.
    Fetch(String, usize),
}

impl GateInner {
    /// Decides a request, except when a JWKS refetch is needed.
    pub(crate) fn admit(&self, method: &Method, path: &str, headers: &HeaderMap) -> Admission {
        if self.store.is_stale() {
            tracing::error!(target: "tiergate", "refusing requests: the policy is older than its maximum staleness");
            return Admission::Deny(response::unavailable(
                "policy_stale",
                "the access policy could not be refreshed; try again shortly",
                Protocol::of(headers),
            ));
        }
        let now = self.now_secs();
        let token = match bearer_token(headers, self.cookie.as_deref()) {
            Ok(Some(t)) => t,
            Ok(None) => return self.finish(method, path, headers, now, 0, Ok(None)).into(),
            Err(e) => return self.finish(method, path, headers, now, 0, Err(e)).into(),
        };
        // A token verified before is in its issuer's cache (one lookup per issuer,
        // by the token's bytes: no reading of the token).
        for i in 0..self.issuer_count() {
            let (verifier, _) = self.issuer(i);
            if let Some(hit) = verifier.cached_at(token, now, verifier.key_generation()) {
                return self
                    .finish(method, path, headers, now, i, Ok(Some(hit)))
                    .into();
            }
        }
        let token = match token_text(token) {
            Ok(t) => t,
            Err(e) => return self.finish(method, path, headers, now, 0, Err(e)).into(),
        };
        let i = match self.issuer_of(token) {
            Ok(i) => i,
            Err(e) => return self.finish(method, path, headers, now, 0, Err(e)).into(),
        };
        let (verifier, own_mapping) = self.issuer(i);
        // The claims are read in the same pass as the registered claims, through
        // the mapping in effect (see `entitlements_for`).
        let policy = self.store.policy();
        let mapping = own_mapping.or(policy.claims_mapping());
        match verifier.verify_fresh_at(token, now, verifier.key_generation(), mapping) {
            Err(e) if verifier.may_refetch(&e) => Admission::Fetch(token.to_owned(), i),
            result => self
                .finish(method, path, headers, now, i, result.map(Some))
                .into(),
        }
    }

    /// Which issuer verifies `token`: the only one, or the one whose verifier
    /// accepts the token's (still unverified) `iss`. Never each in turn: a token is
    /// checked against one issuer's keys, audience and rules.
    fn issuer_of(&self, token: &str) -> Result<usize, TokenError> {
        if self.others.is_empty() {
            return Ok(0);
        }
        let Some(iss) = crate::token::peek_issuer(token) else {
            return Err(TokenError::new(
                Kind::WrongIssuer,
                "the token names no single string `iss`; this app accepts tokens from several issuers and needs it to choose",
            ));
        };
        (0..self.issuer_count())
            .find(|&i| self.issuer(i).0.issuers().any(|accepted| accepted == iss))
            .ok_or_else(|| {
                TokenError::new(
                    Kind::WrongIssuer,
                    "the token's `iss` is not an accepted issuer",
                )
            })
    }

    /// Decides a request once the token is verified (or refused, or absent).
    // A denial's response is built once per denied request; moving it is nothing
    // next to serializing its JSON, so it is not boxed.
    #[allow(clippy::result_large_err)]
    pub(crate) fn finish(
        &self,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
        now: i64,
        issuer: usize,
        token: Result<Option<VerifiedToken>, TokenError>,
    ) -> Result<Admitted, Response<Full<Bytes>>> {
        let policy: Policy = self.store.policy();
        let method = method.as_str();
        // A token minted before its subject's latest claims change is as good as
        // no token (so a public route still serves it, without entitlements).
        #[cfg(feature = "claims-changes")]
        let token = match token {
            Ok(Some(t)) => self.check_fresh(issuer, &t).map(|()| Some(t)),
            other => other,
        };
        let token = match token {
            Ok(Some(t)) => t,
            // Only a caller without a valid token needs the extra lookup.
            Ok(None) | Err(_) if policy.is_public(method, path) => {
                count_decision(policy.instance(), "allowed", "public_route", "", "", "", "");
                return Ok(None);
            }
            Ok(None) => {
                let e = TokenError::new(
                    Kind::MissingToken,
                    "send `Authorization: Bearer <access token>`",
                );
                return self.unauthorized(method, path, headers, &e);
            }
            Err(e) => return self.unauthorized(method, path, headers, &e),
        };
        let (verifier, mapping) = self.issuer(issuer);
        let instance = policy.instance();
        let ent = entitlements_for(policy, mapping, verifier.claims_location(), &token, now);
        let d = ent.check_route(method, path);
        let rule = d.rule().map(|r| r.pattern());
        let revision = d.revision();
        let plan = d.plan();
        let feature = d.feature().unwrap_or_default();
        let upgrade = d.upgrade_to().unwrap_or_default();
        let code = d.reason().code();
        let pattern = rule.unwrap_or_default();
        if d.allowed() {
            count_decision(instance, "allowed", code, pattern, plan, feature, upgrade);
            tracing::debug!(
                target: "tiergate", method, path, allowed = true, reason = d.reason().code(),
                rule, plan = d.plan(), %revision, sub = token.subject(), "allowed"
            );
        } else if !self.enforce || d.rule().is_some_and(|r| !r.enforced()) {
            count_decision(instance, "observed", code, pattern, plan, feature, upgrade);
            tracing::warn!(
                target: "tiergate", method, path, allowed = true, would_deny = true,
                reason = d.reason().code(), rule, plan = d.plan(), upgrade_to = d.upgrade_to(),
                %revision, sub = token.subject(), "observe mode: this request would be denied"
            );
        } else {
            count_decision(instance, "denied", code, pattern, plan, feature, upgrade);
            tracing::info!(
                target: "tiergate", method, path, allowed = false, reason = d.reason().code(),
                rule, plan = d.plan(), upgrade_to = d.upgrade_to(), %revision,
                sub = token.subject(), "denied"
            );
            return Err(response::forbidden(&d, Protocol::of(headers)));
        }
        Ok(Some((token, ent)))
    }

    #[allow(clippy::result_large_err)]
    fn unauthorized(
        &self,
        method: &str,
        path: &str,
        headers: &HeaderMap,
        e: &TokenError,
    ) -> Result<Admitted, Response<Full<Bytes>>> {
        telemetry::increment(telemetry::TOKENS_REFUSED, &[("reason", e.code())]);
        tracing::info!(
            target: "tiergate", method, path, allowed = false, reason = e.code(),
            detail = e.detail(), "token refused"
        );
        Err(response::unauthorized(e, Protocol::of(headers)))
    }
}

impl From<Result<Admitted, Response<Full<Bytes>>>> for Admission {
    fn from(r: Result<Admitted, Response<Full<Bytes>>>) -> Self {
        match r {
            Ok(ext) => Admission::Pass(ext),
            Err(res) => Admission::Deny(res),
        }
    }
}

/// Counts one decision. Every label value is bounded by the policy (its rule
/// patterns, plans and features) or by tiergate (outcomes, reasons): never by the
/// request, so a scan of a million paths adds no series.
fn count_decision(
    policy_instance: u64,
    outcome: &'static str,
    reason: &str,
    rule: &str,
    plan: &str,
    feature: &str,
    upgrade_to: &str,
) {
    telemetry::increment_for_policy(
        telemetry::DECISIONS,
        policy_instance,
        &[
            ("outcome", outcome),
            ("reason", reason),
            ("rule", rule),
            ("plan", plan),
            ("feature", feature),
            ("upgrade_to", upgrade_to),
        ],
    );
}

/// The bearer token's bytes: from exactly one `Authorization: Bearer` header
/// (scheme in any case), else from the named cookie. `Ok(None)` when the request
/// carries none. Bytes, because the token cache is asked first and a token it holds
/// needs no other reading; [`token_text`] reads the rest.
pub(crate) fn bearer_token<'h>(
    headers: &'h HeaderMap,
    cookie: Option<&str>,
) -> Result<Option<&'h [u8]>, TokenError> {
    let mut auth = headers.get_all(AUTHORIZATION).iter();
    if let Some(value) = auth.next() {
        if auth.next().is_some() {
            return Err(TokenError::new(
                Kind::AmbiguousCredentials,
                "send exactly one Authorization header",
            ));
        }
        // Only the scheme is read here. The token's characters are the verifier's to
        // check (base64url and dots, refused as a malformed token otherwise), so the
        // value is not scanned twice on every request.
        let value = value.as_bytes().trim_ascii();
        let (scheme, mut token) = match value.split(|&b| b == b' ').next() {
            Some(scheme) => (
                scheme,
                value
                    .get(scheme.len().saturating_add(1)..)
                    .unwrap_or_default(),
            ),
            None => (value, &b""[..]),
        };
        if !scheme.eq_ignore_ascii_case(b"bearer") {
            return Err(TokenError::new(
                Kind::UnsupportedScheme,
                "use the Bearer scheme: `Authorization: Bearer <access token>`",
            ));
        }
        while let [b' ', rest @ ..] = token {
            token = rest;
        }
        if token.is_empty() {
            return Err(TokenError::new(
                Kind::MissingToken,
                "the Bearer token is empty",
            ));
        }
        return Ok(Some(token));
    }
    let Some(name) = cookie else { return Ok(None) };
    let mut values = cookie_values(headers, name);
    let found = values.next();
    if values.next().is_some() {
        return Err(TokenError::new(
            Kind::AmbiguousCredentials,
            "the token cookie appears more than once",
        ));
    }
    Ok(found.filter(|v| !v.is_empty()).map(str::as_bytes))
}

/// A token's bytes as text, for the verifier (which then checks every character).
fn token_text(token: &[u8]) -> Result<&str, TokenError> {
    std::str::from_utf8(token).map_err(|_| {
        TokenError::new(
            Kind::MalformedToken,
            "the Authorization header is not ASCII",
        )
    })
}

/// The values of every cookie called `name` in the request's `Cookie` headers
/// (quotes around a value removed). Shared with the server's session cookie.
pub(crate) fn cookie_values<'h>(
    headers: &'h HeaderMap,
    name: &str,
) -> impl Iterator<Item = &'h str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(move |(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
}

/// The caller's entitlements, reusing the part of them that depends only on the
/// token and the policy (plan, roles, seats, notes), resolved for an earlier request
/// with the same cached token under the same compiled policy. After a reload the
/// token's remembered part belongs to the old policy and is not used; the part is
/// resolved afresh on each request until the cache verifies the token again
/// (within the cache's maximum age).
///
/// The claims are read with the issuer's (or gate's) claims mapping, else the
/// policy's `claims:` section, else the verifier's claims location. The verifier
/// read them already, through that same mapping, unless the token was verified
/// under another (a policy reload changed the section): then they are read again.
fn entitlements_for(
    policy: Policy,
    gate_mapping: Option<&ClaimsMapping>,
    location: &ClaimsLocation,
    token: &VerifiedToken,
    now: i64,
) -> Entitlements {
    let memo = token.policy_part();
    match memo.get() {
        Some(part) if part.belongs_to(&policy) => Entitlements::from_part(policy, part, now),
        _ => {
            let mapping = gate_mapping.or(policy.claims_mapping());
            let claims = match (mapping, token.claims_from()) {
                (Some(m), ClaimsFrom::Mapping(id)) if id == m.id => Cow::Borrowed(token.claims()),
                (None, ClaimsFrom::Location) => Cow::Borrowed(token.claims()),
                (Some(m), _) => Cow::Owned(m.read_json(token.raw_payload())),
                (None, ClaimsFrom::Mapping(_)) => {
                    Cow::Owned(Claims::from_payload_map(token.payload(), location))
                }
            };
            let part = TokenPart::of(&policy, &claims);
            let ent = Entitlements::from_part(policy, &part, now);
            // Taken only by the first policy the token meets; a later one resolves
            // its own each time (see above).
            let _ = memo.set(part);
            ent
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        for v in ["Bearer abc", "bearer abc", "BEARER  abc"] {
            let h = headers(&[("authorization", v)]);
            assert_eq!(bearer_token(&h, None).unwrap(), Some(&b"abc"[..]), "{v}");
        }
    }

    #[test]
    fn a_header_that_is_not_text_is_refused() {
        let mut h = HeaderMap::new();
        h.insert(
            AUTHORIZATION,
            HeaderValue::from_bytes(b"Bearer \xc3(abc").unwrap(),
        );
        let token = bearer_token(&h, None).unwrap().unwrap();
        assert_eq!(token_text(token).unwrap_err().kind(), Kind::MalformedToken);
    }

    #[test]
    fn surrounding_whitespace_is_not_part_of_the_token() {
        for v in ["Bearer abc ", "Bearer   abc\t", " Bearer abc"] {
            let h = headers(&[("authorization", v)]);
            assert_eq!(bearer_token(&h, None).unwrap(), Some(&b"abc"[..]), "{v:?}");
        }
        let h = headers(&[("authorization", "Bearer\tabc")]);
        assert_eq!(
            bearer_token(&h, None).unwrap_err().kind(),
            Kind::UnsupportedScheme
        );
    }

    #[test]
    fn two_authorization_headers_are_refused() {
        let h = headers(&[("authorization", "Bearer a"), ("authorization", "Bearer b")]);
        assert_eq!(
            bearer_token(&h, None).unwrap_err().kind(),
            Kind::AmbiguousCredentials
        );
    }

    #[test]
    fn other_schemes_and_empty_tokens_are_refused() {
        let h = headers(&[("authorization", "Basic dXNlcjpwdw==")]);
        assert_eq!(
            bearer_token(&h, None).unwrap_err().kind(),
            Kind::UnsupportedScheme
        );
        let h = headers(&[("authorization", "Bearer")]);
        assert_eq!(
            bearer_token(&h, None).unwrap_err().kind(),
            Kind::MissingToken
        );
    }

    #[test]
    fn the_cookie_is_read_only_when_configured_and_never_twice() {
        let h = headers(&[("cookie", "theme=dark; at=tok.en.sig")]);
        assert_eq!(bearer_token(&h, None).unwrap(), None);
        assert_eq!(
            bearer_token(&h, Some("at")).unwrap(),
            Some(&b"tok.en.sig"[..])
        );
        let h = headers(&[("cookie", "at=a"), ("cookie", "at=b")]);
        assert_eq!(
            bearer_token(&h, Some("at")).unwrap_err().kind(),
            Kind::AmbiguousCredentials
        );
    }
}
