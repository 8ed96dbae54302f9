//! `/api/dashboard/…`: the dashboard's actions as JSON, behind the admin session
//! cookie. The HTML pages use the same functions.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::db::{ClaimsWrite, ClaimsWriteOptions, UserRow};
use super::input::{check_claims, email as parse_email, merge};
use super::problem::ApiError;
use super::session::same_site;
use super::state::{AppState, ClientAddr, Shared, parse, query_error, unreadable, user_json};
use crate::Claims;

/// Users per page in the list.
pub const PAGE_SIZE: i64 = 20;

/// The highest page number the list takes (20 users a page: 20 million users).
pub const MAX_PAGE: i64 = 1_000_000;

/// The dashboard's JSON routes.
pub fn router() -> Router<Shared> {
    Router::new()
        .route("/api/dashboard/login", post(login))
        .route("/api/dashboard/logout", post(logout))
        .route("/api/dashboard/users", get(list).post(create))
        .route("/api/dashboard/users/{id}", get(detail))
        .route("/api/dashboard/users/{id}/claims", put(set_claims))
}

/// The signed-in admin, or 401; refuses cross-site state changes first.
pub async fn admin(s: &AppState, method: &Method, headers: &HeaderMap) -> Result<String, ApiError> {
    same_site(method, headers)?;
    s.sessions.admin(&s.db, headers).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "not_signed_in",
            "sign in to the dashboard first",
        )
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    email: String,
    password: String,
}

/// Checks an admin's password; the same answer and work whether or not they exist.
/// Spends the account's and the address's sign-in budgets first (429 once spent).
pub async fn sign_in(
    s: &AppState,
    addr: ClientAddr,
    email: &str,
    password: &str,
) -> Result<String, ApiError> {
    // Admins are created with the same email rules as users; an address those rules
    // refuse has no account, and is checked against a dummy hash like any other.
    let checked = parse_email(email).ok();
    let email = checked
        .clone()
        .unwrap_or_else(|| email.trim().to_lowercase());
    s.limits
        .sign_in(&email, addr.0)
        .map_err(ApiError::rate_limited)?;
    let stored = match &checked {
        Some(e) => s.db.admin_password_hash(e).await?,
        None => None,
    };
    if !s.hasher.verify(password, stored.as_deref()).await? {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "the email or password is wrong",
        ));
    }
    Ok(email)
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
    let email = sign_in(&s, addr, &req.email, &req.password).await?;
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

/// `?search=…&page=…` of the user list.
#[derive(Deserialize, Default)]
pub struct ListQuery {
    /// Part of an email address (case-insensitive).
    #[serde(default)]
    pub search: String,
    /// 1-based page number.
    #[serde(default)]
    pub page: Option<i64>,
}

/// One row of the user list: what an admin scans for.
#[derive(Debug, serde::Serialize)]
pub struct Row {
    /// The user's id.
    pub id: String,
    /// Their email.
    pub email: String,
    /// The effective plan now (a trial may lift it).
    pub plan: String,
    /// The `plan` claim as stored.
    pub claimed_plan: Option<String>,
    /// The stored claims text, when it is not a JSON object (shown, never replaced).
    pub unreadable: Option<String>,
    /// Their roles.
    pub roles: Vec<String>,
    /// Their trial now.
    pub trial: crate::Trial,
    /// Their seats.
    pub seats: Option<u64>,
}

/// A page of the user list.
#[derive(Debug, serde::Serialize)]
pub struct Page {
    /// The users on this page, by email.
    pub users: Vec<Row>,
    /// This page (1-based).
    pub page: i64,
    /// How many pages.
    pub pages: i64,
    /// How many users match.
    pub total: i64,
    /// The search.
    pub search: String,
}

fn row(s: &AppState, u: &UserRow, now: DateTime<Utc>) -> Row {
    let claims = Claims::from_map(&u.claims);
    let ent = s.store.policy().entitlements(&claims, now);
    Row {
        id: u.id.clone(),
        email: u.email.clone(),
        plan: ent.plan().to_owned(),
        claimed_plan: claims.plan().map(str::to_owned),
        unreadable: u.unreadable.clone(),
        roles: claims.roles().map(str::to_owned).collect(),
        trial: ent.trial(),
        seats: claims.seats(),
    }
}

