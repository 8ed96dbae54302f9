//! The platform API: claims (server to server), tokens, sign-in, and the published
//! keys.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::access_token::{fits_in_a_token, mint_for, token_payload};
use super::client_auth::{authenticate, credentials};
use super::db::{ClaimsWrite, ClaimsWriteOptions, IdempotencyKey, RefreshUse, UserRow};
use super::input::{check_claims, email as parse_email, merge};
use super::problem::ApiError;
use super::secrets;
use super::state::{AppState, ClientAddr, Shared, parse, query_error, unreadable, user_json};

/// Refresh tokens live this long (rotated on every use).
const REFRESH_TTL_MS: i64 = 30 * 24 * 3600 * 1000;

/// The platform API's routes.
pub fn router() -> Router<Shared> {
    Router::new()
        .route("/api/platform/claims", post(set_claims).get(get_claims))
        .route("/api/platform/audit", get(audit))
        .route("/api/platform/tokens", post(user_token))
        .route("/api/auth/login", post(login))
        .route("/api/auth/refresh", post(refresh))
        .route("/oauth/token", post(oauth_token))
        .route("/.well-known/jwks.json", get(jwks))
        .route(
            "/.well-known/openid-configuration",
            get(openid_configuration),
        )
        .route("/healthz", get(|| async { "ok" }))
}

fn no_store(mut res: Response) -> Response {
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

fn json_response(status: StatusCode, body: String) -> Response {
    let mut res = (status, body).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    no_store(res)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetClaims {
    client_id: Option<String>,
    client_secret: Option<String>,
    email: String,
    claims: Map<String, Value>,
    /// Lets the user sign in at /api/auth/login.
    password: Option<String>,
}

fn replay(stored: super::db::StoredResponse, request_hash: &str) -> Result<Response, ApiError> {
    if stored.request_hash != request_hash {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            "this Idempotency-Key was used with a different request body",
        ));
    }
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let mut res = json_response(status, stored.body);
    res.headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    Ok(res)
}

