//! The claims server under real traffic: concurrent merges into one user through one
//! or two instances, idempotency keys sent on several connections at once, instances
//! that start together on an empty database, and dashboard saves that change only
//! what was edited.

#[macro_use]
mod server_support;
mod support;

use std::collections::BTreeSet;

use serde_json::{Value, json};
use server_support::*;
use tiergate::server::RateLimits;
use tiergate::server::{ServeOptions, Server};

on_both!(
    concurrent_merges_of_different_keys_into_one_user_lose_nothing,
    one_idempotency_key_sent_on_many_connections_applies_once,
    concurrent_refreshes_and_dashboard_saves_never_fail,
    a_dashboard_page_saved_without_edits_changes_nothing,
);

/// Two instances on PostgreSQL (the same database), one on SQLite: what each
/// deployment runs.
async fn instances(b: Backend, name: &str) -> Vec<Harness> {
    let url = database_url(b, name).await;
    let first = start_on(&url, RateLimits::off()).await;
    let mut all = vec![first];
    if matches!(b, Backend::Postgres) {
        all.push(start_on(&url, RateLimits::off()).await);
    }
    all
}

async fn concurrent_merges_of_different_keys_into_one_user_lose_nothing(b: Backend) {
    let hs = instances(b, "merge64").await;
    let mut calls = Vec::new();
    for i in 0..64 {
        let h = &hs[i % hs.len()];
        let body = h.with_client(json!({
            "email": "webhooks@example.com",
            "claims": { format!("k{i:02}"): i },
        }));
        let req = h
            .http
            .post(format!("{}/api/platform/claims", h.api))
            .json(&body);
        calls.push(async move {
            req.send()
                .await
                .map(|r| r.status().as_u16())
                .map_err(|e| e.to_string())
        });
    }
    let statuses = futures_join_all(calls).await;
    let failed: Vec<_> = statuses.iter().filter(|s| s.as_ref() != Ok(&200)).collect();
    assert!(failed.is_empty(), "non-2xx: {failed:?}");
    let user = hs[0]
        .db
        .user_by_email("webhooks@example.com")
        .await
        .unwrap()
        .unwrap();
    let keys: BTreeSet<&String> = user.claims.keys().collect();
    assert_eq!(keys.len(), 64, "lost: {:?}", 64 - keys.len());
    for i in 0..64 {
        assert_eq!(user.claims[&format!("k{i:02}")], json!(i));
    }
    assert_eq!(hs[0].db.audit(&user.id).await.unwrap().len(), 64);
    assert_eq!(user.claims_version, 64, "one version per applied change");
}

