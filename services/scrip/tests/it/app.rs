//! A real server on an ephemeral port with its own database, and a typed client for it.

use std::net::TcpListener;
use std::path::PathBuf;

use reqwest::{Client, Method, StatusCode};
use scrip::server::{Backplane, KeySource, Running, Services, Settings, start};
use scrip_domain::RegistryId;
use scrip_issuer::IssuerPolicy;
use scrip_store::Backend;
use scrip_store::test_support::TestDb;
use serde_json::{Value, json};

pub struct TestApp {
    pub base: String,
    pub client: Client,
    pub db: TestDb,
    pub data_dir: PathBuf,
    settings: Settings,
    running: Running,
}

/// Limits a test can lower to see them bite; by default high enough never to.
#[derive(Clone, Copy)]
pub struct Limits {
    pub login_per_minute: u32,
    pub login_per_address_per_minute: u32,
    pub payments_per_minute: u32,
    pub services: Services,
    pub clearing_interval_s: u64,
    /// Use the Redis at `SCRIP_TEST_REDIS_URL` for the bus and rate limits.
    pub redis: bool,
    pub streams: scrip_orderbook::StreamLimits,
    /// Believe `X-Forwarded-For` from 127.0.0.1 (a proxy on this machine).
    pub behind_local_proxy: bool,
    /// Serve `/metrics` on an internal port of its own ([`TestApp::metrics_base`]).
    pub metrics_apart: bool,
    /// New coinage: `(currency, credit, min reputation)`.
    pub onboarding: Option<(&'static str, &'static str, &'static str)>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            login_per_minute: 10_000,
            login_per_address_per_minute: 10_000,
            payments_per_minute: 100_000,
            services: Services::all(),
            clearing_interval_s: 0,
            redis: false,
            streams: scrip_orderbook::StreamLimits::default(),
            behind_local_proxy: false,
            metrics_apart: false,
            onboarding: None,
        }
    }
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, Limits::default()).await
    }

    pub async fn spawn_with(backend: Backend, limits: Limits) -> Self {
        let db = tokio::task::spawn_blocking(move || TestDb::new(backend))
            .await
            .expect("test db");
        let data_dir =
            std::env::temp_dir().join(format!("scrip-it-{}-{}", std::process::id(), rand_suffix()));
        let settings = Settings {
            listen: "127.0.0.1:0".parse().expect("addr"),
            database_url: db.url.clone(),
            db_pool_size: 8,
            registry: RegistryId::default(),
            keys: KeySource::DataDir(data_dir.clone()),
            token_ttl_s: 600,
            policy: IssuerPolicy {
                max_credit_limit_units: 1_000_000,
            },
            login_per_minute: limits.login_per_minute,
            login_per_address_per_minute: limits.login_per_address_per_minute,
            signup_per_minute: 100_000,
            payments_per_minute: limits.payments_per_minute,
            services: limits.services,
            demo: false,
            clearing_interval_s: limits.clearing_interval_s,
            clearing_unit: scrip_domain::UnitCode::parse("EUR").expect("unit"),
            redis_url: limits.redis.then(redis_url),
            trusted_proxies: if limits.behind_local_proxy {
                vec![std::net::IpAddr::from([127, 0, 0, 1]).into()]
            } else {
                Vec::new()
            },
            streams: limits.streams,
            metrics_listen: limits
                .metrics_apart
                .then(|| "127.0.0.1:0".parse().expect("addr")),
            onboarding: limits.onboarding.map(|(currency, credit, min)| {
                scrip_marketplace::onboarding::Settings::parse(currency, credit, min)
                    .expect("onboarding settings")
            }),
            // Tests share one Redis: each app is a deployment of its own.
            redis_prefix: format!("scrip-it:{}:{}:", std::process::id(), rand_suffix()),
        };
        let running = serve(settings.clone()).await;
        Self {
            base: format!("http://{}", running.addr),
            client: Client::new(),
            db,
            data_dir,
            settings,
            running,
        }
    }

    /// The internal metrics address, when the app serves `/metrics` apart.
    pub fn metrics_base(&self) -> Option<String> {
        self.running
            .metrics
            .as_ref()
            .map(|(addr, _)| format!("http://{addr}"))
    }

    /// Another process of the same deployment (same database, keys and Redis) serving only
    /// `services`; returns its base URL. It stops with the test.
    pub async fn peer(&self, services: Services) -> String {
        let settings = Settings {
            services,
            ..self.settings.clone()
        };
        let running = serve(settings).await;
        format!("http://{}", running.addr)
    }

    /// Stops the server as a crash would leave it (in-flight work dropped, nothing drained)
    /// and starts a new one on the same database and keys.
    pub async fn restart(&mut self) {
        self.running.handle.stop(false).await;
        self.running = serve(self.settings.clone()).await;
        self.base = format!("http://{}", self.running.addr);
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request sent");
        read(response).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.request(Method::GET, path, token, None).await
    }

    /// Every item of a paged list, read `limit` at a time through the cursors (`path` may
    /// already carry a query). Checks each page's size and that the walk ends.
    pub async fn all_pages(&self, path: &str, token: Option<&str>, limit: usize) -> Vec<Value> {
        let join = if path.contains('?') { '&' } else { '?' };
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..1_000 {
            let page_path = match &cursor {
                Some(cursor) => format!("{path}{join}limit={limit}&cursor={cursor}"),
                None => format!("{path}{join}limit={limit}"),
            };
            let (status, page) = self.get(&page_path, token).await;
            assert_eq!(status, StatusCode::OK, "{page_path}: {page}");
            let page_items = page["items"].as_array().expect("items");
            assert!(page_items.len() <= limit, "{page_path}: {page}");
            items.extend(page_items.iter().cloned());
            match page["next_cursor"].as_str() {
                Some(next) => {
                    assert_eq!(
                        page_items.len(),
                        limit,
                        "only a full page says there is more"
                    );
                    cursor = Some(next.to_owned());
                }
                None => return items,
            }
        }
        panic!("{path}: the cursors never end");
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        self.request(Method::POST, path, token, Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.request(Method::DELETE, path, token, None).await
    }

    pub async fn patch(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        self.request(Method::PATCH, path, token, Some(body)).await
    }

    pub async fn put_json(
        &self,
        path: &str,
        token: Option<&str>,
        body: Value,
    ) -> (StatusCode, Value) {
        self.request(Method::PUT, path, token, Some(body)).await
    }

    /// Sends raw bytes as the body, for malformed-input tests.
    pub async fn post_raw(
        &self,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: Vec<u8>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", content_type)
            .body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        read(request.send().await.expect("request sent")).await
    }

    /// Registers and logs in a user; returns the access token.
    pub async fn user(&self, handle: &str) -> String {
        let (status, body) = self
            .post(
                "/api/v1/auth/register",
                None,
                json!({"handle": handle, "password": "correct horse battery"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        self.login(handle, "correct horse battery").await
    }

    pub async fn login(&self, handle: &str, password: &str) -> String {
        let (status, body) = self
            .post(
                "/api/v1/auth/login",
                None,
                json!({"handle": handle, "password": password}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["access_token"].as_str().expect("token").to_owned()
    }

    /// `owner` creates business `handle` (named "`handle` shop").
    pub async fn business(&self, owner: &str, handle: &str) {
        let (status, body) = self
            .post(
                "/api/v1/businesses",
                Some(owner),
                json!({"handle": handle, "name": format!("{handle} shop")}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    /// `owner` creates business `handle` with currency `code` (scale 2, credit limit 1000.00).
    pub async fn shop(&self, owner: &str, handle: &str, code: &str) {
        self.business(owner, handle).await;
        let (status, body) = self
            .post(
                "/api/v1/currencies",
                Some(owner),
                json!({"issuer": handle, "code": code, "name": format!("{code} money"), "scale": 2, "credit_limit": "1000.00"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    /// `owner` invites `member` (with token `member_token`) to `business` in `role`, and the
    /// member accepts.
    pub async fn add_member(
        &self,
        (owner, business): (&str, &str),
        (member, member_token): (&str, &str),
        role: &str,
    ) {
        let (status, body) = self
            .post(
                &format!("/api/v1/businesses/{business}/members"),
                Some(owner),
                json!({"handle": member, "role": role}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["status"], "invited", "{body}");
        let (status, body) = self
            .post(
                &format!("/api/v1/businesses/{business}/invitations/{member}/accept"),
                Some(member_token),
                json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    pub async fn pay(&self, token: &str, body: Value) -> (StatusCode, Value) {
        self.post("/api/v1/transfers", Some(token), body).await
    }

    /// `(currency -> balance)` of the caller or a holder it may see.
    pub async fn balances(
        &self,
        token: &str,
        holder: Option<&str>,
    ) -> Vec<(String, String, String)> {
        let path = match holder {
            Some(h) => format!("/api/v1/accounts?holder={h}"),
            None => "/api/v1/accounts".into(),
        };
        let (status, body) = self.get(&path, Some(token)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|a| {
                (
                    a["currency"].as_str().unwrap_or_default().to_owned(),
                    a["balance"].as_str().unwrap_or_default().to_owned(),
                    a["held"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    /// Makes `handle` a registry operator (as `scrip admin grant-operator` does).
    pub async fn grant_operator(&self, handle: &str) {
        let ledger = scrip_ledger::Ledger::new(self.db.pool.clone());
        let handle = scrip_domain::Handle::parse(handle).expect("handle");
        tokio::task::spawn_blocking(move || {
            ledger.write(|conn| {
                let p = scrip_ledger::principal_by_handle(conn, &handle)?;
                scrip_auth::access::grant_role(conn, p.id, scrip_auth::access::OPERATOR)
            })
        })
        .await
        .expect("task")
        .expect("grant");
    }

    /// `owner` opens market `base`-`quote` (tick 0.01, lot 1.00, no fee).
    pub async fn market(&self, owner: &str, (base, quote): (&str, &str)) {
        let (status, body) = self
            .post(
                "/api/v1/markets",
                Some(owner),
                json!({"base": base, "quote": quote, "tick_size": "0.01", "lot_size": "1.00", "fee_bps": 0}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    /// Runs one SQL statement on the test database: for a test that moves time (backdating a
    /// row) or stages a race the API cannot produce on demand.
    pub async fn sql(&self, statement: &'static str) {
        let pool = self.db.pool.clone();
        tokio::task::spawn_blocking(move || {
            use diesel::RunQueryDsl;
            let mut conn = pool.get().expect("conn");
            diesel::sql_query(statement)
                .execute(&mut *conn)
                .expect("statement");
        })
        .await
        .expect("task");
    }

    /// Runs the ledger audit directly against the test database.
    pub async fn assert_audit_clean(&self) {
        let ledger = scrip_ledger::Ledger::new(self.db.pool.clone());
        let report = tokio::task::spawn_blocking(move || ledger.audit())
            .await
            .expect("task")
            .expect("audit");
        assert!(report.is_clean(), "{:#?}", report.violations);
    }

    /// The number of journal lines, to prove a refused request changed nothing.
    pub async fn transfer_count(&self) -> u64 {
        let ledger = scrip_ledger::Ledger::new(self.db.pool.clone());
        tokio::task::spawn_blocking(move || ledger.audit())
            .await
            .expect("task")
            .expect("audit")
            .transfers
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        drop(self.running.handle.stop(false));
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

async fn serve(settings: Settings) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let backplane = Backplane::connect(settings.redis_url.as_deref(), &settings.redis_prefix)
        .await
        .expect("backplane");
    let (server, running) = tokio::task::spawn_blocking(move || {
        start(&settings, listener, &backplane).map_err(|e| e.to_string())
    })
    .await
    .expect("start task")
    .expect("server starts");
    tokio::spawn(server);
    running
}

/// Redis for the tests that use it; they fail when it does not answer.
pub fn redis_url() -> String {
    std::env::var("SCRIP_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

async fn read(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = response.text().await.unwrap_or_default();
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    if status.is_client_error() || status.is_server_error() {
        assert_eq!(
            content_type, "application/problem+json",
            "errors are problem+json: {value}"
        );
        assert_eq!(value["status"], status.as_u16(), "{value}");
        assert!(
            value["code"].is_string() && value["detail"].is_string(),
            "{value}"
        );
    }
    (status, value)
}

/// Asserts an error answer: status and the stable code.
#[track_caller]
pub fn assert_problem(answer: &(StatusCode, Value), status: StatusCode, code: &str) {
    assert_eq!(answer.0, status, "{}", answer.1);
    assert_eq!(answer.1["code"], code, "{}", answer.1);
}
