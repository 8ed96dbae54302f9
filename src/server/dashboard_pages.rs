//! `/dashboard`: server-rendered pages (maud, no JavaScript build step) over the
//! same functions as `/api/dashboard`: sign in, find a user, edit their claims with
//! the policy's plans and roles as the choices, see what they can access (now or on
//! another day), read their audit log, create a user.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::api::AppState;
use super::dashboard_api::{self, ListQuery, preview_time};
use super::db::UserRow;
use super::problem::ApiError;
use crate::{Claims, Limit, Trial};

type Shared = Arc<AppState>;

/// The pages' routes.
pub fn router(state: Shared) -> Router<Shared> {
    let login = Router::new()
        .route("/dashboard/login", get(login_page).post(login))
        .layer(axum::middleware::from_fn_with_state(
            state,
            super::api::rate_limit,
        ));
    Router::new()
        .merge(login)
        .route(
            "/dashboard",
            get(|| async { Redirect::to("/dashboard/users") }),
        )
        .route("/dashboard/logout", post(logout))
        .route("/dashboard/users", get(users).post(create_user))
        .route("/dashboard/users/{id}", get(user_page).post(save_user))
}

const STYLE: &str = "
body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1d2430;background:#f6f7f9}
header{display:flex;justify-content:space-between;align-items:center;padding:.6rem 1rem;background:#1d2430;color:#fff}
header a{color:#fff}header button{color:#fff;background:transparent;border:1px solid #8b94a3;border-radius:4px}main{max-width:64rem;margin:0 auto;padding:1rem}
table{border-collapse:collapse;width:100%;background:#fff}td,th{padding:.4rem .5rem;border-bottom:1px solid #e3e6ea;text-align:left}
.scroll{overflow-x:auto}.card{background:#fff;border:1px solid #e3e6ea;border-radius:6px;padding:1rem;margin:0 0 1rem}
.grid{display:grid;gap:1rem;grid-template-columns:repeat(auto-fit,minmax(18rem,1fr))}
label{display:block;margin:.5rem 0 .2rem;font-weight:600}input,select{font:inherit;padding:.35rem;width:100%;box-sizing:border-box}
button{font:inherit;padding:.4rem .9rem;cursor:pointer}.error{color:#b00020;margin:.2rem 0}.muted{color:#5b6472}
.pill{display:inline-block;padding:0 .4rem;border-radius:4px;background:#e8edf5}.row{display:flex;gap:.5rem}";

fn layout(title: &str, admin: Option<&str>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · tiergate" }
                style { (maud::PreEscaped(STYLE)) }
            }
            body {
                header {
                    a href="/dashboard/users" { strong { "tiergate" } }
                    @if let Some(a) = admin {
                        form method="post" action="/dashboard/logout" class="row" {
                            span class="muted" { (a) }
                            button id="sign-out" type="submit" { "Sign out" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// The admin, or a redirect to the sign-in page.
async fn signed_in(s: &AppState, method: &Method, headers: &HeaderMap) -> Result<String, Response> {
    match dashboard_api::admin(s, method, headers).await {
        Ok(a) => Ok(a),
        Err(e) if e.status() == StatusCode::UNAUTHORIZED => {
            Err(Redirect::to("/dashboard/login").into_response())
        }
        Err(e) => Err(e.into_response()),
    }
}

fn login_form(error: Option<&str>) -> Markup {
    layout(
        "Sign in",
        None,
        html! {
            div class="card" style="max-width:24rem;margin:2rem auto" {
                h1 { "Sign in" }
                @if let Some(e) = error { p class="error" id="login-error" { (e) } }
                form method="post" action="/dashboard/login" {
                    label for="email" { "Email" }
                    input id="email" name="email" type="email" autocomplete="username" required;
                    label for="password" { "Password" }
                    input id="password" name="password" type="password" autocomplete="current-password" required;
                    p { button id="sign-in" type="submit" { "Sign in" } }
                }
            }
        },
    )
}

async fn login_page() -> Markup {
    login_form(None)
}

#[derive(Deserialize)]
struct LoginForm {
    email: String,
    password: String,
}

async fn login(
    State(s): State<Shared>,
    method: Method,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Result<Response, ApiError> {
    super::session::same_site(&method, &headers)?;
    match dashboard_api::sign_in(&s, &f.email, &f.password).await {
        Ok(email) => {
            let cookie = s.sessions.sign_in(&s.db, &headers, &email).await?;
            let mut res = Redirect::to("/dashboard/users").into_response();
            res.headers_mut().insert(header::SET_COOKIE, cookie);
            Ok(res)
        }
        Err(e) if e.status() == StatusCode::UNAUTHORIZED => Ok((
            StatusCode::UNAUTHORIZED,
            login_form(Some("The email or password is wrong.")),
        )
            .into_response()),
        Err(e) => Err(e),
    }
}

async fn logout(
    State(s): State<Shared>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    super::session::same_site(&method, &headers)?;
    let cookie = s.sessions.sign_out(&s.db, &headers).await?;
    let mut res = Redirect::to("/dashboard/login").into_response();
    res.headers_mut().insert(header::SET_COOKIE, cookie);
    Ok(res)
}

/// "active, 12 days left" / "expired on 2026-04-15" / "none".
fn trial_text(t: Trial) -> String {
    match t {
        Trial::None => "none".into(),
        Trial::Active { days_left, .. } => format!(
            "active, {days_left} day{} left",
            if days_left == 1 { "" } else { "s" }
        ),
        Trial::Expired { ended } => format!(
            "expired on {}",
            (ended - chrono::Duration::seconds(1)).format("%Y-%m-%d")
        ),
    }
}

async fn users(
    State(s): State<Shared>,
    method: Method,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Response {
    let admin = match signed_in(&s, &method, &headers).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let page = match dashboard_api::page(&s, &q).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let (current, pages) = (page.page, page.pages);
    let link = |p: i64| format!("/dashboard/users?search={}&page={p}", urlencode(&q.search));
    let now = Utc::now();
    layout("Users", Some(&admin), html! {
        h1 { "Users" }
        form method="get" action="/dashboard/users" class="row card" {
            input id="search" name="search" type="search" placeholder="Search by email" value=(q.search);
            button id="search-button" type="submit" { "Search" }
        }
        div class="scroll card" {
            table id="users" {
                thead { tr { th { "Email" } th { "Plan" } th { "Role" } th { "Trial" } th { "Seats" } } }
                tbody {
                    @for u in &page.users {
                        tr {
                            td { a href=(format!("/dashboard/users/{}", u.id)) { (u.email) } }
                            td { (u.plan) }
                            td { (u.roles.join(", ")) }
                            td { (trial_text(u.trial)) }
                            td { (u.seats.map(|n| n.to_string()).unwrap_or_default()) }
                        }
                    }
                }
            }
            p class="muted" {
                (page.total) " users · page " (current) " of " (pages) " "
                @if current > 1 { a href=(link(current - 1)) { "← previous" } " " }
                @if current < pages { a href=(link(current + 1)) { "next →" } }
            }
        }
        form method="post" action="/dashboard/users" class="row card" {
            input id="new-email" name="email" type="email" placeholder="new.user@example.com" required;
            button id="create-user" type="submit" { "Create user" }
        }
        p class="muted" { "As of " (now.format("%Y-%m-%d %H:%M UTC")) }
    })
    .into_response()
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[derive(Deserialize)]
struct CreateForm {
    email: String,
}

async fn create_user(
    State(s): State<Shared>,
    method: Method,
    headers: HeaderMap,
    Form(f): Form<CreateForm>,
) -> Response {
    let admin = match signed_in(&s, &method, &headers).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let email = match super::input::email(&f.email) {
        Ok(e) => e,
        Err(e) => return e.into_response(),
    };
    let result = match s.db.user_by_email(&email).await {
        Ok(Some(u)) => Ok(u),
        Ok(None) => {
            s.db.save_claims(&email, &format!("admin:{admin}"), Map::clone, None)
                .await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(u) => Redirect::to(&format!("/dashboard/users/{}", u.id)).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// What the edit form shows: the stored claims, or (after a failed save) what was typed.
struct Fields {
    plan: String,
    role: String,
    trial_ends: String,
    seats: String,
    custom: Vec<(String, String)>,
}

impl Fields {
    fn of(claims: &Map<String, Value>) -> Fields {
        let text = |k: &str| match claims.get(k) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        };
        let role = match claims.get("role").or_else(|| claims.get("roles")) {
            Some(Value::Array(a)) => a
                .first()
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            Some(Value::String(s)) => s.clone(),
            _ => String::new(),
        };
        let trial_ends = Claims::from_map(claims)
            .trial_ends()
            .map(|t| {
                (t - chrono::Duration::seconds(1))
                    .format("%Y-%m-%d")
                    .to_string()
            })
            .unwrap_or_default();
        let custom = claims
            .iter()
            .filter(|(k, _)| {
                !matches!(
                    k.as_str(),
                    "plan" | "role" | "roles" | "trial_ends" | "seats"
                )
            })
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| v.to_string()),
                )
            })
            .collect();
        Fields {
            plan: text("plan"),
            role,
            trial_ends,
            seats: text("seats"),
            custom,
        }
    }
}

/// Everything the user page shows.
struct UserView<'a> {
    admin: &'a str,
    user: &'a UserRow,
    /// The form's values: stored, or as typed when a save failed.
    fields: &'a Fields,
    /// The field a failed save names, and why.
    error: Option<(&'a str, &'a str)>,
    /// The instant the access panel is computed for.
    at: DateTime<Utc>,
    /// The preview date as given.
    preview: Option<&'a str>,
    audit: &'a [super::db::AuditRow],
    saved: bool,
}

fn user_html(s: &AppState, v: &UserView<'_>) -> Markup {
    let UserView {
        admin,
        user,
        fields,
        error,
        at,
        preview,
        audit,
        saved,
    } = *v;
    let policy = s.store.policy();
    let ent = policy.entitlements(&Claims::from_map(&user.claims), at);
    let summary = ent.summary();
    let err_for = |f: &str| {
        error
            .filter(|(field, _)| *field == f)
            .map(|(_, m)| m.to_owned())
    };
    let mut custom = fields.custom.clone();
    custom.push((String::new(), String::new()));
    custom.push((String::new(), String::new()));
    layout(
        &user.email,
        Some(admin),
        html! {
            p { a href="/dashboard/users" { "← Users" } }
            h1 id="user-email" { (user.email) }
            @if saved { p id="saved" class="pill" { "Saved." } }
            div class="grid" {
                form method="post" action=(format!("/dashboard/users/{}", user.id)) class="card" id="claims-form" {
                    h2 { "Claims" }
                    label for="plan" { "Plan" }
                    select id="plan" name="plan" {
                        option value="" selected[fields.plan.is_empty()] { "(none: " (policy.default_plan()) ")" }
                        @for p in policy.plans() { option value=(p) selected[fields.plan == p] { (p) } }
                    }
                    @if let Some(e) = err_for("claims.plan") { p class="error" id="plan-error" { (e) } }
                    label for="role" { "Role" }
                    select id="role" name="role" {
                        option value="" selected[fields.role.is_empty()] { "(none)" }
                        @for r in policy.roles() { option value=(r) selected[fields.role == r] { (r) } }
                    }
                    @if let Some(e) = err_for("claims.role") { p class="error" id="role-error" { (e) } }
                    label for="trial_ends" { "Trial ends (last day, UTC)" }
                    input id="trial_ends" name="trial_ends" type="date" value=(fields.trial_ends);
                    p class="muted" id="trial-state" { (trial_text(ent.trial())) }
                    @if let Some(e) = err_for("claims.trial_ends") { p class="error" id="trial_ends-error" { (e) } }
                    label for="seats" { "Seats" }
                    input id="seats" name="seats" type="text" inputmode="numeric" value=(fields.seats);
                    @if let Some(e) = err_for("claims.seats") { p class="error" id="seats-error" { (e) } }
                    label { "Custom claims" }
                    @for (k, v) in &custom {
                        div class="row" {
                            input name="custom_key" placeholder="key" value=(k);
                            input name="custom_value" placeholder="value" value=(v);
                        }
                    }
                    @if let Some((f, e)) = error.filter(|(f, _)| !f.starts_with("claims.plan") && !["claims.role", "claims.trial_ends", "claims.seats"].contains(f)) {
                        p class="error" { (f) ": " (e) }
                    }
                    p { button id="save" type="submit" { "Save" } }
                }
                div class="card" id="access" {
                    h2 { "What this user can access" }
                    form method="get" class="row" {
                        input id="at" name="at" type="date" value=(preview.unwrap_or_default());
                        button id="preview" type="submit" { "Preview" }
                    }
                    p class="muted" { "As of " (at.format("%Y-%m-%d %H:%M UTC")) }
                    p { "Plan " strong id="effective-plan" { (summary.plan) } " (" (format!("{:?}", summary.plan_source).to_lowercase()) ")" }
                    p { "Trial: " span id="access-trial" { (trial_text(summary.trial)) } }
                    p { "Features: " span id="features" { (summary.features.join(", ")) } }
                    table {
                        @for (name, limit) in &summary.limits {
                            tr { td { (name) } td { (match limit { Limit::Unlimited => "unlimited".to_owned(), Limit::Count(n) => n.to_string() }) } }
                        }
                    }
                }
            }
            div class="card scroll" {
                h2 { "Audit log" }
                table id="audit" {
                    thead { tr { th { "When" } th { "Who" } th { "Before" } th { "After" } } }
                    tbody {
                        @for a in audit {
                            tr {
                                td { (DateTime::from_timestamp_millis(a.at).map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string()).unwrap_or_default()) }
                                td { (a.actor) }
                                td { code { (a.before) } }
                                td { code { (a.after) } }
                            }
                        }
                    }
                }
            }
        },
    )
}

#[derive(Deserialize)]
struct UserQuery {
    at: Option<String>,
    saved: Option<String>,
}

async fn user_page(
    State(s): State<Shared>,
    method: Method,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<UserQuery>,
) -> Response {
    let admin = match signed_in(&s, &method, &headers).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let at = match preview_time(q.at.as_deref()) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let user = match s.db.user_by_id(&id).await {
        Ok(Some(u)) => u,
        Ok(None) => return (StatusCode::NOT_FOUND, "no such user").into_response(),
        Err(e) => return ApiError::from(e).into_response(),
    };
    let audit = match s.db.audit(&user.id).await {
        Ok(a) => a,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let fields = Fields::of(&user.claims);
    let view = UserView {
        admin: &admin,
        user: &user,
        fields: &fields,
        error: None,
        at,
        preview: q.at.as_deref(),
        audit: &audit,
        saved: q.saved.is_some(),
    };
    user_html(&s, &view).into_response()
}

/// The form's fields as a claims change: empty fields remove the claim, custom rows
/// replace the custom claims (a value that is valid JSON is kept as JSON).
fn change_from(
    form: &[(String, String)],
    stored: &Map<String, Value>,
) -> (Map<String, Value>, Fields) {
    let get = |k: &str| {
        form.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default()
    };
    let keys: Vec<&String> = form
        .iter()
        .filter(|(n, _)| n == "custom_key")
        .map(|(_, v)| v)
        .collect();
    let values: Vec<&String> = form
        .iter()
        .filter(|(n, _)| n == "custom_value")
        .map(|(_, v)| v)
        .collect();
    let fields = Fields {
        plan: get("plan"),
        role: get("role"),
        trial_ends: get("trial_ends"),
        seats: get("seats"),
        custom: keys
            .iter()
            .zip(&values)
            .filter(|(k, _)| !k.trim().is_empty())
            .map(|(k, v)| (k.trim().to_owned(), v.to_string()))
            .collect(),
    };
    let mut change = Map::new();
    let opt = |s: &str| {
        if s.is_empty() {
            Value::Null
        } else {
            Value::String(s.to_owned())
        }
    };
    change.insert("plan".into(), opt(&fields.plan));
    change.insert("role".into(), opt(&fields.role));
    change.insert("trial_ends".into(), opt(&fields.trial_ends));
    change.insert("seats".into(), opt(&fields.seats));
    for k in stored.keys().filter(|k| {
        !matches!(
            k.as_str(),
            "plan" | "role" | "roles" | "trial_ends" | "seats"
        )
    }) {
        change.insert(k.clone(), Value::Null);
    }
    for (k, v) in &fields.custom {
        let value = serde_json::from_str::<Value>(v).unwrap_or_else(|_| Value::String(v.clone()));
        change.insert(k.clone(), value);
    }
    (change, fields)
}

async fn save_user(
    State(s): State<Shared>,
    method: Method,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let admin = match signed_in(&s, &method, &headers).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let user = match s.db.user_by_id(&id).await {
        Ok(Some(u)) => u,
        Ok(None) => return (StatusCode::NOT_FOUND, "no such user").into_response(),
        Err(e) => return ApiError::from(e).into_response(),
    };
    let (change, fields) = change_from(&form, &user.claims);
    match dashboard_api::change_claims(&s, &admin, &id, &change).await {
        Ok(_) => {
            let mut res = Redirect::to(&format!("/dashboard/users/{id}?saved=1")).into_response();
            res.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            res
        }
        Err(e) if e.status() == StatusCode::UNPROCESSABLE_ENTITY => {
            let body = e.body();
            let field = body["field"].as_str().unwrap_or_default().to_owned();
            let message = body["detail"].as_str().unwrap_or_default().to_owned();
            let audit = s.db.audit(&user.id).await.unwrap_or_default();
            let view = UserView {
                admin: &admin,
                user: &user,
                fields: &fields,
                error: Some((&field, &message)),
                at: Utc::now(),
                preview: None,
                audit: &audit,
                saved: false,
            };
            let page = user_html(&s, &view);
            (StatusCode::UNPROCESSABLE_ENTITY, page).into_response()
        }
        Err(e) => e.into_response(),
    }
}