/// A page of users matching the search.
pub async fn page(s: &AppState, q: &ListQuery) -> Result<Page, ApiError> {
    let page = q.page.unwrap_or(1).clamp(1, MAX_PAGE);
    let (users, total) =
        s.db.users(
            q.search.trim(),
            PAGE_SIZE,
            page.saturating_sub(1).saturating_mul(PAGE_SIZE),
        )
        .await?;
    let now = Utc::now();
    Ok(Page {
        users: users.iter().map(|u| row(s, u, now)).collect(),
        page,
        pages: (total.saturating_add(PAGE_SIZE - 1) / PAGE_SIZE).clamp(1, MAX_PAGE),
        total,
        search: q.search.clone(),
    })
}

async fn list(
    State(s): State<Shared>,
    method: Method,
    headers: HeaderMap,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Page>, ApiError> {
    admin(&s, &method, &headers).await?;
    let Query(q) = q.map_err(|e| query_error(&e))?;
    Ok(Json(page(&s, &q).await?))
}

/// `?at=YYYY-MM-DD` of a user's page.
#[derive(Deserialize)]
pub struct AtQuery {
    /// Preview access on this day (`YYYY-MM-DD`, noon UTC) instead of now.
    pub at: Option<String>,
}

/// The instant a preview date means.
pub fn preview_time(at: Option<&str>) -> Result<DateTime<Utc>, ApiError> {
    match at.filter(|a| !a.is_empty()) {
        None => Ok(Utc::now()),
        Some(a) => NaiveDate::parse_from_str(a, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(12, 0, 0))
            .map(|t| t.and_utc())
            .ok_or_else(|| ApiError::field("at", "a date like 2026-04-16")),
    }
}

/// A user's claims, their access at `at`, and their audit log.
pub async fn user_view(s: &AppState, id: &str, at: DateTime<Utc>) -> Result<Value, ApiError> {
    let user =
        s.db.user_by_id(id).await?.ok_or_else(|| {
            ApiError::new(StatusCode::NOT_FOUND, "user_not_found", "no such user")
        })?;
    let ent = s
        .store
        .policy()
        .entitlements(&Claims::from_map(&user.claims), at);
    Ok(json!({
        "user": user_json(&user),
        "at": at.to_rfc3339(),
        "entitlements": ent.summary(),
        "audit": s.db.audit(&user.id).await?,
    }))
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
    Ok(Json(user_view(&s, &id, at).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetClaims {
    claims: Map<String, Value>,
}

/// Applies a claims change as `admin`, with the claims API's validation and merge,
/// atomically (see [`super::db::Db::write_claims`]).
pub async fn change_claims(
    s: &AppState,
    admin: &str,
    id: &str,
    change: &Map<String, Value>,
) -> Result<UserRow, ApiError> {
    let user =
        s.db.user_by_id(id).await?.ok_or_else(|| {
            ApiError::new(StatusCode::NOT_FOUND, "user_not_found", "no such user")
        })?;
    check_claims(&s.store.policy(), change)?;
    let actor = format!("admin:{admin}");
    let options = ClaimsWriteOptions {
        email: &user.email,
        actor: &actor,
        password_hash: None,
        idempotency: None,
    };
    let written =
        s.db.write_claims(
            options,
            |stored| {
                let after = merge(&stored.claims, change);
                super::api::fits_in_a_token(s, stored, &after)?;
                Ok::<_, ApiError>(after)
            },
            |_| String::new(),
        )
        .await?;
    match written {
        ClaimsWrite::Applied(user) => Ok(user),
        ClaimsWrite::Refused(e) => Err(e),
        ClaimsWrite::Unreadable(_) | ClaimsWrite::Replayed(_) => Err(unreadable(&user.email)),
    }
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
    let user = change_claims(&s, &admin, &id, &req.claims).await?;
    Ok(Json(user_json(&user)))
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
    let email = parse_email(&req.email)?;
    tracing::info!(target: "tiergate::server", admin, email, "user created");
    let Some(user) = s.db.create_user(&email).await? else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "user_exists",
            format!("{email} already exists"),
        ));
    };
    Ok((StatusCode::CREATED, Json(user_json(&user))).into_response())
}
