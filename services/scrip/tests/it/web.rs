//! The web pages in headless Chromium (Debian's `chromium` and `chromium-driver`), driven over
//! WebDriver: the stories of issue 6 as a shop owner, two customers and an operator live them,
//! and bad input through the forms. Each page's screenshot is written to `docs/screenshots/`
//! for the README. A machine without chromedriver fails here loudly: `.ci/run` installs it.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use reqwest::StatusCode;
use scrip_store::Backend;
use serde_json::{Value, json};

use crate::app::TestApp;

/// How long a page may take to show what a step waits for (the stream, a re-render).
const PATIENCE: Duration = Duration::from_secs(15);

/// A chromedriver process on a free port, stopped when dropped.
struct Driver {
    child: Child,
    url: String,
    profiles: Vec<PathBuf>,
}

impl Driver {
    async fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let binary = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
        let child = Command::new(&binary)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {binary} ({e}): the browser tests need Debian's chromium and \
                     chromium-driver (apt-get install chromium chromium-driver; .ci/run does it)"
                )
            });
        let url = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        while reqwest::get(format!("{url}/status")).await.is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver did not answer"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Self {
            child,
            url,
            profiles: Vec::new(),
        }
    }

    /// A fresh headless browser with its own profile (so its own cookies).
    async fn browser(&mut self) -> Browser {
        // Unique in the process: browser tests run side by side, and two Chromiums on one
        // profile directory make the second one quit.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let profile = std::env::temp_dir().join(format!("scrip-chrome-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&profile);
        self.profiles.push(profile.clone());
        let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--no-first-run", "--disable-quic",
                    "--window-size=1280,1000",
                    format!("--user-data-dir={}", profile.display()),
                ],
            },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!("a JSON object")
        };
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .expect("a Chromium session");
        Browser { client }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for profile in &self.profiles {
            let _ = std::fs::remove_dir_all(profile);
        }
    }
}

struct Browser {
    client: Client,
}

impl Browser {
    async fn open(&self, app: &TestApp, path: &str) {
        self.client
            .goto(&format!("{}{path}", app.base))
            .await
            .expect("page opens");
    }

    async fn fill(&self, css: &str, text: &str) {
        let field = self.find(css).await;
        field.clear().await.expect("clear");
        field.send_keys(text).await.expect("type");
    }

    async fn click(&self, css: &str) {
        self.find(css).await.click().await.expect("click");
    }

