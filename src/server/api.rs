//! The HTTP API: claims (server to server), tokens, sign-in, and the published keys.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::db::{Db, UserRow};
use super::input::{check_claims, email as parse_email, merge};
use super::problem::ApiError;
use super::secrets::{self, RateLimiter};
use super::signing::Signer;
use crate::PolicyStore;

/// Request bodies larger than this are refused with 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Refresh tokens live this long (rotated on every use).
const REFRESH_TTL_MS: i64 = 30 * 24 * 3600 * 1000;

/// What every handler shares.
pub struct AppState {
    pub(crate) db: Db,
    pub(crate) store: PolicyStore,
    pub(crate) signer: Signer,
    pub(crate) issuer: String,
    pub(crate) audience: String,
    pub(crate) limiter: RateLimiter,
    pub(crate) sessions: super::session::SessionConfig,
}

type Shared = Arc<AppState>;

/// The API's routes.
pub fn router(state: Shared) -> Router {
    let limited = Router::new()
        .route("/api/platform/claims", post(set_claims).get(get_claims))
        .route("/api/platform/audit", get(audit))
        .route("/api/platform/tokens", post(user_token))
        .route("/api/auth/login", post(login))
        .route("/api/auth/refresh", post(refresh))
        .route("/oauth/token", post(oauth_token))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            rate_limit,
        ));
    Router::new()
        .merge(limited)
        .merge(super::dashboard_api::router(state.clone()))
        .merge(super::dashboard_pages::router(state.clone()))
        .route("/.well-known/jwks.json", get(jwks))
        .route(
            "/.well-known/openid-configuration",
            get(openid_configuration),
        )
        .route("/healthz", get(|| async { "ok" }))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

pub(crate) async fn rate_limit(State(s): State<Shared>, req: Request, next: Next) -> Response {
    let ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip());
    match s.limiter.check(ip) {
        Ok(()) => next.run(req).await,
        Err(wait) => ApiError::rate_limited(wait).into_response(),
    }
}

/// Parses a JSON body; unknown or missing fields are named.
pub(crate) fn parse<T: DeserializeOwned>(
    body: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    let body = body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                r.status(),
                "body_too_large",
                format!("the body is over {MAX_BODY_BYTES} bytes"),
            )
        } else {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", r.body_text())
        }
    })?;
    serde_json::from_slice(&body).map_err(|e| {
        let text = e.to_string();
        let field = ["unknown field `", "missing field `"]
            .iter()
            .find_map(|p| text.split(p).nth(1).and_then(|rest| rest.split('`').next()))
            .map(str::to_owned);
        let mut err = match &field {
            Some(f) => ApiError::field(f.clone(), text.clone()),
            None => ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", text.clone()),
        };
        if field.is_none() && e.is_data() {
            err = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", text);
        }
        err
    })
}

/// Client credentials from the body or HTTP Basic.
fn credentials(
    headers: &HeaderMap,
    id: Option<String>,
    secret: Option<String>,
) -> Result<(String, String), ApiError> {
    if let (Some(id), Some(secret)) = (id, secret) {
        return Ok((id, secret));
    }
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split_once(' ')
                .filter(|(s, _)| s.eq_ignore_ascii_case("basic"))
                .map(|(_, b)| b.trim())
        })
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok());
    match basic.as_deref().and_then(|s| s.split_once(':')) {
        Some((id, secret)) => Ok((id.to_owned(), secret.to_owned())),
        None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "send client_id and client_secret in the body or as HTTP Basic credentials",
        )),
    }
}

/// Checks client credentials: argon2 either way, so a missing client and a wrong
/// secret take the same time and get the same answer.
async fn authenticate(s: &AppState, id: &str, secret: &str) -> Result<(), ApiError> {
    let stored = s.db.client_secret_hash(id).await?;
    if secrets::verify(secret.to_owned(), stored).await {
        Ok(())
    } else {
        Err(ApiError::bad_client())
    }
}

