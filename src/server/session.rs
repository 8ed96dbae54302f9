//! Dashboard sessions: a random id in an HttpOnly, SameSite=Strict cookie, only its
//! hash in the database; a new id at every sign-in, gone at sign-out; idle and
//! absolute timeouts. And the cross-site check for state-changing requests.

use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};

use super::db::{Db, DbError, now_ms};
use super::problem::ApiError;
use super::secrets::{random_secret, sha256_hex};

/// How sessions are kept.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// A session unused this long ends (default 30 minutes).
    pub idle: Duration,
    /// A session ends this long after sign-in, used or not (default 12 hours).
    pub absolute: Duration,
    /// Behind HTTPS: the cookie is `Secure` and named `__Host-tiergate_session`.
    pub secure: bool,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            idle: Duration::from_secs(30 * 60),
            absolute: Duration::from_secs(12 * 3600),
            secure: false,
        }
    }
}

impl SessionConfig {
    /// The cookie's name: `__Host-` where the browser allows it (HTTPS).
    pub fn cookie_name(&self) -> &'static str {
        if self.secure {
            "__Host-tiergate_session"
        } else {
            "tiergate_session"
        }
    }

    /// `Set-Cookie` for a new session id.
    // The id is base64url from `random_secret` and the rest is ours: always a valid
    // header value.
    #[allow(clippy::expect_used)]
    pub fn set_cookie(&self, id: &str) -> HeaderValue {
        let secure = if self.secure { "; Secure" } else { "" };
        let max_age = self.absolute.as_secs();
        HeaderValue::from_str(&format!(
            "{}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}{secure}",
            self.cookie_name()
        ))
        .expect("a base64url id makes a valid header")
    }

    /// `Set-Cookie` that removes the cookie.
    #[allow(clippy::expect_used)] // a constant text: always a valid header value
    pub fn clear_cookie(&self) -> HeaderValue {
        let secure = if self.secure { "; Secure" } else { "" };
        HeaderValue::from_str(&format!(
            "{}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{secure}",
            self.cookie_name()
        ))
        .expect("a valid header")
    }

    /// The session id the request carries, if any.
    pub fn id_from<'h>(&self, headers: &'h HeaderMap) -> Option<&'h str> {
        crate::layer::cookie_values(headers, self.cookie_name()).next()
    }

    /// Starts a session for `admin`; returns the new id (for the cookie).
    pub async fn start(&self, db: &Db, admin: &str) -> Result<String, DbError> {
        let id = random_secret();
        db.insert_session(&sha256_hex(&id), admin).await?;
        Ok(id)
    }

    /// The signed-in admin, if the request's session is valid; marks it used.
    pub async fn admin(&self, db: &Db, headers: &HeaderMap) -> Result<Option<String>, DbError> {
        let Some(id) = self.id_from(headers) else {
            return Ok(None);
        };
        let hash = sha256_hex(id);
        let Some((email, created, last_seen)) = db.session(&hash).await? else {
            return Ok(None);
        };
        let now = now_ms();
        // Stored times may be anything (a hand edit): saturating, never wrapping.
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        let expired = now.saturating_sub(last_seen) > ms(self.idle)
            || now.saturating_sub(created) > ms(self.absolute);
        if expired {
            db.delete_session(&hash).await?;
            return Ok(None);
        }
        db.touch_session(&hash).await?;
        Ok(Some(email))
    }

    /// Signs `admin` in: ends the session the request carries (an id planted before
    /// sign-in is worthless after it) and starts a new one. Returns its `Set-Cookie`.
    pub async fn sign_in(
        &self,
        db: &Db,
        headers: &HeaderMap,
        admin: &str,
    ) -> Result<HeaderValue, DbError> {
        self.end(db, headers).await?;
        let id = self.start(db, admin).await?;
        Ok(self.set_cookie(&id))
    }

    /// Signs out: ends the request's session. Returns the `Set-Cookie` that clears it.
    pub async fn sign_out(&self, db: &Db, headers: &HeaderMap) -> Result<HeaderValue, DbError> {
        self.end(db, headers).await?;
        Ok(self.clear_cookie())
    }

    /// Ends the request's session, if any.
    pub async fn end(&self, db: &Db, headers: &HeaderMap) -> Result<(), DbError> {
        if let Some(id) = self.id_from(headers) {
            db.delete_session(&sha256_hex(id)).await?;
        }
        Ok(())
    }
}

/// Refuses a state-changing request that a browser says comes from another site:
/// `Sec-Fetch-Site: cross-site`, or an `Origin` whose host is not this `Host`.
/// Together with SameSite=Strict cookies this stops CSRF.
pub fn same_site(method: &Method, headers: &HeaderMap) -> Result<(), ApiError> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let refuse = || {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "cross_site_request",
            "cross-site requests cannot change anything here",
        )
    };
    let header = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let fetch_site = header("sec-fetch-site");
    if fetch_site == Some("cross-site") {
        return Err(refuse());
    }
    // Under `Referrer-Policy: no-referrer` (which every page here sends) browsers
    // send `Origin: null` on their own form posts; they all send `Sec-Fetch-Site` too,
    // which then decides. A sandboxed frame elsewhere says `null` and `cross-site`.
    if header("origin") == Some("null") {
        return if fetch_site == Some("same-origin") {
            Ok(())
        } else {
            Err(refuse())
        };
    }
    if let Some(origin) = header("origin") {
        let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
        if Some(origin_host) != header("host") {
            return Err(refuse());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn a_null_origin_is_decided_by_sec_fetch_site() {
        let post = Method::POST;
        let ok = |pairs| same_site(&post, &headers(pairs)).is_ok();
        // A browser's own form post under Referrer-Policy: no-referrer.
        assert!(ok(&[
            ("origin", "null"),
            ("sec-fetch-site", "same-origin"),
            ("host", "a.test")
        ]));
        // A sandboxed frame on another site, or a client that says nothing more.
        assert!(!ok(&[("origin", "null"), ("sec-fetch-site", "cross-site")]));
        assert!(!ok(&[("origin", "null")]));
        assert!(!ok(&[("origin", "null"), ("sec-fetch-site", "same-site")]));
        assert!(ok(&[("origin", "http://a.test"), ("host", "a.test")]));
        assert!(!ok(&[("origin", "http://evil.test"), ("host", "a.test")]));
        assert!(
            ok(&[]),
            "no browser headers: not a browser, and it has no cookie"
        );
        assert!(same_site(&Method::GET, &headers(&[("sec-fetch-site", "cross-site")])).is_ok());
    }
}