    async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"))
    }

    /// The visible text of `css` once it contains `expected`; fails with what it shows instead.
    async fn wait_text(&self, css: &str, expected: &str) -> String {
        let started = Instant::now();
        let mut seen = String::from("<not on the page>");
        while started.elapsed() < PATIENCE {
            if let Ok(element) = self.client.find(Locator::Css(css)).await
                && let Ok(text) = element.text().await
            {
                if text.contains(expected) {
                    return text;
                }
                seen = text;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let url = self.client.current_url().await.map(|u| u.to_string());
        panic!("{css} should show {expected:?} but shows {seen:?} (page {url:?})");
    }

    async fn path(&self) -> String {
        self.client
            .current_url()
            .await
            .expect("url")
            .path()
            .to_owned()
    }

    /// How many elements match `css`, and how many of them end beyond what can be seen: the
    /// page's width, or the right edge of the table's scrolling box.
    async fn offscreen(&self, css: &str) -> (u64, u64) {
        let counts = self
            .client
            .execute(
                "const all = [...document.querySelectorAll(arguments[0])]; \
                 const edge = e => Math.min(document.documentElement.clientWidth, \
                   e.closest('.scroll') ? e.closest('.scroll').getBoundingClientRect().right : Infinity); \
                 return [all.length, all.filter(e => e.getBoundingClientRect().right > edge(e) + 1).length]",
                vec![json!(css)],
            )
            .await
            .expect("layout");
        let count = |i: usize| counts[i].as_u64().unwrap_or(u64::MAX);
        (count(0), count(1))
    }

    /// Writes the page as `docs/screenshots/{name}.png` (shown in the README).
    async fn screenshot(&self, name: &str) {
        self.screenshot_at(name, 1280).await;
    }

    /// One element of a long page, as the user sees it once scrolled to it.
    async fn screenshot_of(&self, css: &str, name: &str) {
        let png = self
            .find(css)
            .await
            .screenshot()
            .await
            .expect("element screenshot");
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots");
        std::fs::create_dir_all(&dir).expect("screenshot folder");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("screenshot written");
    }

    /// [`Self::screenshot`] in a window `width` pixels wide (390: a phone).
    async fn screenshot_at(&self, name: &str, width: u32) {
        // The whole page, from the top: grow the window to the page's height first.
        let height = self
            .client
            .execute(
                "document.getElementById('toast').classList.remove('show'); window.scrollTo(0, 0); return document.documentElement.scrollHeight",
                vec![],
            )
            .await
            .expect("page height")
            .as_u64()
            .unwrap_or(1000)
            .clamp(600, 2400);
        self.client
            .set_window_size(width, u32::try_from(height).unwrap_or(1000) + 90)
            .await
            .expect("window size");
        // Let the page settle in its new size, then look at it from the top.
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.client
            .execute("window.scrollTo(0, 0)", vec![])
            .await
            .expect("scroll");
        let png = self.client.screenshot().await.expect("screenshot");
        self.client
            .set_window_size(1280, 1000)
            .await
            .expect("window size");
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots");
        std::fs::create_dir_all(&dir).expect("screenshot folder");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("screenshot written");
    }

    async fn log_in(&self, app: &TestApp, handle: &str, next: &str) {
        self.open(app, &format!("/login?next={next}")).await;
        self.fill("#login-handle", handle).await;
        self.fill("#login-password", "correct horse battery").await;
        self.click("#login-form button[type=submit]").await;
        self.wait_text("#who", handle).await;
    }

    async fn close(self) {
        let _ = self.client.close().await;
    }
}

/// The API's answer for `path` as `token`'s caller, asserted 200.
async fn api_get(app: &TestApp, path: &str, token: &str) -> Value {
    let (status, body) = app.get(path, Some(token)).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    body
}

async fn available(app: &TestApp, token: &str, currency: &str) -> String {
    let accounts = api_get(app, "/api/v1/accounts", token).await;
    accounts["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|a| a["currency"] == currency)
        .map_or_else(
            || "0".into(),
            |a| a["available"].as_str().expect("available").to_owned(),
        )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shop_issues_customers_trade_and_an_operator_clears_in_the_browser() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let mut driver = Driver::start().await;

    // Already there: two customers, and a grocer whose credit the second customer holds.
    let carol = app.user("carol").await;
    let dave = app.user("dave").await;
    let gus = app.user("gus").await;
    app.shop(&gus, "grocer", "GROCER").await;
    let (status, body) = app
        .pay(
            &gus,
            json!({"from": "grocer", "to": "dave", "currency": "GROCER", "amount": "100.00"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // A shop owner signs up through the form and lands in her wallet.
    let owner = driver.browser().await;
    owner.open(&app, "/signup").await;
    owner.fill("#signup-handle", "rosa").await;
    owner.fill("#signup-name", "Rosa").await;
    owner.fill("#signup-password", "short").await;
    owner.screenshot("signup").await;
    owner.click("#signup-form button[type=submit]").await;
    // The browser's own check refuses a short password first; the API's check is the
    // server's, shown next to the field, when the browser's is bypassed by a longer one
    // that is still refused for another reason (a taken handle, below).
    assert_eq!(owner.path().await, "/signup");
    owner.fill("#signup-handle", "carol").await;
    owner
        .fill("#signup-password", "correct horse battery")
        .await;
    owner.click("#signup-form button[type=submit]").await;
    owner.wait_text("#signup-handle-error", "taken").await;
    owner.fill("#signup-handle", "rosa").await;
    owner
        .fill("#signup-password", "correct horse battery")
        .await;
    owner.click("#signup-form button[type=submit]").await;
    owner.wait_text("#who", "rosa").await;
    assert_eq!(owner.path().await, "/wallet");

    // She opens her bakery and its currency in the shop console.
    owner.open(&app, "/shop").await;
    owner.fill("#business-handle", "bakery").await;
    owner.fill("#business-name", "Rosa's Bakery").await;
    owner.click("#business-form button[type=submit]").await;
    owner.find("#currency-form:not([hidden])").await;
    owner.fill("#currency-code", "BREAD").await;
    owner.fill("#currency-name", "Bakery bread money").await;
    owner.click("#currency-form button[type=submit]").await;
    owner.wait_text("#currency-stats", "BREAD").await;

    // Bad input through the pay-out form: the API's message next to the field, nothing paid.
    owner.fill("#payout-to", "nobody-here").await;
    owner.fill("#payout-amount", "5.00").await;
    owner.click("#payout-form button[type=submit]").await;
    owner.wait_text("#payout-to-error", "nobody-here").await;
    owner.fill("#payout-to", "carol").await;
    owner.fill("#payout-amount", "1.234").await;
    owner.click("#payout-form button[type=submit]").await;
    owner.wait_text("#payout-amount-error", "decimals").await;
    owner.fill("#payout-amount", "5000").await;
    owner.click("#payout-form button[type=submit]").await;
    owner.wait_text("#payout-amount-error", "").await;
    assert_eq!(available(&app, &carol, "BREAD").await, "0");

    // A large pay-out is confirmed before it is sent.
    owner.fill("#payout-amount", "150.00").await;
    owner.click("#payout-form button[type=submit]").await;
    owner
        .wait_text("#payout-confirm", "a tenth of the credit limit or more")
        .await;
    assert_eq!(
        available(&app, &carol, "BREAD").await,
        "0",
        "not sent unconfirmed"
    );

    // She pays a customer 50 BREAD and opens a market for it against the grocer's credit.
    owner.fill("#payout-amount", "50.00").await;
    owner.click("#payout-form button[type=submit]").await;
    owner.wait_text("#outstanding", "50.00 BREAD").await;
    owner.wait_text("#holders", "1").await;
    owner.fill("#market-quote", "GROCER").await;
    owner.click("#market-form button[type=submit]").await;
    owner.wait_text("#market-card", "Market open").await;
    owner.wait_text("#business-markets", "BREAD-GROCER").await;
    owner.wait_text("#holders-table", "carol").await;
    owner.screenshot("shop").await;

    // The customer logs in and sees the money; bad payments change nothing.
    let seller = driver.browser().await;
    seller.log_in(&app, "carol", "/wallet").await;
    seller
        .wait_text("#balances tr[data-currency=BREAD] .available", "50.00")
        .await;
    seller.fill("#pay-to", "nobody-here").await;
    seller.fill("#pay-currency", "BREAD").await;
    seller.fill("#pay-amount", "1.00").await;
    seller.click("#pay-form button[type=submit]").await;
    seller.wait_text("#pay-to-error", "nobody-here").await;
    seller.fill("#pay-to", "dave").await;
    seller.fill("#pay-amount", "1.234").await;
    seller.click("#pay-form button[type=submit]").await;
    seller.wait_text("#pay-amount-error", "decimals").await;
    seller.fill("#pay-amount", "500.00").await;
    seller.click("#pay-form button[type=submit]").await;
    seller.wait_text("#pay-amount-error", "").await;
    let amount_error = seller
        .find("#pay-amount-error")
        .await
        .text()
        .await
        .expect("text");
    assert!(!amount_error.is_empty(), "insufficient funds is explained");
    assert_eq!(available(&app, &carol, "BREAD").await, "50.00");
    assert_eq!(available(&app, &dave, "BREAD").await, "0");
    // A payment request: its QR code opens the page that pays it (the till test pays one).
    seller.fill("#request-currency", "BREAD").await;
    seller.fill("#request-amount", "2.50").await;
    seller.fill("#request-memo", "two loaves").await;
    seller.click("#request-form button[type=submit]").await;
    seller.wait_text("#request-link", "/pay/pr_").await;
    seller
        .wait_text("#request-status", "Waiting for 2.50 BREAD")
        .await;
    seller.screenshot("wallet").await;

    // The market list shows the new market.
    seller.open(&app, "/exchange").await;
    seller.wait_text("#markets tbody", "BREAD-GROCER").await;
    seller.screenshot("exchange").await;

    // She offers 10 BREAD at 2.00 GROCER; the form shows what she gets before she places it.
    seller.open(&app, "/exchange/BREAD-GROCER").await;
    seller.wait_text("#stream-status", "live").await;
    seller.click("label[for=side-sell]").await;
    seller.fill("#order-price", "2.00").await;
    seller.fill("#order-quantity", "10").await;
    seller
        .wait_text(
            "#order-preview",
            "receive 19.96 GROCER after a fee of 0.04 GROCER",
        )
        .await;
    // Her access token runs out while she fills the form in (the cookie is gone): the page
    // refreshes the session by its refresh cookie and sends the order once more; she stays.
    seller
        .client
        .delete_cookie("scrip_session")
        .await
        .expect("delete the session cookie");
    seller.click("#order-submit").await;
    seller.wait_text("#open-orders tbody", "sell").await;
    assert_eq!(
        seller.path().await,
        "/exchange/BREAD-GROCER",
        "still on the page"
    );
    seller.wait_text("#asks", "2.00").await;

    // The second customer sees the offer live and takes it.
    let buyer = driver.browser().await;
    buyer.log_in(&app, "dave", "/exchange/BREAD-GROCER").await;
    buyer.wait_text("#asks", "2.00").await;
    // He bids up to 2.10; the preview tells the truth: it trades at the resting 2.00.
    buyer.fill("#order-price", "2.10").await;
    buyer.fill("#order-quantity", "10").await;
    buyer
        .wait_text(
            "#order-preview",
            "Trades 10.00 BREAD now at an average of 2.00 GROCER: you pay 20.00 GROCER and receive 9.98 BREAD after a fee of 0.02 BREAD.",
        )
        .await;
    buyer.click("#order-submit").await;

    // Both see the trade and their new balances without reloading.
    for page in [&seller, &buyer] {
        page.wait_text("#trades tbody", "10.00").await;
        page.wait_text("#last-price", "2.00 GROCER").await;
    }
    seller.wait_text("#available-quote", "19.96 GROCER").await;
    seller.wait_text("#available-base", "40.00 BREAD").await;
    seller.wait_text("#fills tbody", "0.04").await;
    // A fill says what it was worth, not a raw order id.
    seller.wait_text("#fills tbody", "20.00 GROCER").await;
    // The candles show the trade (one price, 2.00: the chart's scale runs from 1 to 3).
    seller.wait_text("#candles", "3").await;
    buyer.wait_text("#available-base", "9.98 BREAD").await;
    buyer.wait_text("#available-quote", "80.00 GROCER").await;
    seller
        .wait_text("#open-orders tbody", "No open orders")
        .await;
    assert_eq!(available(&app, &carol, "GROCER").await, "19.96");
    assert_eq!(available(&app, &dave, "BREAD").await, "9.98");

    // A dropped stream resyncs without a reload: an order placed while it is down shows up.
    let before = seller
        .client
        .execute("return window.scripMarket.sequence", vec![])
        .await
        .expect("sequence");
    seller
        .client
        .execute("window.scripMarket.socket.close()", vec![])
        .await
        .expect("drop the stream");
    let (status, body) = app
        .post(
            "/api/v1/orders",
            Some(&dave),
            json!({"market": "BREAD-GROCER", "side": "buy", "type": "limit", "price": "1.50", "quantity": "3"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    seller.wait_text("#bids", "1.50").await;
    seller.wait_text("#stream-status", "live").await;
    let after = seller
        .client
        .execute("return window.scripMarket.sequence", vec![])
        .await
        .expect("sequence");
    assert!(after.as_u64() > before.as_u64(), "{before} -> {after}");
    buyer.screenshot("market").await;
    // The same page on a phone-sized screen: one column, nothing cut off.
    buyer
        .client
        .set_window_size(390, 844)
        .await
        .expect("phone size");
    let too_wide = buyer
        .client
        .execute(
            "return [...document.querySelectorAll('main *')] \
               .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1 \
                 && !e.closest('.scroll')) \
               .map(e => e.tagName + '#' + e.id + '.' + e.className)",
            vec![],
        )
        .await
        .expect("layout");
    assert_eq!(too_wide, json!([]), "no sideways scrolling on a phone");
    buyer.screenshot_at("market-phone", 390).await;
    // Key columns and buttons stay on screen on a phone, even inside tables that scroll: an
    // open order's Cancel button, and History's Amount.
    buyer
        .client
        .set_window_size(390, 844)
        .await
        .expect("phone size");
    buyer.open(&app, "/exchange/BREAD-GROCER").await;
    buyer.wait_text("#open-orders tbody", "1.50").await;
    assert_eq!(buyer.offscreen("#open-orders tbody button").await, (1, 0));
    buyer.open(&app, "/wallet").await;
    buyer.wait_text("#history tbody", "BREAD").await;
    let (amounts, cut_off) = buyer.offscreen("#history tbody td:nth-child(4)").await;
    buyer.screenshot_at("wallet-phone", 390).await;
    assert!(
        amounts > 0 && cut_off == 0,
        "{cut_off} of {amounts} amounts off-screen"
    );
    seller.close().await;
    buyer.close().await;

    // An operator clears a ring of businesses that hold each other's currencies.
    let mut ring = Vec::new();
    for (person, business, code) in [
        ("ann", "alpha", "ALPHA"),
        ("ben", "beta", "BETA"),
        ("cat", "gamma", "GAMMA"),
    ] {
        let token = app.user(person).await;
        app.shop(&token, business, code).await;
        ring.push((token, business, code));
    }
    for (i, amount) in ["30.00", "20.00", "25.00"].iter().enumerate() {
        let (token, from, code) = &ring[i];
        let to = ring[(i + 1) % 3].1;
        let (status, body) = app
            .pay(
                token,
                json!({"from": from, "to": to, "currency": code, "amount": amount}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let olga = app.user("olga").await;
    app.grant_operator("olga").await;
    owner.click("header form button[type=submit]").await;
    owner.find("#login-form").await;
    owner.log_in(&app, "olga", "/clearing").await;
    owner.wait_text("#graph-summary", "3 on cycles").await;
    owner.screenshot("clearing-before").await;
    owner.click("#dry-run").await;
    owner
        .wait_text("#clearing-result", "Nothing was changed")
        .await;
    // Running shows the plan first and moves nothing until she confirms it.
    owner.click("#run").await;
    owner
        .wait_text(
            "#confirm-summary",
            "cleared 60 EUR; gross debt 75 → 15 (80.0 % less)",
        )
        .await;
    assert_eq!(
        api_get(&app, "/api/v1/clearing/runs", &olga).await["items"][0]["dry_run"],
        true,
        "nothing applied before the confirmation"
    );
    owner.screenshot("clearing-confirm").await;
    owner.click("#confirm-apply").await;
    owner
        .wait_text("#clearing-result", "cleared 60 EUR; gross debt 75 → 15")
        .await;
    owner.wait_text("#settlements tbody", "alpha").await;
    owner.wait_text("#runs tbody", "applied").await;
    owner.wait_text("#health-audit", "clean").await;
    owner.screenshot("clearing-after").await;
    let runs = api_get(&app, "/api/v1/clearing/runs", &olga).await;
    assert_eq!(runs["items"][0]["cleared"], "60", "{runs}");
    assert_eq!(runs["items"][0]["gross_after"], "15", "{runs}");
    assert_eq!(runs["items"][0]["dry_run"], false, "{runs}");
    owner.close().await;

    app.assert_audit_clean().await;
}

crate::on_both_backends!(
    pages_need_a_session_and_the_cookie_never_moves_money_alone,
    login_and_signup_forms_refuse_bad_input_and_forged_posts
);

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// Logs in through the form; returns the `scrip_session=...` cookie pair.
async fn form_login(app: &TestApp, handle: &str) -> String {
    let response = no_redirects()
        .post(format!("{}/login", app.base))
        .form(&[
            ("handle", handle),
            ("password", "correct horse battery"),
            ("next", "/exchange"),
        ])
        .send()
        .await
        .expect("login");
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["location"], "/exchange");
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age="] {
        assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
    }
    cookie.split(';').next().expect("pair").to_owned()
}

async fn pages_need_a_session_and_the_cookie_never_moves_money_alone(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let owner = app.user("olive").await;
    app.shop(&owner, "olives", "OLIVE").await;
    let client = no_redirects();

    // Private pages send strangers to the login page and back; public ones render.
    for page in ["/wallet", "/shop", "/clearing"] {
        let response = client
            .get(format!("{}{page}", app.base))
            .send()
            .await
            .expect("page");
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{page}");
        assert_eq!(
            response.headers()["location"],
            format!("/login?next={page}").as_str()
        );
    }
    for page in ["/exchange", "/exchange/NO-SUCH", "/login", "/signup"] {
        let response = client
            .get(format!("{}{page}", app.base))
            .send()
            .await
            .expect("page");
        assert_eq!(response.status(), StatusCode::OK, "{page}");
        let csp = response.headers()["content-security-policy"]
            .to_str()
            .expect("csp");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    }
    let asset = client
        .get(format!("{}/assets/app.js", app.base))
        .send()
        .await
        .expect("asset");
    assert_eq!(asset.status(), StatusCode::OK);
    assert!(
        asset.headers()["content-type"]
            .to_str()
            .expect("type")
            .starts_with("text/javascript")
    );
    let missing = client
        .get(format!("{}/assets/nope.js", app.base))
        .send()
        .await
        .expect("asset");
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    // An unknown page is a page saying so for a browser, problem+json for everyone else.
    for (path, accept, html) in [
        ("/no-such-page", "text/html,application/xhtml+xml", true),
        ("/no-such-page", "application/json", false),
        ("/api/v1/no-such-thing", "text/html", false),
    ] {
        let response = client
            .get(format!("{}{path}", app.base))
            .header("accept", accept)
            .send()
            .await
            .expect("page");
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        let kind = response.headers()["content-type"]
            .to_str()
            .expect("type")
            .to_owned();
        let body = response.text().await.expect("body");
        if html {
            assert!(kind.starts_with("text/html"), "{kind}");
            assert!(
                body.contains("Not found") && body.contains("There is no page at /no-such-page."),
                "{body}"
            );
        } else {
            assert_eq!(kind, "application/problem+json", "{path}");
        }
    }

    // With the session cookie: pages render for the user, reads work through the API.
    let cookie = form_login(&app, "olive").await;
    let wallet = client
        .get(format!("{}/wallet", app.base))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("page");
    assert_eq!(wallet.status(), StatusCode::OK);
    let html = wallet.text().await.expect("html");
    assert!(
        html.contains(r#"<option value="olives">olives (business)</option>"#),
        "{html}"
    );
    // Someone who is not an operator is told what clearing is, not shown empty charts and
    // an error.
    let clearing = client
        .get(format!("{}/clearing", app.base))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert!(clearing.contains("What clearing does"), "{clearing}");
    assert!(!clearing.contains(r#"id="graph""#), "{clearing}");
    let me = client
        .get(format!("{}/api/v1/me", app.base))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("me");
    assert_eq!(me.status(), StatusCode::OK);

    // A change authorised by the cookie alone (what a forged cross-site form sends) is refused
    // and changes nothing; with the pages' header it goes through.
    let payment = json!({"from": "olives", "to": "olive", "currency": "OLIVE", "amount": "1.00"});
    let forged = client
        .post(format!("{}/api/v1/transfers", app.base))
        .header("cookie", &cookie)
        .json(&payment)
        .send()
        .await
        .expect("post");
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let problem: Value = forged.json().await.expect("problem");
    assert_eq!(problem["code"], "csrf_check_failed", "{problem}");
    assert_eq!(available(&app, &owner, "OLIVE").await, "0");
    let sent = client
        .post(format!("{}/api/v1/transfers", app.base))
        .header("cookie", &cookie)
        .header("x-scrip-csrf", "1")
        .json(&payment)
        .send()
        .await
        .expect("post");
    assert_eq!(sent.status(), StatusCode::CREATED);
    assert_eq!(available(&app, &owner, "OLIVE").await, "1.00");

    // A forged or expired cookie is no session: pages ask to log in, the API answers 401.
    let bad = "scrip_session=eyJhbGciOiJFZERTQSJ9.e30.c2lnbmF0dXJl";
    let page = client
        .get(format!("{}/wallet", app.base))
        .header("cookie", bad)
        .send()
        .await
        .expect("page");
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
    let api = client
        .get(format!("{}/api/v1/me", app.base))
        .header("cookie", bad)
        .send()
        .await
        .expect("me");
    assert_eq!(api.status(), StatusCode::UNAUTHORIZED);

    // Logging out clears the cookie.
    let out = client
        .post(format!("{}/logout", app.base))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("logout");
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    let cleared = out.headers()["set-cookie"].to_str().expect("ascii");
    assert!(cleared.starts_with("scrip_session=;"), "{cleared}");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");

    // QR codes of payment links are drawn; empty or huge texts are refused.
    let qr = client
        .get(format!(
            "{}/qr.svg?text=http%3A%2F%2Fx%2Fwallet%3Fpay_to%3Dolives",
            app.base
        ))
        .send()
        .await
        .expect("qr");
    assert_eq!(qr.status(), StatusCode::OK);
    assert!(qr.text().await.expect("svg").contains("<svg"));
    let huge = "a".repeat(2_000);
    for text in ["", huge.as_str()] {
        let refused = client
            .get(format!("{}/qr.svg?text={text}", app.base))
            .send()
            .await
            .expect("qr");
        assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let problem: serde_json::Value = refused.json().await.expect("problem+json");
        assert_eq!(problem["code"], "bad_text", "{problem}");
    }
    app.assert_audit_clean().await;
}

async fn login_and_signup_forms_refuse_bad_input_and_forged_posts(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.user("petra").await;
    let client = no_redirects();
    let post = |path: &'static str,
                form: Vec<(&'static str, &'static str)>,
                origin: Option<&'static str>| {
        let mut request = client.post(format!("{}{path}", app.base)).form(&form);
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        request.send()
    };

    // Wrong password: the login page again, with the API's message, no cookie.
    let wrong = post(
        "/login",
        vec![("handle", "petra"), ("password", "not the password")],
        None,
    )
    .await
    .expect("login");
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.headers().get("set-cookie").is_none());
    let html = wrong.text().await.expect("html");
    assert!(html.contains("the handle or password is wrong"), "{html}");
    assert!(
        html.contains(r#"value="petra""#),
        "the handle is kept: {html}"
    );

    // A login form posted from another site is refused (login CSRF).
    let forged = post(
        "/login",
        vec![("handle", "petra"), ("password", "correct horse battery")],
        Some("http://evil.example"),
    )
    .await
    .expect("login");
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert!(forged.headers().get("set-cookie").is_none());

    // Redirect targets are local paths only.
    let page = client
        .get(format!("{}/login?next=//evil.example/x", app.base))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert!(page.contains(r#"name="next" value="/wallet""#), "{page}");
    let open_redirect = post(
        "/login",
        vec![
            ("handle", "petra"),
            ("password", "correct horse battery"),
            ("next", "https://evil.example"),
        ],
        None,
    )
    .await
    .expect("login");
    assert_eq!(open_redirect.status(), StatusCode::SEE_OTHER);
    assert_eq!(open_redirect.headers()["location"], "/wallet");

    // Sign-up: each refusal is shown next to its field, and nobody is created.
    for (form, status, field, message) in [
        (
            vec![("handle", "petra"), ("password", "correct horse battery")],
            StatusCode::CONFLICT,
            "signup-handle-error",
            "taken",
        ),
        (
            vec![
                ("handle", "No Spaces"),
                ("password", "correct horse battery"),
            ],
            StatusCode::UNPROCESSABLE_ENTITY,
            "signup-handle-error",
            "handle",
        ),
        (
            vec![("handle", "quentin"), ("password", "short")],
            StatusCode::UNPROCESSABLE_ENTITY,
            "signup-password-error",
            "at least 10",
        ),
    ] {
        let answer = post("/signup", form, None).await.expect("signup");
        assert_eq!(answer.status(), status);
        assert!(answer.headers().get("set-cookie").is_none());
        let html = answer.text().await.expect("html");
        let at = html
            .find(field)
            .unwrap_or_else(|| panic!("no {field} in {html}"));
        assert!(
            html[at..].contains(message),
            "{field} should say {message}: {html}"
        );
    }
    let (status, _) = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"handle": "quentin", "password": "short"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "quentin was not created");

    // A good sign-up logs in at once.
    let made = post(
        "/signup",
        vec![("handle", "quentin"), ("password", "correct horse battery")],
        None,
    )
    .await
    .expect("signup");
    assert_eq!(made.status(), StatusCode::SEE_OTHER);
    assert_eq!(made.headers()["location"], "/wallet");
    assert!(
        made.headers()["set-cookie"]
            .to_str()
            .expect("ascii")
            .contains("HttpOnly")
    );
}

/// The till as its people live it: a worker asks for a sale's amount, a customer scans the QR
/// (here: opens its link), logs in and pays; the till shows "Paid" without a reload; a second
/// customer opening the same code is told it is paid and cannot pay it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_till_request_is_paid_once_and_the_till_sees_it_live() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let mut driver = Driver::start().await;
    let rosa = app.user("rosa").await;
    let wendy = app.user("wendy").await;
    app.shop(&rosa, "bakery", "BREAD").await;
    app.add_member((&rosa, "bakery"), ("wendy", &wendy), "worker")
        .await;
    for customer in ["carl", "dana"] {
        app.user(customer).await;
        let (status, body) = app
            .pay(
                &rosa,
                json!({"from": "bakery", "to": customer, "currency": "BREAD", "amount": "20.00"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    // The worker's shop console is the till alone: no pay-out, limits or members.
    let till = driver.browser().await;
    till.log_in(&app, "wendy", "/shop").await;
    till.wait_text("#till-title", "Till").await;
    assert!(
        till.find("#payout-card")
            .await
            .attr("hidden")
            .await
            .expect("attr")
            .is_some(),
        "a worker sees no pay-out"
    );
    till.fill("#till-amount", "4.50").await;
    till.fill("#till-memo", "2 loaves").await;
    till.click("#till-form button[type=submit]").await;
    till.wait_text("#till-status", "Waiting for 4.50 BREAD")
        .await;
    let link = till
        .find("#till-link")
        .await
        .attr("href")
        .await
        .expect("attr")
        .expect("href");
    let pay_path = link.trim_start_matches(&app.base).to_owned();
    assert!(pay_path.starts_with("/pay/pr_"), "{link}");

    // The customer opens the code, logs in, and lands on the filled-in payment.
    let carl = driver.browser().await;
    carl.open(&app, &pay_path).await;
    carl.wait_text("#login-context", "to pay the request you scanned")
        .await;
    carl.fill("#login-handle", "carl").await;
    carl.fill("#login-password", "correct horse battery").await;
    carl.click("#login-form button[type=submit]").await;
    carl.wait_text("#pay-request", "bakery asks for 4.50 BREAD for “2 loaves”")
        .await;
    carl.screenshot("pay-request").await;
    carl.click("#pay-form button[type=submit]").await;
    carl.wait_text("#pay-request", "has been paid").await;
    // Paid: the button stays off, so a second press pays nothing.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let again = carl.find("#pay-form button[type=submit]").await;
    assert!(
        !again.is_enabled().await.expect("enabled"),
        "the payer cannot pay the request twice"
    );

    // The till sees it at once (the stream; a slow poll backs it up).
    till.wait_text("#till-status", "Paid by carl: 4.50 BREAD")
        .await;
    // The worker's till lists what it received (and nothing the business paid out).
    till.wait_text("#till-received", "4.50 BREAD from carl · 2 loaves")
        .await;
    let received = till
        .find("#till-received")
        .await
        .text()
        .await
        .expect("text");
    assert!(
        !received.contains("20.00"),
        "no pay-out on the till: {received}"
    );
    till.screenshot("till-paid").await;

    // The same code again: paid, nothing to pay.
    let dana = driver.browser().await;
    dana.log_in(&app, "dana", &pay_path).await;
    dana.wait_text("#pay-request", "has been paid").await;
    let button = dana.find("#pay-form button[type=submit]").await;
    assert!(
        !button.is_enabled().await.expect("enabled"),
        "a paid request cannot be paid again"
    );
    // The form is hers again for an ordinary payment.
    dana.click("#pay-someone-else").await;
    let button = dana.find("#pay-form button[type=submit]").await;
    assert!(
        button.is_enabled().await.expect("enabled"),
        "the form is usable again"
    );
    assert_eq!(
        available(
            &app,
            &app.login("carl", "correct horse battery").await,
            "BREAD"
        )
        .await,
        "15.50"
    );
    assert_eq!(
        available(
            &app,
            &app.login("dana", "correct horse battery").await,
            "BREAD"
        )
        .await,
        "20.00"
    );
    for browser in [till, carl, dana] {
        browser.close().await;
    }
    app.assert_audit_clean().await;
}

/// A trader's own orders as the market page tells them: self-trade prevention cancelling her
/// resting bid is announced (not silent), and ended orders stay in her history with why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ended_orders_are_announced_and_kept_with_their_reason() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let mut driver = Driver::start().await;
    let rosa = app.user("rosa").await;
    app.shop(&rosa, "bakery", "BREAD").await;
    app.shop(&rosa, "grocer", "GROCER").await;
    let alice = app.user("alice").await;
    for (from, currency) in [("bakery", "BREAD"), ("grocer", "GROCER")] {
        let (status, body) = app
            .pay(
                &rosa,
                json!({"from": from, "to": "alice", "currency": currency, "amount": "50.00"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, body) = app
        .post("/api/v1/markets", Some(&rosa), json!({"base": "BREAD", "quote": "GROCER", "tick_size": "0.01", "lot_size": "1", "fee_bps": 20}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let place = |body: Value| {
        let mut body = body;
        body["market"] = json!("BREAD-GROCER");
        app.post("/api/v1/orders", Some(&alice), body)
    };
    let (status, bid) =
        place(json!({"side": "buy", "type": "limit", "price": "1.00", "quantity": "5"})).await;
    assert_eq!(status, StatusCode::CREATED, "{bid}");
    let (status, missed) = place(json!({"side": "sell", "type": "limit", "price": "1.50", "quantity": "1", "time_in_force": "ioc"})).await;
    assert_eq!(
        (status, missed["reason"].as_str()),
        (StatusCode::CREATED, Some("unfilled")),
        "{missed}"
    );

    let trader = driver.browser().await;
    trader.log_in(&app, "alice", "/exchange/BREAD-GROCER").await;
    trader.wait_text("#stream-status", "live").await;
    trader.wait_text("#open-orders tbody", "buy").await;
    trader
        .wait_text(
            "#order-history tbody",
            "nothing more was on the book at its price",
        )
        .await;
    // She offers below her own bid: the bid goes, and the page says why.
    trader.click("label[for=side-sell]").await;
    trader.fill("#order-price", "0.90").await;
    trader.fill("#order-quantity", "2").await;
    trader.click("#order-submit").await;
    trader
        .wait_text("#order-notice", "nobody trades with themselves")
        .await;
    trader
        .wait_text(
            "#order-history tbody",
            "your own new order would have traded with it",
        )
        .await;
    trader.wait_text("#open-orders tbody", "sell").await;
    trader.screenshot("order-history").await;
    let (_, seen) = app
        .get(
            &format!("/api/v1/orders/{}", bid["id"].as_str().expect("id")),
            Some(&alice),
        )
        .await;
    assert_eq!(seen["reason"], "self_trade", "{seen}");
    trader.close().await;
    app.assert_audit_clean().await;
}

/// The order form tells the truth before the order is sent: over several levels of the book
/// the preview's cost is what the fills then cost; what cannot work is said first (funds, the
/// quantity step); Max fills in what the funds pay for; the user's own order is marked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_order_form_previews_what_the_order_then_gets() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let mut driver = Driver::start().await;
    let rosa = app.user("rosa").await;
    app.shop(&rosa, "bakery", "BREAD").await;
    app.shop(&rosa, "grocer", "GROCER").await;
    let carla = app.user("carla").await;
    let dev = app.user("dev").await;
    for (from, to, currency, amount) in [
        ("bakery", "carla", "BREAD", "50.00"),
        ("grocer", "dev", "GROCER", "10.00"),
    ] {
        let (status, body) = app
            .pay(
                &rosa,
                json!({"from": from, "to": to, "currency": currency, "amount": amount}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, body) = app
        .post("/api/v1/markets", Some(&rosa), json!({"base": "BREAD", "quote": "GROCER", "tick_size": "0.01", "lot_size": "1", "fee_bps": 20}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    for (price, quantity) in [("1.05", "2"), ("1.10", "3"), ("1.20", "5")] {
        let (status, body) = app
            .post("/api/v1/orders", Some(&carla), json!({"market": "BREAD-GROCER", "side": "sell", "type": "limit", "price": price, "quantity": quantity}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    let trader = driver.browser().await;
    trader.log_in(&app, "dev", "/exchange/BREAD-GROCER").await;
    trader.wait_text("#stream-status", "live").await;
    trader.wait_text("#order-balances", "10.00 GROCER").await;
    // Too much for his money, and a quantity off the step: said before sending.
    trader.fill("#order-price", "1.15").await;
    trader.fill("#order-quantity", "20").await;
    trader
        .wait_text("#order-preview", "Not enough GROCER: this needs 23.00")
        .await;
    trader.fill("#order-quantity", "2.5").await;
    trader
        .wait_text("#order-preview", "Quantities go in steps of 1.00 BREAD")
        .await;
    // Max: what 10.00 GROCER pays for at 1.15 (8 lots, holding 9.20).
    trader.click("#order-max").await;
    let quantity = trader
        .find("#order-quantity")
        .await
        .prop("value")
        .await
        .expect("value");
    assert_eq!(quantity.as_deref(), Some("8.00"));
    // Four over two levels: 2 at 1.05 and 2 at 1.10 cost 4.30, not 4 x 1.15.
    trader.fill("#order-quantity", "4").await;
    let preview = trader
        .wait_text(
            "#order-preview",
            "Trades 4.00 BREAD now at an average of 1.07 GROCER: you pay 4.30 GROCER",
        )
        .await;
    trader.screenshot("order-preview").await;
    trader.click("#order-submit").await;
    trader.wait_text("#fills tbody", "1.10").await;
    let (_, orders) = app
        .get("/api/v1/orders?market=BREAD-GROCER", Some(&dev))
        .await;
    let fills = orders["items"][0]["fills"]
        .as_array()
        .expect("fills")
        .clone();
    let cents = |v: &Value| -> i64 {
        let text = v.as_str().expect("decimal");
        let (whole, frac) = text.split_once('.').unwrap_or((text, "0"));
        whole.parse::<i64>().expect("whole") * 100
            + format!("{frac:0<2}")[..2].parse::<i64>().expect("cents")
    };
    let paid: i64 = fills.iter().map(|f| cents(&f["total"])).sum();
    assert_eq!(
        paid, 430,
        "the preview ({preview}) is what the fills cost: {fills:?}"
    );
    let fee: i64 = fills.iter().map(|f| cents(&f["fee"])).sum();
    assert!(
        preview.contains(&format!(
            "after a fee of {}.{:02} BREAD",
            fee / 100,
            fee % 100
        )),
        "{preview} vs fee {fee}"
    );

    // His own resting order is marked in the book.
    trader.fill("#order-price", "0.90").await;
    trader.fill("#order-quantity", "1").await;
    trader.click("#order-submit").await;
    trader.wait_text("#open-orders tbody", "0.90").await;
    trader.find("#bids tr.mine .own-mark").await;
    trader.close().await;
    app.assert_audit_clean().await;
}

/// A session that really ends (here: logged out from another tab) keeps what the user typed:
/// sending the form goes to the login page, which says why, and after logging in the form is
/// back as it was, unsent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ended_session_keeps_what_the_user_typed() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let mut driver = Driver::start().await;
    let rosa = app.user("rosa").await;
    app.shop(&rosa, "bakery", "BREAD").await;
    app.user("carl").await;
    let (status, body) = app
        .pay(
            &rosa,
            json!({"from": "bakery", "to": "carl", "currency": "BREAD", "amount": "10.00"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let browser = driver.browser().await;
    browser.log_in(&app, "carl", "/wallet").await;
    browser.fill("#pay-to", "bakery").await;
    browser.fill("#pay-currency", "BREAD").await;
    browser.fill("#pay-amount", "2.50").await;
    browser.fill("#pay-memo", "coffee and a bun").await;
    // Logged out elsewhere: the session and its cookies are gone.
    browser
        .client
        .execute(
            "return fetch('/api/v1/auth/logout', {method: 'POST', redirect: 'manual'}).then(() => true)",
            vec![],
        )
        .await
        .expect("logout");
    browser.click("#pay-form button[type=submit]").await;
    browser.wait_text("main", "Your session ended").await;
    assert_eq!(browser.path().await, "/login");
    browser.fill("#login-handle", "carl").await;
    browser
        .fill("#login-password", "correct horse battery")
        .await;
    browser.click("#login-form button[type=submit]").await;
    browser
        .wait_text("#toast", "what you had typed is still here")
        .await;
    let value = |css: &'static str| {
        let browser = &browser;
        async move {
            browser
                .find(css)
                .await
                .prop("value")
                .await
                .expect("value")
                .unwrap_or_default()
        }
    };
    assert_eq!(value("#pay-amount").await, "2.50");
    assert_eq!(value("#pay-memo").await, "coffee and a bun");
    assert_eq!(value("#pay-to").await, "bakery");
    let carl = app.login("carl", "correct horse battery").await;
    assert_eq!(
        available(&app, &carl, "BREAD").await,
        "10.00",
        "nothing was paid unseen"
    );
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_steward_opens_a_community_lets_and_holders_read_its_policies_first() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let mut driver = Driver::start().await;
    let steward = app.user("steward").await;
    app.business(&steward, "valley").await;
    app.user("ann").await;
    app.user("bob").await;

    // The steward builds the currency in the console: a community LETS, members only, a fee
    // on each payment, weekly demurrage sealed for good.
    let console = driver.browser().await;
    console.log_in(&app, "steward", "/shop").await;
    console.fill("#currency-code", "HOURS").await;
    console.fill("#currency-name", "Valley hours").await;
    console.fill("#currency-credit", "0").await;
    console
        .click("#currency-kind input[value=mutual_credit]")
        .await;
    console.fill("#currency-member-limit", "50").await;
    console.click("#currency-form details summary").await;
    console.fill("#currency-fee-bps", "100").await;
    console.fill("#currency-demurrage-bps", "200").await;
    console
        .find("#currency-demurrage-period")
        .await
        .select_by_value("week")
        .await
        .expect("period");
    console
        .click("#currency-form input[name=requires_admission]")
        .await;
    console
        .click("#currency-form input[name='seal.demurrage']")
        .await;
    console.click("#currency-form button[type=submit]").await;
    console
        .wait_text("#currency-policies", "Community credit")
        .await;
    let words = console
        .wait_text("#currency-policies", "Members only")
        .await;
    assert!(words.contains("2 % of your balance every week"), "{words}");
    assert!(words.contains("demurrage"), "{words}");

    // Members are admitted from the console, one with a larger line than the default.
    console.fill("#currency-member-handle", "ann").await;
    console.fill("#currency-member-credit", "80").await;
    console
        .click("#currency-member-form button[type=submit]")
        .await;
    console.wait_text("#currency-members-table", "ann").await;
    console.fill("#currency-member-handle", "bob").await;
    console
        .click("#currency-member-form button[type=submit]")
        .await;
    console.wait_text("#currency-members-table", "bob").await;
    // Demurrage is sealed: its fields are locked; the largest payment can still change.
    let locked = console
        .find("#policies-demurrage-bps")
        .await
        .prop("disabled")
        .await
        .expect("prop");
    assert_eq!(locked.as_deref(), Some("true"), "a sealed field is locked");
    console.fill("#policies-max-payment", "30").await;
    console.click("#policies-form button[type=submit]").await;
    console.wait_text("#toast", "Policies saved").await;
    console
        .wait_text(
            "#currency-policies",
            "One payment or order is at most 30.00 HOURS",
        )
        .await;
    console.screenshot("shop-policies").await;

    // Ann, who has never been paid, pays Bob out of her credit line; the form says the fee
    // that goes on top before she pays it.
    let wallet = driver.browser().await;
    wallet.log_in(&app, "ann", "/wallet").await;
    wallet.fill("#pay-to", "bob").await;
    wallet.fill("#pay-currency", "HOURS").await;
    wallet.fill("#pay-amount", "31").await;
    wallet
        .wait_text("#pay-preview", "The largest payment in HOURS is 30.00")
        .await;
    wallet.fill("#pay-amount", "30").await;
    wallet
        .wait_text(
            "#pay-preview",
            "0.30 on top, to valley. You pay 30.30 HOURS in all.",
        )
        .await;
    wallet.click("#pay-form button[type=submit]").await;
    wallet.wait_text("#toast", "Paid 30.00 HOURS to bob").await;

    // Anyone reads what holding it means before holding it.
    let visitor = driver.browser().await;
    visitor.open(&app, "/currencies/HOURS").await;
    let page = visitor.wait_text("#policies", "Community credit").await;
    for words in [
        "Members only",
        "Payment fee",
        "1 % of its amount",
        "Demurrage",
        "Sealed",
        "Largest payment",
    ] {
        assert!(page.contains(words), "{words:?} missing from {page}");
    }
    visitor.screenshot("currency-page").await;

    // Ann's wallet says how low she may go; Bob's says what demurrage will take.
    wallet.open(&app, "/wallet").await;
    wallet.wait_text("#balance-notes", "down to -80.00").await;
    wallet.wait_text("#balances", "-30.30").await;
    wallet.close().await;
    let bob_wallet = driver.browser().await;
    bob_wallet.log_in(&app, "bob", "/wallet").await;
    bob_wallet
        .wait_text("#balance-notes", "demurrage of 0.60")
        .await;
    bob_wallet.close().await;
    console.close().await;
    visitor.close().await;
    app.assert_audit_clean().await;
}

/// A baker backs BREAD with the ALE the brewery paid her: the console makes a backed currency
/// with a joining fee, deposits reserve and shows what it backs; a newcomer reads the policies
/// on the public page, joins paying the fee, and is paid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_baker_backs_bread_with_ale_and_a_newcomer_pays_to_join() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let mut driver = Driver::start().await;
    let rosa = app.user("rosa").await;
    let bert = app.user("bert").await;
    app.user("alice").await;
    app.shop(&bert, "brewery", "ALE").await;
    app.business(&rosa, "bakery").await;
    for (to, amount) in [("bakery", "300.00"), ("alice", "20.00")] {
        let paid = app
            .pay(
                &bert,
                json!({"from": "brewery", "to": to, "currency": "ALE", "amount": amount}),
            )
            .await;
        assert_eq!(paid.0, StatusCode::CREATED, "{}", paid.1);
    }

    let console = driver.browser().await;
    console.log_in(&app, "rosa", "/shop").await;
    console.fill("#currency-code", "BREAD").await;
    console.fill("#currency-name", "Bakery bread").await;
    console.fill("#currency-credit", "1000").await;
    console.click("#currency-kind input[value=backed]").await;
    console.fill("#currency-backing-currency", "ALE").await;
    console.fill("#currency-backing-ratio", "5000").await;
    console.click("#currency-form details summary").await;
    console.fill("#currency-joining-amount", "5").await;
    console.fill("#currency-joining-currency", "ALE").await;
    console.fill("#currency-joining-days", "30").await;
    console.click("#currency-form button[type=submit]").await;
    let words = console
        .wait_text("#currency-policies", "Backed by a reserve")
        .await;
    assert!(words.contains("Joining fee"), "{words}");
    console.wait_text("#reserve-numbers", "Reserve").await;
    console.fill("#reserve-amount", "100").await;
    console.click("#reserve-form button[value=deposit]").await;
    console
        .wait_text("#toast", "The reserve now backs 200.00 BREAD")
        .await;
    console.wait_text("#reserve-numbers", "200.00 BREAD").await;
    console.screenshot("shop-reserve").await;

    // Alice reads it first, then joins: the fee is paid once, and she can be paid.
    let visitor = driver.browser().await;
    visitor.log_in(&app, "alice", "/currencies/BREAD").await;
    let page = visitor.wait_text("#policies", "Backed by a reserve").await;
    assert!(
        page.contains("Joining fee") && page.contains("5.00 ALE"),
        "{page}"
    );
    visitor
        .wait_text("#join-why", "Joining costs 5.00 ALE")
        .await;
    visitor.click("#join-button").await;
    visitor.wait_text("#join-result", "you paid 5.00 ALE").await;
    visitor.screenshot("currency-join").await;
    let issued = app
        .pay(
            &rosa,
            json!({"from": "bakery", "to": "alice", "currency": "BREAD", "amount": "10.00"}),
        )
        .await;
    assert_eq!(issued.0, StatusCode::CREATED, "{}", issued.1);
    console.close().await;
    visitor.close().await;
    app.assert_audit_clean().await;
}

/// A customer at the grocer's till holds only BREAD: the request page offers to pay with it,
/// shows what it costs through the exchange (the route, the price), and pays in one click;
/// the till sees "paid". Then an ordinary payment in a currency she lacks, from the form.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_pays_the_till_with_a_currency_the_shop_does_not_take() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let mut driver = Driver::start().await;
    let rosa = app.user("rosa").await;
    app.shop(&rosa, "bakery", "BREAD").await;
    app.shop(&rosa, "grocer", "GROC").await;
    let mia = app.user("mia").await;
    app.user("carl").await;
    app.user("dana").await;
    for (from, to, currency) in [("bakery", "carl", "BREAD"), ("grocer", "mia", "GROC")] {
        let (status, body) = app
            .pay(
                &rosa,
                json!({"from": from, "to": to, "currency": currency, "amount": "50.00"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, body) = app
        .post(
            "/api/v1/markets",
            Some(&rosa),
            json!({"base": "GROC", "quote": "BREAD", "tick_size": "0.01", "lot_size": "1.00", "fee_bps": 0}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    for (price, quantity) in [("1.00", "5.00"), ("1.20", "20.00")] {
        let (status, body) = app
            .post(
                "/api/v1/orders",
                Some(&mia),
                json!({"market": "GROC-BREAD", "side": "sell", "type": "limit", "price": price, "quantity": quantity}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, asked) = app
        .post(
            "/api/v1/payment-requests",
            Some(&rosa),
            json!({"to": "grocer", "currency": "GROC", "amount": "6.00", "memo": "apples"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{asked}");
    let id = asked["id"].as_str().expect("id");

    let carl = driver.browser().await;
    carl.log_in(&app, "carl", &format!("/pay/{id}")).await;
    carl.wait_text("#pay-request", "grocer asks for 6.00 GROC")
        .await;
    carl.wait_text("#pay-with-why", "You hold no GROC").await;
    // 5 at 1.00 and 1 at 1.20.
    carl.wait_text("#pay-quote", "You spend 6.20 BREAD for 6.00 GROC")
        .await;
    carl.wait_text("#pay-quote", "through GROC-BREAD").await;
    carl.screenshot("pay-with").await;
    carl.click("#pay-form button[type=submit]").await;
    carl.wait_text("#pay-request", "has been paid").await;
    assert_eq!(
        available(
            &app,
            &app.login("carl", "correct horse battery").await,
            "BREAD"
        )
        .await,
        "43.80"
    );

    // An ordinary payment in GROC to Dana, paid with BREAD from the form.
    carl.open(&app, "/wallet").await;
    carl.fill("#pay-to", "dana").await;
    carl.fill("#pay-currency", "GROC").await;
    carl.fill("#pay-amount", "2.00").await;
    carl.wait_text("#pay-quote", "You spend 2.40 BREAD for 2.00 GROC")
        .await;
    carl.click("#pay-form button[type=submit]").await;
    carl.wait_text("#toast", "Paid 2.00 GROC to dana with 2.40 BREAD")
        .await;
    let dana = app.login("dana", "correct horse battery").await;
    assert_eq!(available(&app, &dana, "GROC").await, "2.00");
    // The history says how each payment was paid.
    carl.click("#history tbody tr:first-child button.link")
        .await;
    carl.wait_text(
        "#history tr.details",
        "Paid with 2.40 BREAD, converted in 1 trade: 2.00 at 1.20 on GROC-BREAD",
    )
    .await;
    carl.screenshot("payment-details").await;
    carl.close().await;
    app.assert_audit_clean().await;
}

/// An owner trades for her business from the market page: its balances, its orders, and the
/// order goes out of the business's accounts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_trades_for_her_business_on_the_market_page() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let mut driver = Driver::start().await;
    let rosa = app.user("rosa").await;
    app.shop(&rosa, "bakery", "BREAD").await;
    app.shop(&rosa, "grocer", "GROC").await;
    let (status, body) = app
        .post(
            "/api/v1/markets",
            Some(&rosa),
            json!({"base": "BREAD", "quote": "GROC", "tick_size": "0.01", "lot_size": "1.00", "fee_bps": 0}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = app
        .patch(
            "/api/v1/currencies/BREAD",
            Some(&rosa),
            json!({"max_payment": "10.00"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let page = driver.browser().await;
    page.log_in(&app, "rosa", "/exchange/BREAD-GROC").await;
    page.wait_text("#stream-status", "live").await;
    page.find("#order-holder")
        .await
        .select_by_value("bakery")
        .await
        .expect("holder");
    // The bakery issues BREAD by selling it: its credit line is what it may sell.
    page.wait_text("#order-balances", "1,000.00 BREAD").await;
    page.click("#order-form input[name=side][value=sell]").await;
    page.fill("#order-price", "1.50").await;
    // BREAD's largest payment bounds the order, said before it is sent.
    page.fill("#order-quantity", "12.00").await;
    page.wait_text("#order-preview", "The largest order in BREAD is 10.00")
        .await;
    page.fill("#order-quantity", "4.00").await;
    page.click("#order-form button[type=submit]").await;
    page.wait_text("#open-orders", "sell").await;
    page.screenshot("trading-for-a-business").await;
    let (status, orders) = app
        .get("/api/v1/orders?holder=bakery&status=open", Some(&rosa))
        .await;
    assert_eq!(status, StatusCode::OK, "{orders}");
    assert_eq!(
        orders["items"].as_array().map(Vec::len),
        Some(1),
        "{orders}"
    );
    let (_, mine) = app.get("/api/v1/orders?status=open", Some(&rosa)).await;
    assert_eq!(mine["items"].as_array().map(Vec::len), Some(0), "{mine}");
    page.close().await;
    app.assert_audit_clean().await;
}

/// Two owners of a shop agree before money leaves it: rosa sets "2 owners must agree to pay
/// out" in the console, her pay-out waits as a proposal, otto approves it from his console,
/// and only then is carl paid; the log says who did what.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_owners_approve_a_pay_out_in_the_shop_console() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let mut driver = Driver::start().await;
    let rosa = app.user("rosa").await;
    let otto = app.user("otto").await;
    let carl = app.user("carl").await;
    app.shop(&rosa, "bakery", "BREAD").await;
    app.add_member((&rosa, "bakery"), ("otto", &otto), "owner")
        .await;

    let page = driver.browser().await;
    page.log_in(&app, "rosa", "/shop").await;
    page.wait_text("#approvals-rule", "Every owner acts alone")
        .await;
    page.click("#approvals-change summary").await;
    page.fill("#approvals-required", "2").await;
    page.click("#approvals-of input[name='of.issue']").await;
    page.click("#approvals-form button[type=submit]").await;
    page.wait_text("#approvals-rule", "2 owners must agree to: paying out")
        .await;

    page.fill("#payout-to", "carl").await;
    page.fill("#payout-amount", "30").await;
    page.click("#payout-form button[type=submit]").await;
    page.wait_text("#toast", "Waiting for approval").await;
    page.wait_text("#proposals-list", "pay 30.00 BREAD to carl")
        .await;
    let balances = api_get(&app, "/api/v1/accounts", &carl).await;
    assert_eq!(balances["items"], json!([]), "nothing paid yet");

    let partner = driver.browser().await;
    partner.log_in(&app, "otto", "/shop").await;
    partner
        .wait_text("#proposals-list", "pay 30.00 BREAD to carl")
        .await;
    partner.screenshot("shop-approvals").await;
    partner
        .click("#proposals-list button[data-verb=approve]")
        .await;
    partner
        .wait_text("#toast", "Done: pay 30.00 BREAD to carl")
        .await;
    partner
        .wait_text("#proposals-list", "Nothing waits for approval")
        .await;
    partner
        .wait_text("#business-log", "executed proposal")
        .await;
    let balances = api_get(&app, "/api/v1/accounts", &carl).await;
    assert_eq!(balances["items"][0]["balance"], "30.00", "{balances}");
    page.close().await;
    partner.close().await;
}

/// Anyone checks a member of a members-only currency on its public page: the browser folds
/// the proof with its own SHA-256 and compares with the published root.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visitor_checks_a_member_against_the_published_directory() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let mut driver = Driver::start().await;
    let rosa = app.user("rosa").await;
    app.business(&rosa, "bakery").await;
    let (status, club) = app
        .post(
            "/api/v1/currencies",
            Some(&rosa),
            json!({"issuer": "bakery", "code": "CLUB", "name": "Bakery club", "scale": 2, "credit_limit": "100", "requires_admission": true}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{club}");
    for member in ["carl", "dana", "eve"] {
        let token = app.user(member).await;
        let (_, applied) = app
            .post(
                "/api/v1/currencies/CLUB/applications",
                Some(&token),
                json!({}),
            )
            .await;
        let id = applied["id"].as_str().expect("id");
        let (status, admitted) = app
            .post(
                &format!("/api/v1/currencies/CLUB/applications/{id}/admit"),
                Some(&rosa),
                json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{admitted}");
    }
    let (_, directory) = app.get("/api/v1/currencies/CLUB/directory", None).await;

    let page = driver.browser().await;
    page.open(&app, "/currencies/CLUB").await;
    page.wait_text("#directory-members", "3").await;
    page.wait_text("#directory-root", directory["root"].as_str().expect("root"))
        .await;
    page.fill("#directory-member", "dana").await;
    page.click("#directory-form button[type=submit]").await;
    page.wait_text(
        "#directory-result",
        "✓ dana@local is counted in the root above",
    )
    .await;
    page.screenshot("currency-directory").await;
    page.fill("#directory-member", "mallory").await;
    page.click("#directory-form button[type=submit]").await;
    page.wait_text("#directory-form", "is not in the directory of CLUB")
        .await;
    page.close().await;
}

/// The stewards' side of the shop console: admitting an applicant to a members-only currency,
/// freezing a holder's account and unfreezing it; and a user changing the password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stewards_admit_and_freeze_from_the_console_and_a_user_changes_the_password() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let mut driver = Driver::start().await;
    let rosa = app.user("rosa").await;
    let carl = app.user("carl").await;
    app.business(&rosa, "bakery").await;
    let (status, club) = app
        .post(
            "/api/v1/currencies",
            Some(&rosa),
            json!({"issuer": "bakery", "code": "CLUB", "name": "Bakery club", "scale": 2, "credit_limit": "100", "requires_admission": true, "freezable": true}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{club}");
    let (status, applied) = app
        .post(
            "/api/v1/currencies/CLUB/applications",
            Some(&carl),
            json!({"message": "regular"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{applied}");

    let page = driver.browser().await;
    page.log_in(&app, "rosa", "/shop").await;
    page.wait_text("#applications-list", "carl · “regular”")
        .await;
    page.click("#applications-list button[data-verb=admit]")
        .await;
    page.wait_text("#toast", "carl is admitted").await;
    page.wait_text("#currency-members-table", "carl").await;
    page.fill("#payout-to", "carl").await;
    page.fill("#payout-amount", "5").await;
    page.click("#payout-form button[type=submit]").await;
    page.wait_text("#toast", "Paid 5.00 CLUB to carl").await;
    page.wait_text("#holders-table", "carl").await;
    page.click("#holders-table button[data-holder=carl]").await;
    page.wait_text("#toast", "carl's CLUB account is frozen")
        .await;
    page.wait_text("#holders-table button[data-holder=carl]", "Unfreeze")
        .await;
    let pays = app
        .pay(
            &carl,
            json!({"to": "bakery", "currency": "CLUB", "amount": "1.00"}),
        )
        .await;
    assert_eq!(pays.1["code"], "account_frozen", "{}", pays.1);
    page.click("#holders-table button[data-holder=carl]").await;
    page.wait_text("#toast", "carl's CLUB account is unfrozen")
        .await;
    page.close().await;

    let wallet = driver.browser().await;
    wallet.log_in(&app, "carl", "/wallet").await;
    wallet.fill("#password-current", "not it at all").await;
    wallet.fill("#password-new", "a brand new secret").await;
    wallet.click("#password-form button[type=submit]").await;
    wallet
        .wait_text("#password-form", "the current password is wrong")
        .await;
    wallet
        .fill("#password-current", "correct horse battery")
        .await;
    wallet.fill("#password-new", "a brand new secret").await;
    wallet.click("#password-form button[type=submit]").await;
    wallet.wait_text("#toast", "Password changed").await;
    // The sign-up's token (another session) is signed out; this page stays signed in.
    let (status, _) = app.get("/api/v1/accounts", Some(&carl)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    wallet.open(&app, "/wallet").await;
    wallet.wait_text("#who", "carl").await;
    wallet.close().await;
}

/// After a clearing run, a shop owner opens the statement in the shop console and downloads it
/// as CSV for the accountant: the file the browser is handed is the server's statement.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_downloads_the_clearing_statement_as_csv() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let mut driver = Driver::start().await;
    let mut owners = Vec::new();
    for (owner, shop, code) in [
        ("anna", "shopa", "AAA"),
        ("bert", "shopb", "BBB"),
        ("cleo", "shopc", "CCC"),
    ] {
        let token = app.user(owner).await;
        app.shop(&token, shop, code).await;
        owners.push(token);
    }
    for (i, (from, to, code, amount)) in [
        ("shopa", "shopb", "AAA", "50"),
        ("shopb", "shopc", "BBB", "30"),
        ("shopc", "shopa", "CCC", "40"),
    ]
    .into_iter()
    .enumerate()
    {
        let pay = json!({"from": from, "to": to, "currency": code, "amount": amount});
        let (status, body) = app.pay(&owners[i], pay).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let olga = app.user("olga").await;
    app.grant_operator("olga").await;
    let (status, run) = app
        .post("/api/v1/clearing/runs", Some(&olga), json!({}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{run}");
    let run_id = run["id"].as_str().expect("id").to_owned();

    let page = driver.browser().await;
    page.log_in(&app, "anna", "/shop").await;
    page.wait_text("#statements tbody", &format!("#{run_id}"))
        .await;
    page.click("#statements tbody button.secondary").await;
    page.wait_text("#statement-title", "(unchanged)").await;
    page.wait_text("#statement-balances tbody", "AAA").await;
    page.screenshot_of("#clearing-card", "shop-clearing-statement")
        .await;
    // The download is a blob handed to the browser: catch its text as it is made.
    page.client
        .execute(
            "window.__downloads = []; const make = URL.createObjectURL;\
             URL.createObjectURL = (blob) => { blob.text().then((t) => window.__downloads.push(t)); return make(blob); };",
            vec![],
        )
        .await
        .expect("hook");
    page.click(&format!("#statements button[data-csv='{run_id}']"))
        .await;
    let started = Instant::now();
    let csv = loop {
        let got = page
            .client
            .execute("return (window.__downloads || [])[0] || null", vec![])
            .await
            .expect("downloads");
        if let Some(text) = got.as_str() {
            break text.to_owned();
        }
        assert!(started.elapsed() < PATIENCE, "no CSV was downloaded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let response = app
        .client
        .get(format!(
            "{}/api/v1/clearing/runs/{run_id}/statements/shopa?format=csv",
            app.base
        ))
        .bearer_auth(&owners[0])
        .send()
        .await
        .expect("statement");
    assert_eq!(csv, response.text().await.expect("text"));
    assert!(
        csv.starts_with("record,run,finished_at,unit,currency"),
        "{csv}"
    );
    assert!(csv.contains("\r\nbalance,"), "{csv}");
    assert!(csv.contains("\r\nnet,"), "{csv}");
    page.close().await;
}

/// A customer about to buy BREAD reads the bakery's health on the market page and the
/// currency's page; once holding it, she checks in her wallet that her balance is counted in
/// what the bakery publishes it owes. The browser folds the proof with its own SHA-256.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_checks_her_balance_is_counted_and_reads_the_issuers_health() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let mut driver = Driver::start().await;
    let rosa = app.user("rosa").await;
    app.shop(&rosa, "bakery", "BREAD").await;
    app.shop(&rosa, "grocer", "GROCER").await;
    let (status, market) = app
        .post(
            "/api/v1/markets",
            Some(&rosa),
            json!({"base": "BREAD", "quote": "GROCER", "tick_size": "0.01", "lot_size": "1", "fee_bps": 20}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{market}");
    let _carl = app.user("carl").await;
    for (to, amount) in [("carl", "25.00"), ("dana", "75.00")] {
        if to == "dana" {
            app.user("dana").await;
        }
        let (status, body) = app
            .pay(
                &rosa,
                json!({"from": "bakery", "to": to, "currency": "BREAD", "amount": amount}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let page = driver.browser().await;
    page.log_in(&app, "carl", "/exchange/BREAD-GROCER").await;
    page.wait_text(
        "#market-health",
        "100.00 BREAD, 10 % of the issuer's credit limit",
    )
    .await;
    page.wait_text("#market-health", "the largest holds 75 %")
        .await;
    page.screenshot("market-health").await;
    page.open(&app, "/currencies/BREAD").await;
    page.wait_text("#health", "issued 100.00, redeemed 0.00")
        .await;
    page.wait_text("#liabilities-total", "100.00 BREAD").await;
    page.click("#liabilities-check").await;
    page.wait_text(
        "#liabilities-result",
        "✓ Your 25.00 BREAD is counted in the 100.00 BREAD",
    )
    .await;
    page.screenshot("currency-liabilities").await;
    page.open(&app, "/wallet").await;
    page.click("#proof-check summary").await;
    page.wait_text("#proof-currency", "BREAD").await;
    page.click("#proof-run").await;
    page.wait_text("#proof-result", "✓ Your 25.00 BREAD is counted")
        .await;
    page.screenshot("wallet-proof").await;
    // The browser's verifier refuses what the Rust one refuses: a negative sibling sum (which
    // would let a registry hide liabilities), a malformed hash, a total that is not the root's.
    let (_, proof) = app
        .get("/api/v1/accounts/proof?currency=BREAD", Some(&_carl))
        .await;
    let (_, published) = app.get("/api/v1/currencies/BREAD/liabilities", None).await;
    let check = |proof: Value, total: &str| {
        let (page, root, total) = (&page, published["root"].clone(), total.to_owned());
        async move {
            page.client
                .execute_async(
                    "const [proof, root, total, done] = arguments; import('/assets/liabilities.js')\
                     .then((m) => m.verifyLiabilityProof(proof, root, total)).then(done, (e) => done(String(e)));",
                    vec![proof, root, json!(total)],
                )
                .await
                .expect("verify")
        }
    };
    assert_eq!(check(proof.clone(), "100.00").await, json!(true));
    assert_eq!(check(proof.clone(), "99.99").await, json!(false));
    let mut negative = proof.clone();
    negative["path"][0]["sum"] = json!("-1.00");
    assert_eq!(check(negative, "100.00").await, json!(false));
    let mut malformed = proof;
    malformed["path"][0]["hash"] = json!("zz");
    assert_eq!(check(malformed, "100.00").await, json!(false));
    page.close().await;
}

/// Two shop owners settle an invoice in their consoles: the creditor records it, the debtor
/// accepts it and pays part of it in the creditor's own currency, which it holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owners_record_accept_and_pay_an_obligation_in_the_console() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let mut driver = Driver::start().await;
    let anna = app.user("anna").await;
    let bert = app.user("bert").await;
    app.shop(&anna, "shopa", "AAA").await;
    app.shop(&bert, "shopb", "BBB").await;
    let (status, body) = app
        .pay(
            &anna,
            json!({"from": "shopa", "to": "shopb", "currency": "AAA", "amount": "20"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let creditor = driver.browser().await;
    creditor.log_in(&app, "anna", "/shop").await;
    creditor
        .wait_text("#obligations tbody", "No obligations")
        .await;
    creditor.click("#obligations-card summary").await;
    creditor.fill("#obligation-debtor", "shopb").await;
    creditor.fill("#obligation-amount", "30").await;
    creditor.fill("#obligation-memo", "flour").await;
    creditor.click("#obligation-form button[type=submit]").await;
    creditor
        .wait_text("#obligations tbody", "waiting for the debtor")
        .await;

    let debtor = driver.browser().await;
    debtor.log_in(&app, "bert", "/shop").await;
    debtor.wait_text("#obligations tbody", "owes shopa").await;
    debtor.click("#obligations button[data-verb=accept]").await;
    debtor.wait_text("#obligations tbody", "accepted").await;
    debtor.fill("#obligations input[name=amount]", "12.5").await;
    debtor.click("#obligations form button[type=submit]").await;
    debtor.wait_text("#toast", "Paid 12.50 AAA to shopa").await;
    debtor.wait_text("#obligations tbody", "17.5 EUR").await;
    debtor
        .screenshot_of("#obligations-card", "shop-obligations")
        .await;
    let (_, list) = app.get("/api/v1/obligations", Some(&anna)).await;
    assert_eq!(list["items"][0]["remaining"], "17.50000000", "{list}");
    creditor.close().await;
    debtor.close().await;
}

/// A customer offers a standing swap in her wallet; two others close the ring; after the next
/// clearing run her wallet shows what she received at par, and the dashboard the ring trades.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standing_swap_offered_in_the_wallet_closes_in_a_ring() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let mut driver = Driver::start().await;
    let mut people = Vec::new();
    for (owner, shop, code, person) in [
        ("anna", "shopa", "AAA", "carl"),
        ("bert", "shopb", "BBB", "dana"),
        ("cleo", "shopc", "CCC", "eve"),
    ] {
        let token = app.user(owner).await;
        app.shop(&token, shop, code).await;
        let holder = app.user(person).await;
        let pay = json!({"from": shop, "to": person, "currency": code, "amount": "40"});
        let (status, body) = app.pay(&token, pay).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        people.push(holder);
    }
    let page = driver.browser().await;
    page.log_in(&app, "carl", "/wallet").await;
    page.wait_text("#swaps tbody", "No standing swaps").await;
    page.fill("#swap-give", "AAA").await;
    page.fill("#swap-max", "25").await;
    page.fill("#swap-want", "BBB").await;
    page.click("#swap-form button[type=submit]").await;
    page.wait_text("#swaps tbody", "waiting for a ring").await;
    for (token, give, want) in [(&people[1], "BBB", "CCC"), (&people[2], "CCC", "AAA")] {
        let offer = json!({"give": give, "want": want, "max_amount": "40"});
        let (status, body) = app
            .post("/api/v1/clearing/intents", Some(token), offer)
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let olga = app.user("olga").await;
    app.grant_operator("olga").await;
    let (status, run) = app
        .post("/api/v1/clearing/runs", Some(&olga), json!({}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{run}");
    page.open(&app, "/wallet").await;
    page.wait_text("#swaps tbody", "25.00 BBB").await;
    page.wait_text("#swaps tbody", "done").await;
    page.screenshot_of("#swaps-card", "wallet-swaps").await;
    page.close().await;
}

/// A newcomer holding only ALE finds the bakery's sourdough offer by searching, buys it paying
/// with ALE (converted through the books in the same payment), rates the bakery under "My
/// deals", and its reputation shows on the bakery's profile. A shop owner's listing with markup
/// in its title shows as text. On a phone the marketplace keeps its listings on screen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newcomer_finds_an_offer_buys_it_with_what_it_holds_and_rates_the_seller() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let mut driver = Driver::start().await;
    let rosa = app.user("rosa").await;
    let mia = app.user("mia").await;
    let eli = app.user("eli").await;
    app.shop(&rosa, "bakery", "BREAD").await;
    app.shop(&rosa, "brewery", "ALE").await;
    for (from, to, code) in [("brewery", "eli", "ALE"), ("bakery", "mia", "BREAD")] {
        let (status, body) = app
            .pay(
                &rosa,
                json!({"from": from, "to": to, "currency": code, "amount": "20.00"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, body) = app
        .post(
            "/api/v1/markets",
            Some(&rosa),
            json!({"base": "ALE", "quote": "BREAD", "tick_size": "0.01", "lot_size": "1.00", "fee_bps": 0}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = app
        .post(
            "/api/v1/orders",
            Some(&mia),
            json!({"market": "ALE-BREAD", "side": "buy", "type": "limit", "price": "1.00", "quantity": "10.00"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // The owner lists two offers for the bakery from the marketplace page.
    let owner = driver.browser().await;
    owner.log_in(&app, "rosa", "/marketplace").await;
    owner.find("#listing-holder option[value=bakery]").await;
    owner
        .client
        .execute(
            "document.getElementById('listing-holder').value = 'bakery'",
            vec![],
        )
        .await
        .expect("choose the bakery");
    owner
        .fill("#listing-title", "<img src=x onerror=alert(1)> Rye")
        .await;
    owner.click("#listing-form button[type=submit]").await;
    owner.wait_text("#listing-title", "<img src=x").await;
    owner.open(&app, "/marketplace").await;
    owner
        .client
        .execute(
            "document.getElementById('listing-holder').value = 'bakery'",
            vec![],
        )
        .await
        .expect("choose the bakery");
    owner.fill("#listing-title", "Sourdough loaf").await;
    owner
        .fill("#listing-description", "Baked every morning.")
        .await;
    owner.fill("#listing-price", "4.50").await;
    owner.fill("#listing-currency", "BREAD").await;
    owner.fill("#listing-category", "food").await;
    owner.click("#listing-form button[type=submit]").await;
    owner.wait_text("#holder-link", "bakery").await;
    owner.close().await;

    let buyer = driver.browser().await;
    buyer.log_in(&app, "eli", "/marketplace").await;
    buyer.wait_text("#listings", "Rye").await;
    let (count, _) = buyer.offscreen("#listings img").await;
    assert_eq!(count, 0, "a title's markup is text, never an element");
    buyer.fill("#search-q", "sourdo").await;
    buyer.click("#search-form button[type=submit]").await;
    buyer.wait_text("#listings", "Sourdough loaf").await;
    buyer.screenshot("marketplace").await;
    buyer.click("#listings a.title").await;
    buyer.wait_text("#listing-price", "4.50 BREAD").await;
    // Eli holds no BREAD: the page prices the loaf in ALE through the books.
    buyer
        .wait_text("#pay-quote", "You spend 5.00 ALE for 4.50 BREAD")
        .await;
    buyer.screenshot("marketplace-listing").await;
    buyer.click("#deal-submit").await;
    buyer
        .wait_text("#deal-result", "Paid 4.50 BREAD to bakery")
        .await;
    assert_eq!(available(&app, &eli, "ALE").await, "15.00");

    buyer.open(&app, "/marketplace").await;
    buyer.wait_text("#deals tbody", "Sourdough loaf").await;
    buyer.fill("#deals input[name=comment]", "Still warm").await;
    buyer.click("#deals form button[type=submit]").await;
    buyer.wait_text("#deals tbody", "you rated ★★★★★").await;
    buyer.screenshot_of("#deals", "marketplace-deals").await;

    buyer.open(&app, "/people/bakery").await;
    buyer
        .wait_text("#profile-reputation", "★ 5.00 from 1 rating")
        .await;
    buyer.wait_text("#ratings", "Still warm").await;
    buyer.screenshot("marketplace-profile").await;

    // A want: Mia wants help at her stall; Eli offers to do it, and Mia pays from My deals.
    let (status, want) = app
        .post(
            "/api/v1/listings",
            Some(&mia),
            json!({"kind": "want", "title": "Help at the stall", "price": {"amount": "2.00", "currency": "BREAD"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{want}");
    let want_id = want["id"].as_str().expect("id").to_owned();
    buyer.open(&app, &format!("/marketplace/{want_id}")).await;
    buyer.wait_text("#deal-submit", "Offer to do it").await;
    buyer.click("#deal-submit").await;
    buyer.wait_text("#deal-result", "mia pays 2.00 BREAD").await;
    let stall = driver.browser().await;
    stall.log_in(&app, "mia", "/marketplace").await;
    stall.wait_text("#deals tbody", "Help at the stall").await;
    stall.click("#deals a.button").await;
    stall.wait_text("#deal-submit", "Pay 2.00 BREAD").await;
    stall.click("#deal-submit").await;
    stall
        .wait_text("#deal-result", "Paid 2.00 BREAD to eli")
        .await;
    assert_eq!(
        available(&app, &eli, "BREAD").await,
        "2.50",
        "the 0.50 left from converting ALE, and 2.00"
    );
    stall.close().await;

    buyer
        .client
        .set_window_size(390, 844)
        .await
        .expect("phone size");
    buyer.open(&app, "/marketplace").await;
    buyer.wait_text("#listings", "Sourdough loaf").await;
    let (count, offscreen) = buyer.offscreen("#listings li, #search-form button").await;
    assert!(count >= 3, "{count}");
    assert_eq!(
        offscreen, 0,
        "every listing and the search button fit a phone"
    );
    buyer.close().await;
}
