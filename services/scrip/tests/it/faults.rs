//! The fault harness: a bank and an exchange workload over HTTP against the real `scrip serve` binary on
//! PostgreSQL while a nemesis keeps breaking it, then a checker of what survived.
//!
//! - **Workload**: bank clients pay random amounts of FAULT between six people, exchange
//!   clients place limit orders on GOODS-WARE around one price (so they trade) and cancel
//!   some; every payment and order has its own `Idempotency-Key` (and the key as its memo or
//!   `client_order_id`, so the checker can find it); a converting client pays people GOODS
//!   bought with WARE through the book in the same payment (`POST /api/v1/payments`, holding
//!   WARE only, its key as the memo). Every answer is recorded as acknowledged
//!   (201), refused (a 4xx: nothing happened) or unknown (a 5xx, a time-out or a dropped
//!   connection: it may or may not have happened).
//! - **Nemesis**: kills the server with SIGKILL and starts it again; through a TCP proxy
//!   between the server and PostgreSQL (and another before Redis) it drops every connection
//!   (what a database restart looks like from the server), pauses all traffic (what SIGSTOP of
//!   the database looks like) and adds latency. The real PostgreSQL is shared with the other
//!   tests running at the same time, so by default it is never restarted or stopped itself;
//!   with `SCRIP_FAULTS_REAL_POSTGRES=1` (a run on a machine of its own) the nemesis also
//!   restarts it (`pg_ctlcluster restart`) and stops it (SIGSTOP of every postgres process).
//! - **Checker**: once healed, every unknown outcome is resolved by replaying its key (the
//!   stored answer if it happened, the payment now if not); then every acknowledged payment is
//!   there exactly once with the id it was acknowledged with, no refused one is, no key is
//!   there twice, every FAULT balance equals the model's; so for converted payments (a payment
//!   half applied would show as GOODS or WARE made or lost); every acknowledged order is on the
//!   books exactly once; once every open order is cancelled nothing stays held and no GOODS
//!   or WARE was made or lost; and `scrip audit` (every currency sums to zero, every account
//!   within its limits, holds consistent) is clean.
//!
//! `SCRIP_FAULTS_SECONDS` sets how long the workload runs (default 15 in CI; the README's
//! RELIABILITY figures come from a long run).

use std::collections::{BTreeMap, HashMap};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::{Client, StatusCode};
use scrip_store::Backend;
use scrip_store::test_support::TestDb;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Mutex, watch};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// What the proxy does to the traffic now.
#[derive(Debug, Clone, Copy, Default)]
struct Faults {
    /// Bumped to drop every open connection.
    generation: u64,
    paused: bool,
    latency_ms: u64,
}

/// A TCP proxy in front of a real server whose traffic the nemesis breaks.
struct ChaosProxy {
    port: u16,
    faults: watch::Sender<Faults>,
}

impl ChaosProxy {
    async fn start(target: &'static str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("proxy port");
        let port = listener.local_addr().expect("addr").port();
        let (faults, watching) = watch::channel(Faults::default());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let watching = watching.clone();
                tokio::spawn(async move {
                    let Ok(server) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    tokio::select! {
                        () = pipe(client_read, server_write, watching.clone()) => {}
                        () = pipe(server_read, client_write, watching) => {}
                    }
                });
            }
        });
        Self { port, faults }
    }

    fn set(&self, change: impl FnOnce(&mut Faults)) {
        self.faults.send_modify(change);
    }

    fn drop_connections(&self) {
        self.set(|f| f.generation += 1);
    }
}

