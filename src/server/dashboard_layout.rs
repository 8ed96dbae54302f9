//! The dashboard's look: the stylesheet, the page layout, the sign-in form, and the
//! small text helpers the pages share. Markup only; the handlers are in
//! `dashboard_pages`, the operations in `dashboard_api`, the form ↔ claims mapping in
//! `claims_form`.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use crate::Trial;

/// The stylesheet, served as a file so the Content-Security-Policy can forbid
/// inline styles and scripts alike.
pub(crate) async fn style() -> Response {
    let mut res = STYLE.into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    res
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
.pill{display:inline-block;padding:0 .4rem;border-radius:4px;background:#e8edf5}.row{display:flex;gap:.5rem}
.check{display:flex;gap:.4rem;align-items:center;font-weight:400;margin:.2rem 0}.check input{width:auto}
.row select{width:7rem}.unreadable{color:#b00020}code{word-break:break-all}
nav.row{gap:1rem;align-items:center}pre{white-space:pre-wrap;background:#fff4f4;padding:.5rem;border-radius:4px}
.tiergate-matrix td{text-align:center}.tiergate-matrix .included{color:#0a7d32}.tiergate-matrix .conditional{color:#9a6700}
.tiergate-matrix .excluded{color:#9aa1ab}.tiergate-matrix .role{color:#2a5bd7}.tiergate-matrix tr.limit th,.tiergate-matrix tr.limit td{background:#f6f7f9}";

pub(crate) fn layout(title: &str, admin: Option<&str>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · tiergate" }
                link rel="stylesheet" href="/dashboard/style.css";
            }
            body {
                header {
                    nav class="row" {
                        a href="/dashboard/users" { strong { "tiergate" } }
                        @if admin.is_some() {
                            a id="nav-users" href="/dashboard/users" { "Users" }
                            a id="nav-policy" href="/dashboard/policy" { "Policy" }
                        }
                    }
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

pub(crate) fn login_form(error: Option<&str>) -> Markup {
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

/// "active, 12 days left" / "expired on 2026-04-15" / "none".
pub(crate) fn trial_text(t: Trial) -> String {
    match t {
        Trial::None => "none".into(),
        Trial::Active { days_left, .. } => format!(
            "active, {days_left} day{} left",
            if days_left == 1 { "" } else { "s" }
        ),
        Trial::Expired { ended } => format!(
            "expired on {}",
            ended
                .checked_sub_signed(chrono::Duration::seconds(1))
                .unwrap_or(ended)
                .format("%Y-%m-%d")
        ),
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub(crate) fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
