//! The dashboard's operations, in one place: the JSON API (`dashboard_api`) and the
//! HTML pages (`dashboard_pages`) are two faces over these functions, so an admin
//! gets the same checks, merge and answers whichever they use.
//!
//! Each takes the state and plain values and returns a value or an [`ApiError`];
//! how a result is shown (JSON, a page, a redirect) is the caller's.

use axum::http::{HeaderMap, Method, StatusCode};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::access_token::fits_in_a_token;
use super::db::{AuditRow, ClaimsWrite, ClaimsWriteOptions, UserRow};
use super::input::{check_claims, email as parse_email, merge};
use super::problem::ApiError;
use super::session::same_site;
use super::state::{AppState, ClientAddr, unreadable, user_json};
use crate::{Claims, Trial};

/// Users per page in the list.
pub const PAGE_SIZE: i64 = 20;

/// The highest page number the list takes (20 users a page: 20 million users).
pub const MAX_PAGE: i64 = 1_000_000;

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
        crate::telemetry::increment(
            crate::telemetry::SERVER_AUTH_FAILURES,
            &[("kind", "admin_password")],
        );
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "the email or password is wrong",
        ));
    }
    Ok(email)
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
    /// Only users whose effective plan (now) is this one.
    #[serde(default)]
    pub plan: Option<String>,
    /// Only users whose trial (now) is `active`, `expired` or `none`.
    #[serde(default)]
    pub trial: Option<String>,
}

impl ListQuery {
    /// Whether a plan or trial filter is set (empty values, as a form sends for
    /// "any", are no filter).
    fn filters(&self) -> bool {
        self.plan.as_deref().is_some_and(|p| !p.is_empty())
            || self.trial.as_deref().is_some_and(|t| !t.is_empty())
    }