fn no_store(mut res: Response) -> Response {
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

pub(crate) fn user_json(u: &UserRow) -> Value {
    let updated = chrono::DateTime::from_timestamp_millis(u.updated_at).map(|t| t.to_rfc3339());
    json!({ "user_id": u.id, "email": u.email, "claims": u.claims, "updated_at": updated })
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

async fn set_claims(
    State(s): State<Shared>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let raw = body.as_ref().map(|b| b.clone()).ok();
    let req: SetClaims = parse(body)?;
    let (client, secret) = credentials(&headers, req.client_id.clone(), req.client_secret.clone())?;
    authenticate(&s, &client, &secret).await?;

    let idem_key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let request_hash = raw
        .map(|b| secrets::sha256_hex(&String::from_utf8_lossy(&b)))
        .unwrap_or_default();
    if let Some(key) = &idem_key
        && let Some((hash, status, body)) = s.db.idempotent(&client, key).await?
    {
        if hash != request_hash {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "this Idempotency-Key was used with a different request body",
            ));
        }
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
        let mut res = (status, body).into_response();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        res.headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
        return Ok(no_store(res));
    }

    let email = parse_email(&req.email)?;
    check_claims(&s.store.policy(), &req.claims)?;
    let password_hash = match req.password {
        Some(p) if p.chars().count() < 8 => {
            return Err(ApiError::field("password", "at least 8 characters"));
        }
        Some(p) => Some(secrets::hash(p).await),
        None => None,
    };
    let actor = format!("client:{client}");
    let user =
        s.db.save_claims(
            &email,
            &actor,
            |stored| merge(stored, &req.claims),
            password_hash,
        )
        .await?;
    tracing::info!(target: "tiergate::server", actor, user = %user.id, "claims set");
    let body = user_json(&user).to_string();
    if let Some(key) = &idem_key {
        s.db.remember(&client, key, &request_hash, 200, &body)
            .await?;
    }
    let mut res = (StatusCode::OK, body).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(no_store(res))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ByEmail {
    email: String,
}

/// The user a `?email=` query names, for an authenticated client.
async fn queried_user(
    s: &AppState,
    headers: &HeaderMap,
    q: Result<Query<ByEmail>, axum::extract::rejection::QueryRejection>,
) -> Result<UserRow, ApiError> {
    let (client, secret) = credentials(headers, None, None)?;
    authenticate(s, &client, &secret).await?;
    let Query(q) = q.map_err(|e| ApiError::field("email", e.body_text()))?;
    let email = parse_email(&q.email)?;
    s.db.user_by_email(&email)
        .await?
        .ok_or_else(|| not_found(&email))
}

async fn get_claims(
    State(s): State<Shared>,
    headers: HeaderMap,
    q: Result<Query<ByEmail>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let user = queried_user(&s, &headers, q).await?;
    Ok(no_store(Json(user_json(&user)).into_response()))
}

async fn audit(
    State(s): State<Shared>,
    headers: HeaderMap,
    q: Result<Query<ByEmail>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let user = queried_user(&s, &headers, q).await?;
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

/// Signs an access token for `sub` in the reference layout: `iss`, `aud`, `sub`,
/// then `extra` (the signer adds `iat`, `exp`, `jti`).
async fn mint(
    s: &AppState,
    sub: &str,
    extra: [(&str, Value); 2],
) -> Result<String, super::db::DbError> {
    let mut payload = Map::new();
    payload.insert("iss".into(), json!(s.issuer));
    payload.insert("aud".into(), json!(s.audience));
    payload.insert("sub".into(), json!(sub));
    for (k, v) in extra {
        payload.insert(k.into(), v);
    }
    s.signer.sign(payload).await
}

/// Mints an access token for a user from their stored claims.
async fn mint_for(s: &AppState, user: &UserRow) -> Result<String, ApiError> {
    let extra = [
        ("email", json!(user.email)),
        ("claims", Value::Object(user.claims.clone())),
    ];
    Ok(mint(s, &user.id, extra).await?)
}

fn token_response(s: &AppState, access: String, refresh: Option<String>) -> Response {
    let mut body = json!({ "access_token": access, "token_type": "Bearer", "expires_in": s.signer.ttl().as_secs() });
    if let Some(r) = refresh {
        body["refresh_token"] = json!(r);
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
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let req: TokenFor = parse(body)?;
    let (client, secret) = credentials(&headers, req.client_id, req.client_secret)?;
    authenticate(&s, &client, &secret).await?;
    let email = parse_email(&req.email)?;
    let user =
        s.db.user_by_email(&email)
            .await?
            .ok_or_else(|| not_found(&email))?;
    let access = mint_for(&s, &user).await?;
    Ok(token_response(&s, access, None))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    email: String,
    password: String,
}

async fn issue_refresh(s: &AppState, user_id: &str) -> Result<String, ApiError> {
    let token = secrets::random_secret();
    let expires = super::db::now_ms() + REFRESH_TTL_MS;
    s.db.insert_refresh(&secrets::sha256_hex(&token), user_id, expires)
        .await?;
    Ok(token)
}

async fn login(
    State(s): State<Shared>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let req: Login = parse(body)?;
    let user = match parse_email(&req.email) {
        Ok(email) => s.db.user_by_email(&email).await?,
        Err(_) => None,
    };
    let stored = user.as_ref().and_then(|u| u.password_hash.clone());
    let ok = secrets::verify(req.password, stored).await;
    let Some(user) = user.filter(|_| ok) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "the email or password is wrong",
        ));
    };
    let access = mint_for(&s, &user).await?;
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
    let invalid = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_refresh_token",
            "the refresh token is unknown, expired or already used",
        )
    };
    let user_id =
        s.db.use_refresh(&secrets::sha256_hex(&req.refresh_token))
            .await?
            .ok_or_else(invalid)?;
    let user = s.db.user_by_id(&user_id).await?.ok_or_else(invalid)?;
    // Minted from the store, so a plan change reaches the user at this refresh.
    let access = mint_for(&s, &user).await?;
    let refresh = issue_refresh(&s, &user.id).await?;
    Ok(token_response(&s, access, Some(refresh)))
}

#[derive(Deserialize)]
struct OAuthForm {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    #[allow(dead_code)]
    scope: Option<String>,
}

/// RFC 6749 §4.4: machine tokens, errors in the OAuth shape.
async fn oauth_token(
    State(s): State<Shared>,
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
    let Ok((client, secret)) = credentials(&headers, form.client_id, form.client_secret) else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication failed",
        );
    };
    if authenticate(&s, &client, &secret).await.is_err() {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication failed",
        );
    }
    // A machine token carries no subscription claims: `claims` is empty.
    match mint(
        &s,
        &client,
        [("client_id", json!(client)), ("claims", json!({}))],
    )
    .await
    {
        Ok(access) => token_response(&s, access, None),
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
    }))
}
