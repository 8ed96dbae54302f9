//! The dashboard in a real browser: headless Chromium driven through chromedriver
//! (Debian's `chromium` and `chromium-driver`, which `.ci/run` installs). Signs in,
//! finds a user, changes their plan and trial, sees the saved values, the access
//! panel and the audit entry, gets an inline error for bad seats, then mints a
//! token through the API and checks it carries the new plan. Saves screenshots to
//! `target/screenshots/` (and to `docs/` with `TIERGATE_SCREENSHOTS_TO_DOCS=1`).
//!
//! The browser and its driver are found on `PATH` (`chromium`, `chromedriver`) or
//! through `TIERGATE_CHROMIUM` and `TIERGATE_CHROMEDRIVER`; without them the test is
//! skipped with one line (and fails under `CI=true`).

mod support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use tiergate::server::test_util::{self as server, Db};
use tiergate::server::{ServeOptions, Server};

/// A program named by `var`, or the first of `names` on `PATH`.
fn program(var: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(var) {
        return Some(PathBuf::from(p)).filter(|p| p.exists());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

/// Chromium and chromedriver, or `None` after the skip line.
fn chromium(test: &str) -> Option<(PathBuf, PathBuf)> {
    let found = program(
        "TIERGATE_CHROMIUM",
        &["chromium", "chromium-browser", "google-chrome"],
    )
    .zip(program("TIERGATE_CHROMEDRIVER", &["chromedriver"]));
    support::outside_part(
        test,
        "Chromium and chromedriver",
        found.is_some(),
        "apt-get install chromium chromium-driver (or set TIERGATE_CHROMIUM and TIERGATE_CHROMEDRIVER)",
    )
    .then_some(found)
    .flatten()
}

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn browser(chromium: &PathBuf, chromedriver: &PathBuf) -> (Driver, Client) {
    let port = free_port();
    let driver = Driver(
        Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts"),
    );
    let caps = json!({
        "goog:chromeOptions": {
            "binary": chromium,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1280,1000",
            ],
        }
    });
    let caps: serde_json::Map<String, Value> = caps.as_object().unwrap().clone();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let attempt = ClientBuilder::rustls()
            .expect("a TLS connector (unused: chromedriver is plain HTTP on loopback)")
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await;
        match attempt {
            Ok(c) => return (driver, c),
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("cannot start headless Chromium through chromedriver: {e}"),
        }
    }
}