async fn one_idempotency_key_sent_on_many_connections_applies_once(b: Backend) {
    let hs = instances(b, "idem16").await;
    // The same body under one key, eight times at once.
    let mut calls = Vec::new();
    for i in 0..8 {
        let h = &hs[i % hs.len()];
        let req = h
            .http
            .post(format!("{}/api/platform/claims", h.api))
            .basic_auth(&hs[0].client.0, Some(&hs[0].client.1))
            .header("idempotency-key", "evt_same")
            .json(&json!({ "email": "stripe@example.com", "claims": { "plan": "pro" } }));
        calls.push(async move {
            let r = req.send().await.unwrap();
            let replayed = r.headers().contains_key("idempotent-replayed");
            (
                r.status().as_u16(),
                replayed,
                r.json::<Value>().await.unwrap(),
            )
        });
    }
    let answers = futures_join_all(calls).await;
    assert!(answers.iter().all(|(s, _, _)| *s == 200), "{answers:?}");
    assert_eq!(
        answers.iter().filter(|(_, r, _)| !*r).count(),
        1,
        "applied once"
    );
    assert!(
        answers.iter().all(|(_, _, b)| *b == answers[0].2),
        "one response"
    );

    // Different bodies under one key, at once: one applies, the others are refused.
    let mut calls = Vec::new();
    for (i, plan) in ["free", "starter", "pro"].into_iter().enumerate() {
        let h = &hs[i % hs.len()];
        let req = h
            .http
            .post(format!("{}/api/platform/claims", h.api))
            .basic_auth(&hs[0].client.0, Some(&hs[0].client.1))
            .header("idempotency-key", "evt_clash")
            .json(&json!({ "email": "clash@example.com", "claims": { "plan": plan } }));
        calls.push(async move { req.send().await.unwrap().status().as_u16() });
    }
    let statuses = futures_join_all(calls).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 422).count(),
        2,
        "{statuses:?}"
    );
    let user = hs[0]
        .db
        .user_by_email("clash@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(hs[0].db.audit(&user.id).await.unwrap().len(), 1);
    let stripe = hs[0]
        .db
        .user_by_email("stripe@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(hs[0].db.audit(&stripe.id).await.unwrap().len(), 1);
}

async fn concurrent_refreshes_and_dashboard_saves_never_fail(b: Backend) {
    let hs = instances(b, "busy16").await;
    let h = &hs[0];
    // Sixteen users signed in, refreshing at once.
    let mut refreshes = Vec::new();
    for i in 0..16 {
        let email = format!("r{i}@example.com");
        let body =
            h.with_client(json!({ "email": email, "claims": {}, "password": "a long password" }));
        assert_eq!(h.post("/api/platform/claims", body).await.0, 200);
        let (status, tokens) = h
            .post(
                "/api/auth/login",
                json!({ "email": email, "password": "a long password" }),
            )
            .await;
        assert_eq!(status, 200, "{tokens}");
        let inst = &hs[i % hs.len()];
        let req = inst
            .http
            .post(format!("{}/api/auth/refresh", inst.api))
            .json(&json!({ "refresh_token": tokens["refresh_token"] }));
        refreshes.push(async move { req.send().await.unwrap().status().as_u16() });
    }
    let statuses = futures_join_all(refreshes).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");

    // Sixteen dashboard saves of different keys into one user, at once.
    let cookie = admin_cookie(h).await;
    let (_, user) = h
        .set_claims("dash@example.com", json!({ "plan": "free" }))
        .await;
    let id = user["user_id"].as_str().unwrap().to_owned();
    let mut saves = Vec::new();
    for i in 0..16 {
        let inst = &hs[i % hs.len()];
        let req = inst
            .http
            .put(format!("{}/api/dashboard/users/{id}/claims", inst.api))
            .header("cookie", &cookie)
            .json(&json!({ "claims": { format!("d{i}"): i } }));
        saves.push(async move { req.send().await.unwrap().status().as_u16() });
    }
    let statuses = futures_join_all(saves).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let user = h.db.user_by_id(&id).await.unwrap().unwrap();
    assert_eq!(user.claims.len(), 17, "{:?}", user.claims);
}

async fn a_dashboard_page_saved_without_edits_changes_nothing(b: Backend) {
    let hs = instances(b, "roundtrip").await;
    let h = &hs[0];
    let cookie = admin_cookie(h).await;
    let stored = json!({
        "plan": "pro", "roles": ["admin", "member"], "trial_ends": "2026-12-20T12:00:00Z",
        "seats": "5", "a": "123", "b": "true", "c": 5, "d": ["a", "b"],
    });
    let (status, user) = h.set_claims("keep@example.com", stored.clone()).await;
    assert_eq!(status, 200, "{user}");
    let id = user["user_id"].as_str().unwrap().to_owned();
    let page_url = format!("{}/dashboard/users/{id}", h.api);
    let form = || async {
        let html = h
            .http
            .get(&page_url)
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        form_fields(&html, "claims-form")
    };
    let save = |fields: Vec<(String, String)>| {
        h.http
            .post(&page_url)
            .header("cookie", &cookie)
            .form(&fields)
            .send()
    };

    // Saved as shown: identical, and no audit entry.
    let res = save(form().await).await.unwrap();
    assert!(
        res.status().is_redirection() || res.status().is_success(),
        "{}",
        res.status()
    );
    let now = h.db.user_by_id(&id).await.unwrap().unwrap();
    assert_eq!(Value::Object(now.claims.clone()), stored);
    assert_eq!(
        h.db.audit(&id).await.unwrap().len(),
        1,
        "only the first set"
    );

    // Only seats edited: only seats change.
    let mut fields = form().await;
    for (k, v) in &mut fields {
        if k == "seats" {
            *v = "6".into();
        }
    }
    save(fields).await.unwrap();
    let now = h.db.user_by_id(&id).await.unwrap().unwrap();
    let mut expected = stored.as_object().unwrap().clone();
    expected.insert("seats".into(), json!("6"));
    assert_eq!(now.claims, expected);

    // A page opened before a webhook changed the plan: saving it (seats edited) keeps
    // the webhook's plan.
    let mut fields = form().await;
    h.set_claims("keep@example.com", json!({ "plan": "starter" }))
        .await;
    for (k, v) in &mut fields {
        if k == "seats" {
            *v = "7".into();
        }
    }
    save(fields).await.unwrap();
    let now = h.db.user_by_id(&id).await.unwrap().unwrap();
    assert_eq!(now.claims["plan"], "starter");
    assert_eq!(now.claims["seats"], "7");
}

/// Starts three instances at the same moment on an empty PostgreSQL schema: every
/// one comes up (the migrations and the first key are taken under a lock), they
/// publish the same key, and each serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_started_together_on_an_empty_postgres_schema_all_serve() {
    if !postgres_ready("three_instances_started_together_on_an_empty_postgres_schema_all_serve")
        .await
    {
        return;
    }
    let url = database_url(Backend::Postgres, "together").await;
    let bind = || {
        Server::bind(ServeOptions {
            policy: concat!(env!("CARGO_MANIFEST_DIR"), "/policies/saas.yaml").into(),
            database_url: url.clone(),
            addr: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            ..ServeOptions::default()
        })
    };
    let (a, b, c) = tokio::join!(bind(), bind(), bind());
    let servers = [a.unwrap(), b.unwrap(), c.unwrap()];
    assert_eq!(
        servers.iter().filter(|s| s.created_key()).count(),
        1,
        "one signing key between them"
    );
    let http = reqwest::Client::new();
    let mut jwks = Vec::new();
    for s in servers {
        let base = format!("http://{}", s.addr());
        tokio::spawn(s.run());
        let res = http
            .get(format!("{base}/.well-known/jwks.json"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        jwks.push(res.json::<Value>().await.unwrap());
    }
    assert!(jwks.iter().all(|j| *j == jwks[0]), "{jwks:?}");
    assert_eq!(jwks[0]["keys"].as_array().unwrap().len(), 1);
}

/// A new SQLite database file is readable by its owner only: it holds the private
/// signing keys.
#[cfg(unix)]
#[tokio::test]
async fn a_new_sqlite_database_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let url = database_url(Backend::Sqlite, "mode").await;
    tiergate::server::test_util::Db::connect(&url)
        .await
        .unwrap();
    let path = url.trim_start_matches("sqlite://");
    let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{mode:o}");
}

/// Runs futures concurrently (all polled at once) and collects their outputs.
async fn futures_join_all<F: std::future::Future>(fs: Vec<F>) -> Vec<F::Output> {
    let mut set = Vec::new();
    for f in fs {
        set.push(Box::pin(f));
    }
    let mut out: Vec<Option<F::Output>> = (0..set.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in set.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().map(|o| o.unwrap()).collect()
}

/// The fields a browser would submit for the form with this id: every named input
/// (checkboxes only when checked) and each select's selected option, in order.
fn form_fields(html: &str, form_id: &str) -> Vec<(String, String)> {
    let start = html
        .find(&format!("id=\"{form_id}\""))
        .expect("the form is on the page");
    let end = start + html[start..].find("</form>").unwrap();
    let form = &html[start..end];
    let mut out = Vec::new();
    let mut select: Option<(String, Option<String>, Option<String>)> = None;
    let mut rest = form;
    while let Some(open) = rest.find('<') {
        rest = &rest[open + 1..];
        let close = rest.find('>').unwrap();
        let tag = &rest[..close];
        rest = &rest[close + 1..];
        let name = tag.split_whitespace().next().unwrap_or_default();
        let attrs = attributes(tag);
        let get = |k: &str| attrs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        match name {
            "input" => {
                let Some(n) = get("name") else { continue };
                let kind = get("type").unwrap_or_default();
                if kind == "checkbox" && get("checked").is_none() {
                    continue;
                }
                out.push((n, get("value").unwrap_or_default()));
            }
            "select" => select = get("name").map(|n| (n, None, None)),
            "option" => {
                if let Some((_, first, selected)) = &mut select {
                    let v = get("value").unwrap_or_default();
                    if first.is_none() {
                        *first = Some(v.clone());
                    }
                    if get("selected").is_some() {
                        *selected = Some(v);
                    }
                }
            }
            "/select" => {
                if let Some((n, first, selected)) = select.take() {
                    out.push((n, selected.or(first).unwrap_or_default()));
                }
            }
            _ => {}
        }
    }
    out
}

/// `a="b" c` → [(a, b), (c, "")], with maud's escapes undone.
fn attributes(tag: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = tag.split_once(char::is_whitespace).map_or("", |(_, r)| r);
    loop {
        rest = rest.trim_start().trim_start_matches('/');
        if rest.is_empty() {
            return out;
        }
        let name_end = rest
            .find(|c: char| c == '=' || c.is_whitespace())
            .unwrap_or(rest.len());
        let name = rest[..name_end].to_owned();
        rest = &rest[name_end..];
        if let Some(r) = rest.strip_prefix("=\"") {
            let end = r.find('"').unwrap();
            let value = r[..end]
                .replace("&quot;", "\"")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&amp;", "&");
            out.push((name, value));
            rest = &r[end + 1..];
        } else {
            out.push((name, String::new()));
        }
    }
}
