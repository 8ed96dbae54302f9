//! `/dashboard`: server-rendered pages (maud, no JavaScript build step) over the
//! same functions as `/api/dashboard`: sign in, find a user, edit their claims with
//! the policy's plans and roles as the choices, see what they can access (now or on
//! another day), read their audit log, create a user.

use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::claims_form::{self, Fields};
use super::dashboard_layout::{layout, login_form, style, trial_text, urlencode};
use super::dashboard_ops::{self as ops, Created, ListQuery, preview_time};
use super::db::UserRow;
use super::problem::ApiError;
use super::state::{AppState, ClientAddr, Shared, query_error};
use crate::{Claims, Limit};

/// The pages' routes.
pub fn router() -> Router<Shared> {
    Router::new()
        .route("/dashboard/login", get(login_page).post(login))
        .route(
            "/dashboard",
            get(|| async { Redirect::to("/dashboard/users") }),
        )
        .route("/dashboard/style.css", get(style))
        .route("/dashboard/logout", post(logout))
        .route("/dashboard/users", get(users).post(create_user))
        .route("/dashboard/users/{id}", get(user_page).post(save_user))
        .route("/dashboard/policy", get(policy_page))
}

/// The admin, or a redirect to the sign-in page.
async fn signed_in(s: &AppState, method: &Method, headers: &HeaderMap) -> Result<String, Response> {
    match ops::admin(s, method, headers).await {
        Ok(a) => Ok(a),
        Err(e) if e.status() == StatusCode::UNAUTHORIZED => {
            Err(Redirect::to("/dashboard/login").into_response())
        }
        Err(e) => Err(e.into_response()),
    }
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
    addr: ClientAddr,
    method: Method,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Result<Response, ApiError> {
    super::session::same_site(&method, &headers)?;
    match ops::sign_in(&s, addr, &f.email, &f.password).await {
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
        Err(e)
            if matches!(
                e.status(),
                StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
            ) =>
        {
            let message = e
                .body()
                .get("detail")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let mut res = e.into_response();
            *res.body_mut() = axum::body::Body::new(login_form(Some(&message)).into_string());
            res.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            Ok(res)
        }
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

async fn users(
    State(s): State<Shared>,
    method: Method,
    headers: HeaderMap,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let admin = match signed_in(&s, &method, &headers).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let q = match q {
        Ok(Query(q)) => q,
        Err(e) => return query_error(&e).into_response(),
    };
    let page = match ops::page(&s, &q).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let (current, pages) = (page.page, page.pages);
    let (plan, trial) = (
        q.plan.clone().unwrap_or_default(),
        q.trial.clone().unwrap_or_default(),
    );
    let link = |p: i64| {
        format!(
            "/dashboard/users?search={}&plan={}&trial={}&page={p}",
            urlencode(&q.search),
            urlencode(&plan),
            urlencode(&trial)
        )
    };
    let plans: Vec<String> = s.store.policy().plans().map(str::to_owned).collect();
    let now = Utc::now();
    layout("Users", Some(&admin), html! {
        h1 { "Users" }
        form method="get" action="/dashboard/users" class="row card" {
            input id="search" name="search" type="search" placeholder="Search by email" value=(q.search);
            select id="plan-filter" name="plan" aria-label="Plan" {
                option value="" { "any plan" }
                @for p in &plans {
                    option value=(p) selected[*p == plan] { (p) }
                }
            }
            select id="trial-filter" name="trial" aria-label="Trial" {
                option value="" { "any trial" }
                @for (v, label) in [("active", "trial active"), ("expired", "trial expired"), ("none", "no trial")] {
                    option value=(v) selected[v == trial] { (label) }
                }
            }
            button id="search-button" type="submit" { "Search" }
        }
        div class="scroll card" {
            table id="users" {
                thead { tr { th { "Email" } th { "Plan" } th { "Role" } th { "Trial" } th { "Seats" } } }
                tbody {
                    @for u in &page.users {
                        tr {
                            td { a href=(format!("/dashboard/users/{}", u.id)) { (u.email) } }
                            td {
                                @if u.unreadable.is_some() { span class="unreadable" { "unreadable claims" } }
                                @else { (u.plan) }
                            }
                            td { (u.roles.join(", ")) }
                            td { (trial_text(u.trial)) }
                            td { (u.seats.map(|n| n.to_string()).unwrap_or_default()) }
                        }
                    }
                }
            }
            p class="muted" {
                (page.total) " users · page " (current) " of " (pages) " "
                @if current > 1 { a href=(link(current.saturating_sub(1))) { "← previous" } " " }
                @if current < pages { a href=(link(current.saturating_add(1))) { "next →" } }
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
    match ops::create_user(&s, &admin, &f.email).await {
        Ok(Created::New(u) | Created::Existing(u)) => {
            Redirect::to(&format!("/dashboard/users/{}", u.id)).into_response()
        }
        Err(e) => e.into_response(),
    }
}

async fn policy_page(State(s): State<Shared>, method: Method, headers: HeaderMap) -> Response {
    let admin = match signed_in(&s, &method, &headers).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let o = match ops::policy_overview(&s).await {
        Ok(o) => o,
        Err(e) => return e.into_response(),
    };
    let m = &o.matrix;
    layout("Policy", Some(&admin), html! {
        h1 { "Policy" }
        div class="card" id="policy-status" {
            p {
                strong { (m.policy) } " · revision " code id="revision" { (m.revision) }
                " · loaded " (o.loaded_at)
            }
            @if let Some(f) = &o.file { p class="muted" { "File: " code { (f) } } }
            p class="muted" { (o.reloads) " reloads applied, " (o.rejections) " rejected since the server started" }
            @if let Some(r) = &o.last_rejected {
                div id="last-rejected" {
                    p class="error" {
                        "The last edit was rejected on " (r.at)
                        @if let Some(l) = r.line { " (line " (l) ")" }
                        "; the policy above is still running:"
                    }
                    pre { (r.message) }
                }
            }
        }
        div class="grid" {
            div class="card" {
                h2 { "Users per plan" }
                table id="users-per-plan" {
                    thead { tr { th { "Plan" } th { "Users now" } } }
                    tbody {
                        @for (plan, n) in &o.users_per_plan {
                            tr {
                                td { a href=(format!("/dashboard/users?plan={}", urlencode(plan))) { (plan) } }
                                td { (n) }
                            }
                        }
                    }
                }
            }
            div class="card" {
                h2 { "Trials ending in the next 7 days" }
                @if o.trials_ending.is_empty() { p class="muted" id="trials-ending" { "None." } }
                @else {
                    ul id="trials-ending" {
                        @for t in &o.trials_ending {
                            li {
                                a href=(format!("/dashboard/users/{}", t.id)) { (t.email) }
                                " · " (t.days_left) " day" @if t.days_left != 1 { "s" } " left"
                            }
                        }
                    }
                }
            }
        }
        div class="card scroll" id="matrix" {
            h2 { "Plans side by side" }
            (maud::PreEscaped(m.to_html()))
        }
    })
    .into_response()
}

/// Everything the user page shows.
struct UserView<'a> {
    admin: &'a str,
    user: &'a UserRow,
    /// The claims the form was rendered from (the stored ones, or after a failed
    /// save the page's own base): a save changes only what differs from them.
    base: &'a Map<String, Value>,
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
        base,
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
    for _ in 0..2 {
        custom.push(claims_form::Custom {
            key: String::new(),
            value: String::new(),
            json: false,
        });
    }
    let plans: Vec<&str> = policy.plans().collect();
    let mut roles: Vec<&str> = policy.roles().collect();
    for r in &fields.roles {
        if !roles.contains(&r.as_str()) {
            roles.push(r); // stored but not in the policy: shown, so a save keeps it
        }
    }
    let date_input = fields.trial_ends.is_empty()
        || chrono::NaiveDate::parse_from_str(&fields.trial_ends, "%Y-%m-%d").is_ok();
    layout(
        &user.email,
        Some(admin),
        html! {
            p { a href="/dashboard/users" { "← Users" } }
            h1 id="user-email" { (user.email) }
            @if saved { p id="saved" class="pill" { "Saved." } }
            @if let Some(raw) = &user.unreadable {
                div class="card" id="unreadable" {
                    p class="unreadable" { "This user's stored claims are unreadable (not a JSON object); nothing can be saved on top of them until the row is fixed in the database. As stored:" }
                    code { (raw) }
                }
            }
            div class="grid" {
                form method="post" action=(format!("/dashboard/users/{}", user.id)) class="card" id="claims-form" {
                    h2 { "Claims" }
                    input type="hidden" name="base" value=(Value::Object(base.clone()).to_string());
                    label for="plan" { "Plan" }
                    select id="plan" name="plan" {
                        option value="" selected[fields.plan.is_empty()] { "(none: " (policy.default_plan()) ")" }
                        @for p in &plans { option value=(p) selected[fields.plan == *p] { (p) } }
                        @if !fields.plan.is_empty() && !plans.contains(&fields.plan.as_str()) {
                            option value=(fields.plan) selected { (fields.plan) " (not in the policy)" }
                        }
                    }
                    @if let Some(e) = err_for("claims.plan") { p class="error" id="plan-error" { (e) } }
                    fieldset id="roles" {
                        legend { "Roles" }
                        @for r in &roles {
                            label class="check" {
                                input type="checkbox" name="roles" id=(format!("role-{r}")) value=(r) checked[fields.roles.iter().any(|x| x == r)];
                                (r)
                            }
                        }
                    }
                    @if let Some(e) = err_for("claims.role").or_else(|| err_for("claims.roles")) { p class="error" id="role-error" { (e) } }
                    label for="trial_ends" { "Trial ends (last day, UTC)" }
                    input id="trial_ends" name="trial_ends" type=(if date_input { "date" } else { "text" }) value=(fields.trial_ends);
                    p class="muted" id="trial-state" { (trial_text(ent.trial())) }
                    @if let Some(e) = err_for("claims.trial_ends") { p class="error" id="trial_ends-error" { (e) } }
                    label for="seats" { "Seats" }
                    input id="seats" name="seats" type="text" inputmode="numeric" value=(fields.seats);
                    @if let Some(e) = err_for("claims.seats") { p class="error" id="seats-error" { (e) } }
                    label { "Custom claims" }
                    @for c in &custom {
                        div class="row" {
                            input name="custom_key" placeholder="key" value=(c.key);
                            input name="custom_value" placeholder="value" value=(c.value);
                            select name="custom_type" title="text: stored as a string, whatever it looks like; JSON: a number, true/false, a list or an object" {
                                option value="text" selected[!c.json] { "text" }
                                option value="json" selected[c.json] { "JSON" }
                            }
                        }
                    }
                    @if let Some((f, e)) = error.filter(|(f, _)| !["claims.plan", "claims.role", "claims.roles", "claims.trial_ends", "claims.seats"].contains(f)) {
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
    q: Result<Query<UserQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let admin = match signed_in(&s, &method, &headers).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let q = match q {
        Ok(Query(q)) => q,
        Err(e) => return query_error(&e).into_response(),
    };
    let at = match preview_time(q.at.as_deref()) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let user = match ops::user(&s, &id).await {
        Ok(u) => u,
        Err(e) => return e.into_response(),
    };
    let audit = match ops::audit(&s, &user).await {
        Ok(a) => a,
        Err(e) => return e.into_response(),
    };
    let fields = Fields::of(&user.claims);
    let view = UserView {
        admin: &admin,
        user: &user,
        base: &user.claims,
        fields: &fields,
        error: None,
        at,
        preview: q.at.as_deref(),
        audit: &audit,
        saved: q.saved.is_some(),
    };
    user_html(&s, &view).into_response()
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
    let user = match ops::user(&s, &id).await {
        Ok(u) => u,
        Err(e) => return e.into_response(),
    };
    let fields = Fields::from_form(&form);
    // Relative to the claims the page showed: a change stored since then by someone
    // else is kept unless this form edited the same field.
    let base = claims_form::base_from_form(&form).unwrap_or_else(|| user.claims.clone());
    let result = match claims_form::change(&base, &fields) {
        Ok(change) => ops::change_claims(&s, &admin, &id, &change).await,
        Err(e) => Err(ApiError::field(e.field, e.message)),
    };
    match result {
        Ok(_) => {
            let mut res = Redirect::to(&format!("/dashboard/users/{id}?saved=1")).into_response();
            res.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            res
        }
        Err(e) if e.status() == StatusCode::UNPROCESSABLE_ENTITY => {
            let body = e.body();
            let text = |k: &str| {
                body.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            let (field, message) = (text("field"), text("detail"));
            let audit = ops::audit(&s, &user).await.unwrap_or_default();
            let view = UserView {
                admin: &admin,
                user: &user,
                base: &base,
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
