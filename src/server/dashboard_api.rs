//! `/api/dashboard/…`: the dashboard's actions as JSON, behind the admin session
//! cookie. The HTML pages use the same functions.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::dashboard_ops::{self as ops, Created, ListQuery, Page, admin, preview_time};
use super::problem::ApiError;
use super::session::same_site;
use super::state::{ClientAddr, Shared, parse, query_error, user_json};

/// The dashboard's JSON routes.
pub fn router() -> Router<Shared> {
    Router::new()
        .route("/api/dashboard/login", post(login))
        .route("/api/dashboard/logout", post(logout))
        .route("/api/dashboard/users", get(list).post(create))
        .route("/api/dashboard/users/{id}", get(detail))
        .route("/api/dashboard/users/{id}/claims", put(set_claims))
        .route("/api/dashboard/policy", get(policy))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    email: String,
    password: String,
}

async fn login(
    State(s): State<Shared>,
    addr: ClientAddr,
    method: Method,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    same_site(&method, &headers)?;
    let req: Login = parse(body)?;
    let email = ops::sign_in(&s, addr, &req.email, &req.password).await?;
    let cookie = s.sessions.sign_in(&s.db, &headers, &email).await?;
    let mut res = Json(json!({ "admin": email })).into_response();
    res.headers_mut().insert(header::SET_COOKIE, cookie);
    Ok(res)
}

async fn logout(
    State(s): State<Shared>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    same_site(&method, &headers)?;
    let cookie = s.sessions.sign_out(&s.db, &headers).await?;
    let mut res = StatusCode::NO_CONTENT.into_response();
    res.headers_mut().insert(header::SET_COOKIE, cookie);
    Ok(res)
}

async fn list(
    State(s): State<Shared>,
    method: Method,
    headers: HeaderMap,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Page>, ApiError> {
    admin(&s, &method, &headers).await?;
    let Query(q) = q.map_err(|e| query_error(&e))?;
    Ok(Json(ops::page(&s, &q).await?))
}

/// `?at=YYYY-MM-DD` of a user's page.
#[derive(Deserialize)]
pub struct AtQuery {
    /// Preview access on this day (`YYYY-MM-DD`, noon UTC) instead of now.
    pub at: Option<String>,
}

async fn detail(
    State(s): State<Shared>,
    method: Method,
    headers: HeaderMap,
    Path(id): Path<String>,
    q: Result<Query<AtQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    admin(&s, &method, &headers).await?;
    let Query(q) = q.map_err(|e| query_error(&e))?;
    let at = preview_time(q.at.as_deref())?;
    Ok(Json(ops::user_view(&s, &id, at).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetClaims {
    claims: Map<String, Value>,
}

async fn set_claims(
    State(s): State<Shared>,
    method: Method,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let admin = admin(&s, &method, &headers).await?;
    let req: SetClaims = parse(body)?;
    let user = ops::change_claims(&s, &admin, &id, &req.claims).await?;
    Ok(Json(user_json(&user)))
}

/// The running policy: its plan matrix, file, load and rejection status, users per
/// plan and the trials ending this week.
async fn policy(
    State(s): State<Shared>,
    method: Method,
    headers: HeaderMap,
) -> Result<Json<ops::PolicyOverview>, ApiError> {
    admin(&s, &method, &headers).await?;
    Ok(Json(ops::policy_overview(&s).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Create {
    email: String,
}

async fn create(
    State(s): State<Shared>,
    method: Method,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let admin = admin(&s, &method, &headers).await?;
    let req: Create = parse(body)?;
    match ops::create_user(&s, &admin, &req.email).await? {
        Created::New(user) => Ok((StatusCode::CREATED, Json(user_json(&user))).into_response()),
        Created::Existing(user) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "user_exists",
            format!("{} already exists", user.email),
        )),
    }
}