async fn set_claims(
    State(s): State<Shared>,
    addr: ClientAddr,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let idem_key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let request_hash = match (&idem_key, &body) {
        (Some(_), Ok(b)) => secrets::sha256_hex(&String::from_utf8_lossy(b)),
        _ => String::new(),
    };
    let req: SetClaims = parse(body)?;
    let (client, secret) = credentials(&headers, req.client_id.clone(), req.client_secret.clone())?;
    authenticate(&s, addr, &client, &secret).await?;

    // A replay answers before any work; a key sent on several connections at once is
    // decided inside the write (`Db::write_claims`).
    if let Some(key) = &idem_key
        && let Some(stored) = s.db.idempotent(&client, key).await?
    {
        return replay(stored, &request_hash);
    }

    let email = parse_email(&req.email)?;
    check_claims(&s.store.policy(), &req.claims)?;
    let password_hash = match &req.password {
        Some(p) if p.chars().count() < 8 => {
            return Err(ApiError::field("password", "at least 8 characters"));
        }
        Some(p) => Some(s.hasher.hash(p).await?),
        None => None,
    };
    let actor = format!("client:{client}");
    let options = ClaimsWriteOptions {
        email: &email,
        actor: &actor,
        password_hash: password_hash.as_deref(),
        idempotency: idem_key.as_deref().map(|key| IdempotencyKey {
            client_id: &client,
            key,
            request_hash: &request_hash,
        }),
    };
    let written =
        s.db.write_claims(
            options,
            |stored| {
                let after = merge(&stored.claims, &req.claims);
                fits_in_a_token(&s, stored, &after)?;
                Ok::<_, ApiError>(after)
            },
            |user| user_json(user).to_string(),
        )
        .await?;
    match written {
        ClaimsWrite::Applied(user) => {
            tracing::debug!(target: "tiergate::server", actor, user = %user.id, version = user.claims_version, "claims set");
            Ok(json_response(StatusCode::OK, user_json(&user).to_string()))
        }
        ClaimsWrite::Replayed(stored) => replay(stored, &request_hash),
        ClaimsWrite::Refused(e) => Err(e),
        ClaimsWrite::Unreadable(_) => Err(unreadable(&email)),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ByEmail {
    email: String,
}

/// The user a `?email=` query names, for an authenticated client.
async fn queried_user(
    s: &AppState,
    addr: ClientAddr,
    headers: &HeaderMap,
    q: Result<Query<ByEmail>, axum::extract::rejection::QueryRejection>,
) -> Result<UserRow, ApiError> {
    let (client, secret) = credentials(headers, None, None)?;
    authenticate(s, addr, &client, &secret).await?;
    let Query(q) = q.map_err(|e| query_error(&e))?;
    let email = parse_email(&q.email)?;
    s.db.user_by_email(&email)
        .await?
        .ok_or_else(|| not_found(&email))
}

async fn get_claims(
    State(s): State<Shared>,
    addr: ClientAddr,
    headers: HeaderMap,
    q: Result<Query<ByEmail>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let user = queried_user(&s, addr, &headers, q).await?;
    Ok(no_store(Json(user_json(&user)).into_response()))
}

async fn audit(
    State(s): State<Shared>,
    addr: ClientAddr,
    headers: HeaderMap,
    q: Result<Query<ByEmail>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let user = queried_user(&s, addr, &headers, q).await?;
    let entries = s.db.audit(&user.id).await?;
    let body = json!({ "user_id": user.id, "email": user.email, "entries": entries });
    Ok(no_store(Json(body).into_response()))
}

fn not_found(email: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "user_not_found",
        format!("no user with the email {email}"),
    )
}

fn token_response(s: &AppState, access: String, refresh: Option<String>) -> Response {
    let mut body = json!({ "access_token": access, "token_type": "Bearer", "expires_in": s.signer.ttl().as_secs() });
    if let (Some(r), Some(o)) = (refresh, body.as_object_mut()) {
        o.insert("refresh_token".into(), json!(r));
    }
    no_store(Json(body).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenFor {
    client_id: Option<String>,
    client_secret: Option<String>,
    email: String,
}

async fn user_token(
    State(s): State<Shared>,
    addr: ClientAddr,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let req: TokenFor = parse(body)?;
    let (client, secret) = credentials(&headers, req.client_id, req.client_secret)?;
    authenticate(&s, addr, &client, &secret).await?;
    let email = parse_email(&req.email)?;
    let user =
        s.db.user_by_email(&email)
            .await?
            .ok_or_else(|| not_found(&email))?;
    let access = mint_for(&s, &user).await?;
    crate::telemetry::increment(crate::telemetry::SERVER_TOKENS_MINTED, &[("kind", "user")]);
    Ok(token_response(&s, access, None))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    email: String,
    password: String,
}

/// Starts a refresh-token family (one per sign-in).
async fn issue_refresh(s: &AppState, user_id: &str) -> Result<String, ApiError> {
    let token = secrets::random_secret();
    let expires = super::db::now_ms().saturating_add(REFRESH_TTL_MS);
    let family = secrets::random_id("fam");
    s.db.insert_refresh(&secrets::sha256_hex(&token), user_id, &family, expires)
        .await?;
    Ok(token)
}

async fn login(
    State(s): State<Shared>,
    addr: ClientAddr,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let req: Login = parse(body)?;
    let email = parse_email(&req.email).ok();
    let account = email
        .clone()
        .unwrap_or_else(|| req.email.trim().to_lowercase());
    s.limits
        .sign_in(&account, addr.0)
        .map_err(ApiError::rate_limited)?;
    let user = match &email {
        Some(email) => s.db.user_by_email(email).await?,
        None => None,
    };
    let stored = user.as_ref().and_then(|u| u.password_hash.clone());
    let ok = s.hasher.verify(&req.password, stored.as_deref()).await?;
    let Some(user) = user.filter(|_| ok) else {
        crate::telemetry::increment(
            crate::telemetry::SERVER_AUTH_FAILURES,
            &[("kind", "password")],
        );
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "the email or password is wrong",
        ));
    };
    let access = mint_for(&s, &user).await?;
    crate::telemetry::increment(
        crate::telemetry::SERVER_TOKENS_MINTED,
        &[("kind", "sign_in")],
    );
    let refresh = issue_refresh(&s, &user.id).await?;
    Ok(token_response(&s, access, Some(refresh)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Refresh {
    refresh_token: String,
}

async fn refresh(
    State(s): State<Shared>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let req: Refresh = parse(body)?;
    let invalid = |detail: &'static str| {
        crate::telemetry::increment(
            crate::telemetry::SERVER_AUTH_FAILURES,
            &[("kind", "refresh_token")],
        );
        ApiError::new(StatusCode::UNAUTHORIZED, "invalid_refresh_token", detail)
    };
    let next = secrets::random_secret();
    let expires = super::db::now_ms().saturating_add(REFRESH_TTL_MS);
    let used =
        s.db.rotate_refresh(
            &secrets::sha256_hex(&req.refresh_token),
            &secrets::sha256_hex(&next),
            expires,
            s.refresh_race_grace,
        )
        .await?;
    let user_id = match used {
        RefreshUse::Rotated { user_id } => user_id,
        RefreshUse::Invalid => {
            return Err(invalid("the refresh token is unknown, expired or revoked"));
        }
        RefreshUse::Raced => {
            return Err(invalid(
                "the refresh token was used a moment ago by another request; use the token that request got",
            ));
        }
        RefreshUse::Reused => {
            return Err(invalid(
                "the refresh token was already used; every token of its sign-in is now revoked",
            ));
        }
    };
    let user =
        s.db.user_by_id(&user_id)
            .await?
            .ok_or_else(|| invalid("the refresh token's user no longer exists"))?;
    // Minted from the store, so a plan change reaches the user at this refresh.
    let access = mint_for(&s, &user).await?;
    crate::telemetry::increment(
        crate::telemetry::SERVER_TOKENS_MINTED,
        &[("kind", "refresh")],
    );

    Ok(token_response(&s, access, Some(next)))
}

#[derive(Deserialize)]
struct OAuthForm {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    #[allow(dead_code)]
    scope: Option<String>,
}

/// RFC 6749 §4.4: machine tokens, errors in the OAuth shape. A machine token
/// follows RFC 9068 (`sub` and `client_id` are the client) and carries the machine
/// audience, not the user one, so an app gated for users refuses it.
async fn oauth_token(
    State(s): State<Shared>,
    addr: ClientAddr,
    headers: HeaderMap,
    form: Result<axum::Form<OAuthForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let oauth_error = |status: StatusCode, error: &str, description: &str| {
        no_store(
            (
                status,
                Json(json!({ "error": error, "error_description": description })),
            )
                .into_response(),
        )
    };
    let Ok(axum::Form(form)) = form else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "send an application/x-www-form-urlencoded body",
        );
    };
    if form.grant_type.as_deref() != Some("client_credentials") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "only grant_type=client_credentials is supported",
        );
    }
    let (client, secret) = match credentials(&headers, form.client_id, form.client_secret) {
        Ok(c) => c,
        Err(e) if e.status() == StatusCode::UNAUTHORIZED => {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "client authentication failed",
            );
        }
        Err(e) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                e.body()
                    .get("detail")
                    .and_then(Value::as_str)
                    .unwrap_or("invalid request"),
            );
        }
    };
    if let Err(e) = authenticate(&s, addr, &client, &secret).await {
        if e.status() == StatusCode::UNAUTHORIZED {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "client authentication failed",
            );
        }
        return e.into_response();
    }
    let payload = token_payload(
        &s,
        &s.machine_audience,
        &client,
        [("client_id", json!(client))],
    );
    match s.signer.sign(payload).await {
        Ok(access) => {
            crate::telemetry::increment(
                crate::telemetry::SERVER_TOKENS_MINTED,
                &[("kind", "machine")],
            );
            token_response(&s, access, None)
        }
        Err(e) => ApiError::internal(e).into_response(),
    }
}

async fn jwks(State(s): State<Shared>) -> Result<Response, ApiError> {
    let mut res = Json(s.signer.jwks().await?).into_response();
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    Ok(res)
}

async fn openid_configuration(State(s): State<Shared>) -> Json<Value> {
    let base = s.issuer.trim_end_matches('/');
    Json(json!({
        "issuer": s.issuer,
        "jwks_uri": format!("{base}/.well-known/jwks.json"),
        "token_endpoint": format!("{base}/oauth/token"),
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "id_token_signing_alg_values_supported": ["EdDSA"],
        // The claims-change feed (see `claims_feed`): SETs with these CAEP events.
        "claims_changes_endpoint": format!("{base}{}", super::claims_feed::PATH),
        "claims_changes_events_supported": [
            super::claims_feed::TOKEN_CLAIMS_CHANGE,
            super::claims_feed::SESSION_REVOKED,
        ],
    }))
}