    fn keeps(&self, row: &Row) -> bool {
        let plan_ok = match self.plan.as_deref() {
            Some(p) if !p.is_empty() => row.plan == p,
            _ => true,
        };
        let trial_ok = match self.trial.as_deref() {
            Some("active") => matches!(row.trial, Trial::Active { .. }),
            Some("expired") => matches!(row.trial, Trial::Expired { .. }),
            Some("none") => matches!(row.trial, Trial::None),
            _ => true,
        };
        plan_ok && trial_ok
    }
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

/// A page of users matching the search (and the plan and trial filters, which
/// are about each user's claims under the running policy now: with a filter the
/// matching users are streamed and filtered here, O(users) time per page in one
/// read, with one page of rows in memory; fine for the reference server's user
/// counts).
pub async fn page(s: &AppState, q: &ListQuery) -> Result<Page, ApiError> {
    let page = q.page.unwrap_or(1).clamp(1, MAX_PAGE);
    let offset = page.saturating_sub(1).saturating_mul(PAGE_SIZE);
    let now = Utc::now();
    let (rows, total) = if q.filters() {
        let (start, mut total, mut rows) = (offset, 0i64, Vec::new());
        s.db.for_each_user(q.search.trim(), |u| {
            let r = row(s, &u, now);
            if q.keeps(&r) {
                if total >= start && rows.len() < PAGE_SIZE as usize {
                    rows.push(r);
                }
                total = total.saturating_add(1);
            }
        })
        .await?;
        (rows, total)
    } else {
        let (users, total) = s.db.users(q.search.trim(), PAGE_SIZE, offset).await?;
        (users.iter().map(|u| row(s, u, now)).collect(), total)
    };
    Ok(Page {
        users: rows,
        page,
        pages: (total.saturating_add(PAGE_SIZE - 1) / PAGE_SIZE).clamp(1, MAX_PAGE),
        total,
        search: q.search.clone(),
    })
}

/// What the policy page shows: the running policy and its status, and how many
/// users are on each plan now, with the trials that end within the next week.
#[derive(Debug, serde::Serialize)]
pub struct PolicyOverview {
    /// The plans side by side.
    pub matrix: crate::matrix::Matrix,
    /// The policy file, when the server follows one.
    pub file: Option<String>,
    /// When the running policy was loaded (RFC 3339).
    pub loaded_at: String,
    /// Reloads applied and rejected since the server started.
    pub reloads: u64,
    /// Reloads rejected since the server started.
    pub rejections: u64,
    /// The last rejected edit, with its located error, until a later one loads.
    pub last_rejected: Option<RejectedEdit>,
    /// Users per effective plan now, in tier order (every plan listed).
    pub users_per_plan: Vec<(String, u64)>,
    /// Users whose trial ends within the next 7 days, soonest first.
    pub trials_ending: Vec<TrialEnding>,
}

/// A rejected policy edit.
#[derive(Debug, serde::Serialize)]
pub struct RejectedEdit {
    /// The error as `tiergate check` prints it.
    pub message: String,
    /// Its line and column, when the file was read.
    pub line: Option<usize>,
    /// Its column.
    pub column: Option<usize>,
    /// When (RFC 3339).
    pub at: String,
}

/// A trial about to end.
#[derive(Debug, serde::Serialize)]
pub struct TrialEnding {
    /// The user's id (their page is `/dashboard/users/{id}`).
    pub id: String,
    /// Their email.
    pub email: String,
    /// When the trial ends (RFC 3339).
    pub ends: String,
    /// Whole days left.
    pub days_left: u32,
}

/// The policy page's content.
pub async fn policy_overview(s: &AppState) -> Result<PolicyOverview, ApiError> {
    let policy = s.store.policy();
    let status = s.store.status();
    let now = Utc::now();
    let week = now
        .checked_add_signed(chrono::Duration::days(7))
        .unwrap_or(now);
    let mut per_plan: Vec<(String, u64)> = policy.plans().map(|p| (p.to_owned(), 0)).collect();
    let mut trials_ending = Vec::new();
    s.db.for_each_user("", |u| {
        let r = row(s, &u, now);
        if let Some(slot) = per_plan.iter_mut().find(|(p, _)| *p == r.plan) {
            slot.1 = slot.1.saturating_add(1);
        }
        if let Trial::Active { ends, days_left } = r.trial
            && ends <= week
        {
            trials_ending.push((
                ends,
                TrialEnding {
                    id: r.id,
                    email: r.email,
                    ends: ends.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    days_left,
                },
            ));
        }
    })
    .await?;
    trials_ending.sort_by_key(|(ends, _)| *ends);
    let rfc3339 = |t: std::time::SystemTime| {
        DateTime::<Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    Ok(PolicyOverview {
        matrix: crate::matrix::Matrix::of(&policy),
        file: status.path.map(|p| p.display().to_string()),
        loaded_at: rfc3339(status.loaded_at),
        reloads: status.reloads,
        rejections: status.rejections,
        last_rejected: status.last_error.map(|e| RejectedEdit {
            message: e.message,
            line: e.line,
            column: e.column,
            at: rfc3339(e.at),
        }),
        users_per_plan: per_plan,
        trials_ending: trials_ending.into_iter().map(|(_, t)| t).collect(),
    })
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
    let user = user(s, id).await?;
    let ent = s
        .store
        .policy()
        .entitlements(&Claims::from_map(&user.claims), at);
    Ok(json!({
        "user": user_json(&user),
        "at": at.to_rfc3339(),
        "entitlements": ent.summary(),
        "audit": audit(s, &user).await?,
    }))
}

/// Applies a claims change as `admin`, with the claims API's validation and merge,
/// atomically (see [`super::db::Db::write_claims`]).
pub async fn change_claims(
    s: &AppState,
    admin: &str,
    id: &str,
    change: &Map<String, Value>,
) -> Result<UserRow, ApiError> {
    let user = user(s, id).await?;
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
                fits_in_a_token(s, stored, &after)?;
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

/// The user with this id, or 404.
pub async fn user(s: &AppState, id: &str) -> Result<UserRow, ApiError> {
    s.db.user_by_id(id)
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "user_not_found", "no such user"))
}

/// A user's audit log, newest first.
pub async fn audit(s: &AppState, user: &UserRow) -> Result<Vec<AuditRow>, ApiError> {
    Ok(s.db.audit(&user.id).await?)
}

/// What [`create_user`] did.
pub enum Created {
    /// A new user, with no claims yet.
    New(UserRow),
    /// The address already had a user (perhaps created a moment ago by another admin).
    Existing(UserRow),
}

/// Creates a user with this email, or finds the one that has it.
pub async fn create_user(s: &AppState, admin: &str, email: &str) -> Result<Created, ApiError> {
    let email = parse_email(email)?;
    if let Some(u) = s.db.user_by_email(&email).await? {
        return Ok(Created::Existing(u));
    }
    if let Some(u) = s.db.create_user(&email).await? {
        tracing::info!(target: "tiergate::server", admin, email, "user created");
        return Ok(Created::New(u));
    }
    // Created by someone else between the two statements: theirs.
    s.db.user_by_email(&email)
        .await?
        .map(Created::Existing)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                "user_exists",
                format!("{email} was being created at the same time; try again"),
            )
        })
}