/// Clicks something that loads a page, and waits until the new page has loaded
/// (the old document's marker is gone and the new one is complete).
async fn click_and_wait(c: &Client, locator: Locator<'_>) {
    c.execute("window.__tiergate_old_page = true;", vec![])
        .await
        .unwrap();
    c.find(locator).await.unwrap().click().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let loaded = c
            .execute(
                "return window.__tiergate_old_page === undefined && document.readyState === 'complete';",
                vec![],
            )
            .await
            .ok()
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        if loaded {
            return;
        }
        assert!(Instant::now() < deadline, "the page did not load");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn text(c: &Client, css: &str) -> String {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .text()
        .await
        .unwrap()
}

async fn value(c: &Client, css: &str) -> String {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default()
}

async fn checked(c: &Client, css: &str) -> bool {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .prop("checked")
        .await
        .unwrap()
        .is_some_and(|v| v == "true")
}

async fn screenshot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), &png).unwrap();
    if std::env::var("TIERGATE_SCREENSHOTS_TO_DOCS").is_ok_and(|v| v == "1") {
        std::fs::write(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("docs")
                .join(name),
            &png,
        )
        .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_changes_a_plan_in_the_browser_and_the_next_token_carries_it() {
    let Some((chromium, chromedriver)) =
        chromium("an_admin_changes_a_plan_in_the_browser_and_the_next_token_carries_it")
    else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("tiergate-browser-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("dash.db").display());
    let server = Server::bind(ServeOptions {
        policy: concat!(env!("CARGO_MANIFEST_DIR"), "/policies/saas.yaml").into(),
        database_url: url.clone(),
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        rate_limits: tiergate::server::RateLimits::off(),
        ..ServeOptions::default()
    })
    .await
    .unwrap();
    let base = format!("http://{}", server.addr());
    let issuer = server.issuer().to_owned();
    tokio::spawn(server.run());
    let db = Db::connect(&url).await.unwrap();
    server::create_admin(&db, "root@example.com", "a long admin password")
        .await
        .unwrap();
    let (client_id, client_secret) = server::create_client(&db, "browser-test").await.unwrap();
    let http = reqwest::Client::new();
    let set = |email: &str, claims: Value| {
        http.post(format!("{base}/api/platform/claims"))
            .basic_auth(&client_id, Some(&client_secret))
            .json(&json!({ "email": email, "claims": claims }))
            .send()
    };
    for (email, claims) in [
        (
            "ada@example.com",
            json!({ "plan": "free", "role": "member", "trial_ends": "2026-04-15", "seats": "3" }),
        ),
        ("bob@example.com", json!({ "plan": "starter", "seats": 2 })),
        (
            "cy@example.com",
            json!({ "plan": "pro", "role": "admin", "seats": 12 }),
        ),
        (
            "dee@example.com",
            json!({ "plan": "enterprise", "seats": 80 }),
        ),
        (
            "eve@example.com",
            json!({ "plan": "free", "trial_ends": (chrono::Utc::now() + chrono::Duration::days(3)).format("%Y-%m-%d").to_string() }),
        ),
    ] {
        assert_eq!(set(email, claims).await.unwrap().status(), 200);
    }

    let (_driver, c) = browser(&chromium, &chromedriver).await;
    // Sign in.
    c.goto(&format!("{base}/dashboard")).await.unwrap();
    assert!(
        c.current_url()
            .await
            .unwrap()
            .path()
            .ends_with("/dashboard/login")
    );
    c.find(Locator::Id("email"))
        .await
        .unwrap()
        .send_keys("root@example.com")
        .await
        .unwrap();
    c.find(Locator::Id("password"))
        .await
        .unwrap()
        .send_keys("a long admin password")
        .await
        .unwrap();
    click_and_wait(&c, Locator::Id("sign-in")).await;
    assert!(
        c.current_url()
            .await
            .unwrap()
            .path()
            .ends_with("/dashboard/users")
    );
    assert!(text(&c, "#users").await.contains("dee@example.com"));
    screenshot(&c, "dashboard-users.png").await;

    // Find Ada and open her page.
    c.find(Locator::Id("search"))
        .await
        .unwrap()
        .send_keys("ada")
        .await
        .unwrap();
    click_and_wait(&c, Locator::Id("search-button")).await;
    let list = text(&c, "#users").await;
    assert!(
        list.contains("ada@example.com") && !list.contains("bob@example.com"),
        "{list}"
    );
    click_and_wait(&c, Locator::LinkText("ada@example.com")).await;
    assert_eq!(text(&c, "#user-email").await, "ada@example.com");
    assert!(
        text(&c, "#trial-state")
            .await
            .starts_with("expired on 2026-04-15")
    );

    // Saved without edits: the stored claims stay exactly as they were.
    let stored = || async {
        http.get(format!("{base}/api/platform/claims?email=ada@example.com"))
            .basic_auth(&client_id, Some(&client_secret))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()["claims"]
            .clone()
    };
    let before = stored().await;
    click_and_wait(&c, Locator::Id("save")).await;
    assert_eq!(text(&c, "#saved").await, "Saved.");
    assert_eq!(stored().await, before);

    // Change the plan and the trial end; save.
    c.find(Locator::Css("#plan option[value='starter']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.execute(
        "document.getElementById('trial_ends').value = '2099-12-31';",
        vec![],
    )
    .await
    .unwrap();
    click_and_wait(&c, Locator::Id("save")).await;
    assert_eq!(text(&c, "#saved").await, "Saved.");
    assert_eq!(value(&c, "#plan").await, "starter");
    assert!(
        checked(&c, "#role-member").await && !checked(&c, "#role-admin").await,
        "fields not changed keep their values"
    );
    assert_eq!(value(&c, "#trial_ends").await, "2099-12-31");
    assert!(text(&c, "#trial-state").await.starts_with("active,"));
    // The trial lifts starter to pro in the access panel; the audit log has the change.
    assert_eq!(text(&c, "#effective-plan").await, "pro");
    assert!(text(&c, "#features").await.contains("sso"));
    let audit = text(&c, "#audit").await;
    assert!(
        audit.contains("admin:root@example.com") && audit.contains("starter"),
        "{audit}"
    );
    screenshot(&c, "dashboard-user.png").await;

    // Preview the day after the trial: back to starter.
    c.execute(
        "document.getElementById('at').value = '2100-01-01';",
        vec![],
    )
    .await
    .unwrap();
    click_and_wait(&c, Locator::Id("preview")).await;
    assert_eq!(text(&c, "#effective-plan").await, "starter");

    // A bad seat count: the claims API's message, next to the field; nothing saved.
    let seats = c.find(Locator::Id("seats")).await.unwrap();
    seats.clear().await.unwrap();
    seats.send_keys("-3").await.unwrap();
    click_and_wait(&c, Locator::Id("save")).await;
    assert!(text(&c, "#seats-error").await.contains("whole number"));
    assert_eq!(
        value(&c, "#seats").await,
        "-3",
        "what was typed stays in the form"
    );

    // The next token minted through the API carries the new plan.
    let res = http
        .post(format!("{base}/api/platform/tokens"))
        .basic_auth(&client_id, Some(&client_secret))
        .json(&json!({ "email": "ada@example.com" }))
        .send()
        .await
        .unwrap();
    let token = res.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let verifier = tiergate::token::Verifier::builder()
        .jwks_url(format!("{base}/.well-known/jwks.json"))
        .issuer(&issuer)
        .audience("tiergate-demo")
        .build()
        .unwrap();
    let verified = verifier
        .verify_fetching(&token, chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(verified.claims().plan(), Some("starter"));
    assert_eq!(verified.claims().seats(), Some(3));

    // The Policy page: the running policy's matrix, its revision, users per plan
    // now (Ada's trial lifts her to pro, Eve's too) and Eve's trial, which ends
    // within the week.
    click_and_wait(&c, Locator::Id("nav-policy")).await;
    assert!(text(&c, "#matrix").await.contains("reports.export"));
    assert_eq!(text(&c, "#revision").await.len(), 12);
    let per_plan = text(&c, "#users-per-plan").await;
    assert!(per_plan.contains("pro 3"), "{per_plan}");
    assert!(per_plan.contains("enterprise 1"), "{per_plan}");
    assert!(text(&c, "#trials-ending").await.contains("eve@example.com"));
    screenshot(&c, "dashboard-policy.png").await;

    // The user list, filtered by plan (from the policy page's link), then by trial.
    click_and_wait(&c, Locator::LinkText("starter")).await;
    let list = text(&c, "#users").await;
    assert!(
        list.contains("bob@example.com") && !list.contains("ada@example.com"),
        "{list}"
    );
    c.find(Locator::Css("#plan-filter option[value='']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.find(Locator::Css("#trial-filter option[value='active']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    click_and_wait(&c, Locator::Id("search-button")).await;
    let list = text(&c, "#users").await;
    assert!(
        list.contains("eve@example.com") && !list.contains("bob@example.com"),
        "{list}"
    );

    // Sign out: back to the sign-in page, and the dashboard is closed.
    click_and_wait(&c, Locator::Id("sign-out")).await;
    assert!(
        c.current_url()
            .await
            .unwrap()
            .path()
            .ends_with("/dashboard/login")
    );
    c.goto(&format!("{base}/dashboard/users")).await.unwrap();
    assert!(
        c.current_url()
            .await
            .unwrap()
            .path()
            .ends_with("/dashboard/login")
    );
    c.close().await.unwrap();
    std::fs::remove_dir_all(&dir).ok();
}