/// Copies one direction until either side closes or the connections are dropped, holding
/// data while paused and delaying it by the latency.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut faults: watch::Receiver<Faults>,
) {
    let generation = faults.borrow().generation;
    let mut buffer = vec![0_u8; 16 * 1024];
    loop {
        let read = tokio::select! {
            read = from.read(&mut buffer) => read,
            _ = faults.wait_for(|f| f.generation != generation) => return,
        };
        let Ok(n @ 1..) = read else { return };
        loop {
            let now = *faults.borrow();
            if now.generation != generation {
                return;
            }
            if now.paused {
                if faults.changed().await.is_err() {
                    return;
                }
                continue;
            }
            if now.latency_ms > 0 {
                tokio::time::sleep(Duration::from_millis(now.latency_ms)).await;
            }
            break;
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}

/// The server process; killed when dropped.
struct Server {
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Harness {
    dir: PathBuf,
    database_url: String,
    /// The database as the server sees it: through the proxy.
    proxied_url: String,
    redis_url: String,
    port: u16,
    base: String,
    client: Client,
    starts: AtomicU64,
}

impl Harness {
    fn command(&self, database_url: &str) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_scrip"));
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", database_url)
            .env("REDIS_URL", &self.redis_url)
            .env("SCRIP_REDIS_PREFIX", format!("scrip-faults:{}:", self.port))
            .env("SCRIP_DATA_DIR", self.dir.join("data"))
            .env("SCRIP_LISTEN", format!("127.0.0.1:{}", self.port))
            .env("SCRIP_LOGIN_PER_MINUTE", "10000")
            .env("SCRIP_LOGIN_PER_ADDRESS_PER_MINUTE", "10000")
            .env("SCRIP_SIGNUP_PER_MINUTE", "10000")
            .env("SCRIP_PAYMENTS_PER_MINUTE", "1000000")
            .env("SCRIP_TOKEN_TTL_S", "86400")
            .env("RUST_LOG", "warn");
        command
    }

    /// Starts the server and waits until it answers (the database may be broken at that
    /// moment: it keeps trying for a while).
    async fn start(&self) -> Server {
        let n = self.starts.fetch_add(1, Ordering::Relaxed);
        let log = std::fs::File::create(self.dir.join(format!("server-{n}.log"))).expect("log");
        let child = self
            .command(&self.proxied_url)
            .arg("serve")
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("scrip starts");
        let server = Server { child };
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(60) {
            let ready = self
                .client
                .get(format!("{}/readyz", self.base))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|r| r.status() == StatusCode::OK);
            if ready {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "the server did not become ready; see {}",
            self.dir.display()
        );
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        key: Option<&str>,
    ) -> Outcome {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .timeout(Duration::from_secs(5));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        match request.send().await {
            Ok(response) => {
                let status = response.status();
                let body = response.json().await.unwrap_or(Value::Null);
                if status.is_success() {
                    Outcome::Done(body)
                } else if status.is_client_error() && status != StatusCode::TOO_MANY_REQUESTS {
                    Outcome::Refused(status, body)
                } else {
                    Outcome::Unknown
                }
            }
            Err(_) => Outcome::Unknown,
        }
    }

    /// A request that must succeed once the system is healed (retried until then).
    async fn must(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Value,
        key: Option<&str>,
    ) -> Value {
        for _ in 0..100 {
            match self
                .call(method.clone(), path, token, Some(&body), key)
                .await
            {
                Outcome::Done(answer) => return answer,
                Outcome::Refused(status, answer) => panic!("{path}: {status} {answer}"),
                Outcome::Unknown => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
        panic!("{path} never answered");
    }

    async fn register(&self, handle: &str) -> String {
        let body = json!({"handle": handle, "password": "correct horse battery"});
        self.must(
            reqwest::Method::POST,
            "/api/v1/auth/register",
            None,
            body.clone(),
            None,
        )
        .await;
        let login = self
            .must(
                reqwest::Method::POST,
                "/api/v1/auth/login",
                None,
                body,
                None,
            )
            .await;
        login["access_token"].as_str().expect("token").to_owned()
    }

    /// A setup step (before the nemesis starts: nothing breaks it).
    async fn post_ok(&self, path: &str, token: &str, body: Value) -> Value {
        self.must(reqwest::Method::POST, path, Some(token), body, None)
            .await
    }

    /// Cancels an order, retrying until the answer is definite (a cancel may be repeated).
    async fn cancel(&self, id: &str, token: &str) {
        let path = format!("/api/v1/orders/{id}");
        for _ in 0..100 {
            match self
                .call(reqwest::Method::DELETE, &path, Some(token), None, None)
                .await
            {
                Outcome::Done(_) | Outcome::Refused(..) => return,
                Outcome::Unknown => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
        panic!("cannot cancel order {id}");
    }

    async fn get(&self, path: &str, token: &str) -> Value {
        for _ in 0..100 {
            if let Outcome::Done(answer) = self
                .call(reqwest::Method::GET, path, Some(token), None, None)
                .await
            {
                return answer;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("GET {path} never answered");
    }

    fn audit_clean(&self) -> bool {
        self.command(&self.database_url)
            .arg("audit")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("scrip audit runs")
            .success()
    }
}

#[derive(Debug)]
enum Outcome {
    Done(Value),
    Refused(StatusCode, Value),
    Unknown,
}

/// One payment the workload tried.
#[derive(Debug, Clone)]
struct Payment {
    key: String,
    from: usize,
    to: usize,
    cents: i64,
    /// The acknowledged transfer id, `None` when refused, unknown until resolved.
    result: Option<Option<String>>,
}

impl Payment {
    fn body(&self, people: &[String]) -> Value {
        json!({
            "to": people[self.to],
            "currency": "FAULT",
            "amount": cents(self.cents),
            "memo": self.key,
        })
    }
}

/// One order the exchange workload tried (its key is also its `client_order_id`).
#[derive(Debug, Clone)]
struct Order {
    key: String,
    owner: usize,
    body: Value,
    /// The acknowledged order id, `None` when refused, unknown until resolved.
    result: Option<Option<String>>,
}

/// One converted payment the workload tried (its key is also its memo).
#[derive(Debug, Clone)]
struct Conversion {
    key: String,
    body: Value,
    /// The acknowledged payment id, `None` when refused, unknown until resolved.
    result: Option<Option<String>>,
}

fn cents(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

const PEOPLE: usize = 6;
/// What each person gets of each currency at the start, in cents.
const FUNDING_CENTS: i64 = 20_000;
/// Bank clients pay FAULT to each other; exchange clients trade GOODS for WARE.
const BANK_CLIENTS: u64 = 3;
const EXCHANGE_CLIENTS: u64 = 2;
/// Who pays people GOODS converted from WARE through the book (`POST /api/v1/payments`); it
/// holds WARE only, so every payment of its converts.
const CONVERTER: &str = "faultbuyer";
/// What a converted payment may be refused for: the book too thin, or WARE spent.
const CONVERSION_REFUSALS: [&str; 2] = ["no_route", "insufficient_funds"];

/// The people, their tokens, and the running system.
struct World {
    harness: Arc<Harness>,
    server: Mutex<Option<Server>>,
    postgres: ChaosProxy,
    redis: ChaosProxy,
    people: Vec<String>,
    tokens: Vec<String>,
    /// [`CONVERTER`]'s token.
    converter: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payments_and_orders_survive_kills_dropped_and_paused_connections_exactly_once() {
    let seconds: u64 = std::env::var("SCRIP_FAULTS_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(15);
    let db = tokio::task::spawn_blocking(|| TestDb::new(Backend::Postgres))
        .await
        .expect("test db");
    let world = Arc::new(World::start(db.url.as_str()).await);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let bank: Vec<_> = (0..BANK_CLIENTS)
        .map(|client| tokio::spawn(bank_client(Arc::clone(&world), client, deadline)))
        .collect();
    let exchange: Vec<_> = (0..EXCHANGE_CLIENTS)
        .map(|client| tokio::spawn(exchange_client(Arc::clone(&world), client, deadline)))
        .collect();
    let converter = tokio::spawn(converting_client(Arc::clone(&world), deadline));
    let faults = nemesis(&world, deadline).await;
    let mut payments = Vec::new();
    for client in bank {
        payments.extend(client.await.expect("bank client"));
    }
    let mut orders = Vec::new();
    for client in exchange {
        orders.extend(client.await.expect("exchange client"));
    }
    let mut conversions = converter.await.expect("converting client");

    // Healed: resolve every unknown outcome by replaying its key, then check.
    let unknown = payments.iter().filter(|p| p.result.is_none()).count()
        + orders.iter().filter(|o| o.result.is_none()).count()
        + conversions.iter().filter(|c| c.result.is_none()).count();
    world.resolve_payments(&mut payments).await;
    world.resolve_orders(&mut orders).await;
    world.resolve_conversions(&mut conversions).await;
    let mut anomalies = world.check_payments(&payments).await;
    anomalies.extend(world.check_conversions(&conversions).await);
    anomalies.extend(world.check_orders(&orders).await);
    if !world.harness.audit_clean() {
        anomalies.push("scrip audit failed".into());
    }
    println!(
        "fault harness: {seconds} s, {} payments ({} applied), {} converted ({} made), {} orders ({} placed), {unknown} outcomes unknown then resolved, faults {faults:?}, anomalies {}",
        payments.len(),
        payments
            .iter()
            .filter(|p| matches!(p.result, Some(Some(_))))
            .count(),
        conversions.len(),
        conversions
            .iter()
            .filter(|c| matches!(c.result, Some(Some(_))))
            .count(),
        orders.len(),
        orders
            .iter()
            .filter(|o| matches!(o.result, Some(Some(_))))
            .count(),
        anomalies.len()
    );
    assert!(anomalies.is_empty(), "{anomalies:#?}");
    assert!(
        faults.values().sum::<u32>() > 0,
        "the nemesis did something"
    );
    drop(world.server.lock().await.take());
    let _ = std::fs::remove_dir_all(&world.harness.dir);
}

impl World {
    /// The server behind its proxies; a shop issuing FAULT and two issuing GOODS and WARE,
    /// each funding six people with 200.00; the market GOODS-WARE (no fee).
    async fn start(database: &str) -> Self {
        let database_name = database
            .rsplit('/')
            .next()
            .and_then(|tail| tail.split('?').next())
            .expect("database name")
            .to_owned();
        let postgres = ChaosProxy::start("127.0.0.1:5432").await;
        let redis = ChaosProxy::start("127.0.0.1:6379").await;
        let dir = std::env::temp_dir().join(format!("scrip-faults-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let port = free_port();
        let harness = Arc::new(Harness {
            dir,
            database_url: database.to_owned(),
            proxied_url: format!(
                "postgres://postgres@127.0.0.1:{}/{database_name}?sslmode=disable",
                postgres.port
            ),
            redis_url: format!("redis://127.0.0.1:{}", redis.port),
            port,
            base: format!("http://127.0.0.1:{port}"),
            client: Client::new(),
            starts: AtomicU64::new(0),
        });
        let server = Mutex::new(Some(harness.start().await));
        let owner = harness.register("fault-owner").await;
        for (shop, code) in [
            ("faultshop", "FAULT"),
            ("goodshop", "GOODS"),
            ("wareshop", "WARE"),
        ] {
            harness
                .post_ok(
                    "/api/v1/businesses",
                    &owner,
                    json!({"handle": shop, "name": shop}),
                )
                .await;
            harness.post_ok("/api/v1/currencies", &owner, json!({"issuer": shop, "code": code, "name": code, "scale": 2, "credit_limit": "100000.00"})).await;
        }
        harness.post_ok("/api/v1/markets", &owner, json!({"base": "GOODS", "quote": "WARE", "tick_size": "0.01", "lot_size": "1.00", "fee_bps": 0})).await;
        let people: Vec<String> = (0..PEOPLE).map(|i| format!("fault{i}")).collect();
        let mut tokens = Vec::new();
        for person in &people {
            tokens.push(harness.register(person).await);
            for (shop, code) in [
                ("faultshop", "FAULT"),
                ("goodshop", "GOODS"),
                ("wareshop", "WARE"),
            ] {
                let body = json!({"from": shop, "to": person, "currency": code, "amount": cents(FUNDING_CENTS)});
                let key = format!("fund-{person}-{code}");
                harness
                    .must(
                        reqwest::Method::POST,
                        "/api/v1/transfers",
                        Some(&owner),
                        body,
                        Some(&key),
                    )
                    .await;
            }
        }
        let converter = harness.register(CONVERTER).await;
        let body = json!({"from": "wareshop", "to": CONVERTER, "currency": "WARE", "amount": cents(FUNDING_CENTS)});
        harness
            .must(
                reqwest::Method::POST,
                "/api/v1/transfers",
                Some(&owner),
                body,
                Some("fund-converter"),
            )
            .await;
        Self {
            harness,
            server,
            postgres,
            redis,
            people,
            tokens,
            converter,
        }
    }
}

/// Pays random amounts between random people until `deadline`.
async fn bank_client(world: Arc<World>, client: u64, deadline: Instant) -> Vec<Payment> {
    let mut rng = StdRng::seed_from_u64(0x5C21_0000 + client);
    let mut tried = Vec::new();
    while Instant::now() < deadline {
        let from = rng.random_range(0..PEOPLE);
        let mut payment = Payment {
            key: format!("pay-{client}-{}", tried.len()),
            from,
            to: (from + rng.random_range(1..PEOPLE)) % PEOPLE,
            cents: rng.random_range(1..=3_000),
            result: None,
        };
        let body = payment.body(&world.people);
        let outcome = world
            .harness
            .call(
                reqwest::Method::POST,
                "/api/v1/transfers",
                Some(&world.tokens[from]),
                Some(&body),
                Some(&payment.key),
            )
            .await;
        payment.result = definite(outcome, "insufficient_funds");
        tried.push(payment);
    }
    tried
}

/// Places limit orders around 1.00 (some trade, some rest) and cancels some of its own,
/// until `deadline`.
async fn exchange_client(world: Arc<World>, client: u64, deadline: Instant) -> Vec<Order> {
    let mut rng = StdRng::seed_from_u64(0xE8C4_0000 + client);
    let mut tried: Vec<Order> = Vec::new();
    while Instant::now() < deadline {
        let owner = rng.random_range(0..PEOPLE);
        if rng.random_range(0..4) == 0
            && let Some(Some(id)) = tried
                .iter()
                .rev()
                .find(|o| o.owner == owner)
                .and_then(|o| o.result.clone())
        {
            // A cancel is safe to repeat: its outcome needs no resolving.
            let path = format!("/api/v1/orders/{id}");
            let _ = world
                .harness
                .call(
                    reqwest::Method::DELETE,
                    &path,
                    Some(&world.tokens[owner]),
                    None,
                    None,
                )
                .await;
            continue;
        }
        let key = format!("order-{client}-{}", tried.len());
        let side = if rng.random_bool(0.5) { "buy" } else { "sell" };
        let price = cents(rng.random_range(90..=110));
        let body = json!({"market": "GOODS-WARE", "side": side, "type": "limit", "price": price, "quantity": format!("{}.00", rng.random_range(1..=5)), "client_order_id": key});
        let outcome = world
            .harness
            .call(
                reqwest::Method::POST,
                "/api/v1/orders",
                Some(&world.tokens[owner]),
                Some(&body),
                Some(&key),
            )
            .await;
        let result = definite(outcome, "insufficient_funds");
        tried.push(Order {
            key,
            owner,
            body,
            result,
        });
    }
    tried
}

/// A definite outcome: the created id, or `None` for the one refusal the workload expects
/// (a lack of funds; anything else refused is a bug); unknown stays unknown.
fn definite(outcome: Outcome, expected_refusal: &str) -> Option<Option<String>> {
    definite_of(outcome, &[expected_refusal])
}

/// [`definite`] for a request that may be refused for any of `expected`.
fn definite_of(outcome: Outcome, expected: &[&str]) -> Option<Option<String>> {
    match outcome {
        Outcome::Done(answer) => Some(Some(answer["id"].as_str().expect("id").to_owned())),
        Outcome::Refused(status, answer) => {
            let code = answer["code"].as_str().unwrap_or_default();
            assert!(expected.contains(&code), "{status}: {answer}");
            Some(None)
        }
        Outcome::Unknown => None,
    }
}

/// Pays random people GOODS bought with WARE through the book, until `deadline`.
async fn converting_client(world: Arc<World>, deadline: Instant) -> Vec<Conversion> {
    let mut rng = StdRng::seed_from_u64(0xC0DE_0000);
    let mut tried = Vec::new();
    while Instant::now() < deadline {
        let key = format!("conv-{}", tried.len());
        let to = &world.people[rng.random_range(0..PEOPLE)];
        let body = json!({"to": to, "currency": "GOODS", "amount": format!("{}.00", rng.random_range(1..=3)), "pay_with": ["WARE"], "max_hops": 1, "memo": key});
        let outcome = world
            .harness
            .call(
                reqwest::Method::POST,
                "/api/v1/payments",
                Some(&world.converter),
                Some(&body),
                Some(&key),
            )
            .await;
        let result = definite_of(outcome, &CONVERSION_REFUSALS);
        tried.push(Conversion { key, body, result });
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tried
}

/// A fault every second or so, each healed before the next, until `deadline`.
async fn nemesis(world: &World, deadline: Instant) -> BTreeMap<&'static str, u32> {
    let mut faults: BTreeMap<&'static str, u32> = BTreeMap::new();
    let mut rng = StdRng::seed_from_u64(0xFA17);
    let mut kinds = vec!["kill", "drop-db", "pause-db", "slow-db", "drop-redis"];
    if real_postgres_faults() {
        kinds.extend(["restart-postgres", "stop-postgres"]);
    }
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(rng.random_range(700..1_500))).await;
        let fault = kinds[rng.random_range(0..kinds.len())];
        *faults.entry(fault).or_default() += 1;
        match fault {
            "kill" => {
                let mut running = world.server.lock().await;
                drop(running.take()); // SIGKILL: no drain, in-flight work lost.
                *running = Some(world.harness.start().await);
            }
            "drop-db" => world.postgres.drop_connections(),
            "pause-db" => {
                world.postgres.set(|f| f.paused = true);
                tokio::time::sleep(Duration::from_millis(1_500)).await;
                world.postgres.set(|f| f.paused = false);
            }
            "slow-db" => {
                world.postgres.set(|f| f.latency_ms = 50);
                tokio::time::sleep(Duration::from_millis(1_500)).await;
                world.postgres.set(|f| f.latency_ms = 0);
            }
            "restart-postgres" => postgres_cluster("restart").await,
            "stop-postgres" => {
                signal_postgres("-STOP").await;
                tokio::time::sleep(Duration::from_millis(1_500)).await;
                signal_postgres("-CONT").await;
            }
            _ => world.redis.drop_connections(),
        }
    }
    faults
}

/// `SCRIP_FAULTS_REAL_POSTGRES=1`: the nemesis also restarts the real PostgreSQL and stops
/// it (SIGSTOP of every postgres process) for 1.5 s. Only for a run on a machine of its own:
/// every other user of that PostgreSQL (the tests beside this one) breaks with it.
fn real_postgres_faults() -> bool {
    std::env::var("SCRIP_FAULTS_REAL_POSTGRES").is_ok_and(|v| v == "1")
}

async fn postgres_cluster(action: &'static str) {
    tokio::task::spawn_blocking(move || {
        let version = std::fs::read_dir("/etc/postgresql")
            .expect("a Debian PostgreSQL cluster")
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .next()
            .expect("a version");
        let status = Command::new("pg_ctlcluster")
            .args(["--skip-systemctl-redirect", &version, "main", action])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("pg_ctlcluster runs");
        assert!(status.success(), "pg_ctlcluster {action}");
    })
    .await
    .expect("pg_ctlcluster task");
}

async fn signal_postgres(signal: &'static str) {
    tokio::task::spawn_blocking(move || {
        let _ = Command::new("pkill")
            .args([signal, "-x", "postgres"])
            .status();
    })
    .await
    .expect("pkill task");
}

impl World {
    /// Replays (same key, same body) until the answer is definite.
    async fn replay(&self, path: &str, owner: usize, body: &Value, key: &str) -> Option<String> {
        self.replay_as(
            path,
            &self.tokens[owner],
            body,
            key,
            &["insufficient_funds"],
        )
        .await
    }

    /// Sends the request again with its key until the outcome is definite.
    async fn replay_as(
        &self,
        path: &str,
        token: &str,
        body: &Value,
        key: &str,
        refusals: &[&str],
    ) -> Option<String> {
        loop {
            let outcome = self
                .harness
                .call(
                    reqwest::Method::POST,
                    path,
                    Some(token),
                    Some(body),
                    Some(key),
                )
                .await;
            if let Some(result) = definite_of(outcome, refusals) {
                return result;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn resolve_conversions(&self, conversions: &mut [Conversion]) {
        for conversion in conversions.iter_mut().filter(|c| c.result.is_none()) {
            conversion.result = Some(
                self.replay_as(
                    "/api/v1/payments",
                    &self.converter,
                    &conversion.body,
                    &conversion.key,
                    &CONVERSION_REFUSALS,
                )
                .await,
            );
        }
    }

    /// Every acknowledged converted payment is in the recipients' journals exactly once with
    /// its id, and no refused one is (the GOODS and WARE totals are checked with the orders).
    async fn check_conversions(&self, conversions: &[Conversion]) -> Vec<String> {
        let mut seen: HashMap<String, Vec<String>> = HashMap::new();
        for owner in 0..PEOPLE {
            for t in self.all("/api/v1/transfers?currency=GOODS", owner).await {
                if t["from"] == CONVERTER
                    && let Some(memo) = t["memo"].as_str()
                {
                    seen.entry(memo.to_owned())
                        .or_default()
                        .push(t["id"].as_str().unwrap_or_default().to_owned());
                }
            }
        }
        let mut anomalies = Vec::new();
        for conversion in conversions {
            let found = seen.remove(&conversion.key).unwrap_or_default();
            match conversion.result.as_ref().expect("resolved") {
                Some(id) if found == [id.clone()] => {}
                Some(id) => anomalies.push(format!(
                    "{} acknowledged as {id}, in the ledger {found:?}",
                    conversion.key
                )),
                None if !found.is_empty() => anomalies.push(format!(
                    "{} refused, in the ledger {found:?}",
                    conversion.key
                )),
                None => {}
            }
        }
        anomalies.extend(
            seen.keys()
                .map(|k| format!("{k} in the ledger, never sent")),
        );
        anomalies
    }

    async fn resolve_payments(&self, payments: &mut [Payment]) {
        for payment in payments.iter_mut().filter(|p| p.result.is_none()) {
            let body = payment.body(&self.people);
            payment.result = Some(
                self.replay("/api/v1/transfers", payment.from, &body, &payment.key)
                    .await,
            );
        }
    }

    async fn resolve_orders(&self, orders: &mut [Order]) {
        for order in orders.iter_mut().filter(|o| o.result.is_none()) {
            order.result = Some(
                self.replay("/api/v1/orders", order.owner, &order.body, &order.key)
                    .await,
            );
        }
    }

    /// Every item of a paged list.
    async fn all(&self, path: &str, owner: usize) -> Vec<Value> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let separator = if path.contains('?') { '&' } else { '?' };
            let page_path = match &cursor {
                Some(c) => format!("{path}{separator}limit=500&cursor={c}"),
                None => format!("{path}{separator}limit=500"),
            };
            let page = self.harness.get(&page_path, &self.tokens[owner]).await;
            items.extend(page["items"].as_array().expect("items").iter().cloned());
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return items,
            }
        }
    }

    /// Cents of `currency` each person holds (balance, held).
    async fn holdings(&self, currency: &str) -> Vec<(i64, i64)> {
        let mut out = Vec::new();
        for owner in 0..PEOPLE {
            out.push(self.holding(&self.tokens[owner], currency).await);
        }
        out
    }

    /// Cents of `currency` the holder of `token` holds (balance, held).
    async fn holding(&self, token: &str, currency: &str) -> (i64, i64) {
        {
            let accounts = self.harness.get("/api/v1/accounts", token).await;
            let account = accounts["items"]
                .as_array()
                .expect("items")
                .iter()
                .find(|a| a["currency"] == currency)
                .cloned();
            let field = |name: &str| {
                account
                    .as_ref()
                    .and_then(|a| a[name].as_str())
                    .unwrap_or("0.00")
                    .replace('.', "")
                    .parse::<i64>()
                    .expect("cents")
            };
            (field("balance"), field("held"))
        }
    }

    /// Every acknowledged payment exactly once with its id, no refused one, and every FAULT
    /// balance equal to the model's.
    async fn check_payments(&self, payments: &[Payment]) -> Vec<String> {
        let mut seen: HashMap<String, Vec<String>> = HashMap::new();
        for (owner, person) in self.people.iter().enumerate() {
            for t in self.all("/api/v1/transfers?currency=FAULT", owner).await {
                if t["from"] == person.as_str()
                    && let Some(memo) = t["memo"].as_str()
                {
                    seen.entry(memo.to_owned())
                        .or_default()
                        .push(t["id"].as_str().unwrap_or_default().to_owned());
                }
            }
        }
        let mut anomalies = Vec::new();
        let mut model = [FUNDING_CENTS; PEOPLE];
        for payment in payments {
            let found = seen.remove(&payment.key).unwrap_or_default();
            match payment.result.as_ref().expect("resolved") {
                Some(id) if found == [id.clone()] => {
                    model[payment.from] -= payment.cents;
                    model[payment.to] += payment.cents;
                }
                Some(id) => anomalies.push(format!(
                    "{} acknowledged as {id}, in the ledger {found:?}",
                    payment.key
                )),
                None if !found.is_empty() => {
                    anomalies.push(format!("{} refused, in the ledger {found:?}", payment.key))
                }
                None => {}
            }
        }
        anomalies.extend(
            seen.keys()
                .filter(|k| k.starts_with("pay-"))
                .map(|k| format!("{k} in the ledger, never sent")),
        );
        for (owner, (balance, _)) in self.holdings("FAULT").await.into_iter().enumerate() {
            if balance != model[owner] {
                anomalies.push(format!(
                    "{} holds {balance} FAULT cents, the model {}",
                    self.people[owner], model[owner]
                ));
            }
        }
        anomalies
    }

    /// Every acknowledged order exactly once with its id, no refused one; once every open
    /// order is cancelled nothing stays held, and no GOODS or WARE was made or lost.
    async fn check_orders(&self, orders: &[Order]) -> Vec<String> {
        let mut anomalies = Vec::new();
        let mut seen: HashMap<String, Vec<String>> = HashMap::new();
        for owner in 0..PEOPLE {
            for order in self.all("/api/v1/orders", owner).await {
                if let Some(key) = order["client_order_id"].as_str() {
                    seen.entry(key.to_owned())
                        .or_default()
                        .push(order["id"].as_str().unwrap_or_default().to_owned());
                }
                if matches!(order["status"].as_str(), Some("open" | "partially_filled")) {
                    let id = order["id"].as_str().unwrap_or_default();
                    self.harness.cancel(id, &self.tokens[owner]).await;
                }
            }
        }
        for order in orders {
            let found = seen.get(&order.key).cloned().unwrap_or_default();
            match order.result.as_ref().expect("resolved") {
                Some(id) if found == [id.clone()] => {}
                Some(id) => anomalies.push(format!(
                    "{} acknowledged as {id}, on the books {found:?}",
                    order.key
                )),
                None if !found.is_empty() => {
                    anomalies.push(format!("{} refused, on the books {found:?}", order.key))
                }
                None => {}
            }
        }
        for (currency, funded) in [
            ("GOODS", FUNDING_CENTS * PEOPLE as i64),
            ("WARE", FUNDING_CENTS * (PEOPLE as i64 + 1)),
        ] {
            let holdings = self.holdings(currency).await;
            let (converter, converter_held) = self.holding(&self.converter, currency).await;
            let total: i64 = holdings.iter().map(|(balance, _)| balance).sum::<i64>() + converter;
            if total != funded {
                anomalies.push(format!(
                    "{currency}: people and {CONVERTER} hold {total} cents in all, funded {funded}"
                ));
            }
            if converter_held != 0 {
                anomalies.push(format!(
                    "{CONVERTER} has {converter_held} {currency} cents held"
                ));
            }
            for (owner, (_, held)) in holdings.into_iter().enumerate() {
                if held != 0 {
                    anomalies.push(format!(
                        "{} has {held} {currency} cents held with no open order",
                        self.people[owner]
                    ));
                }
            }
        }
        anomalies
    }
}
