//! The fault harness: a bank workload over HTTP against the real `scrip serve` binary on
//! PostgreSQL while a nemesis keeps breaking it, then a checker of what survived.
//!
//! - **Workload**: clients pay random amounts between accounts, each payment with its own
//!   `Idempotency-Key` (and the key as its memo, so the checker can find it). Every answer is
//!   recorded as acknowledged (201), refused (a 4xx: nothing happened) or unknown (a 5xx, a
//!   time-out or a dropped connection: it may or may not have happened).
//! - **Nemesis**: kills the server with SIGKILL and starts it again; through a TCP proxy
//!   between the server and PostgreSQL (and another before Redis) it drops every connection
//!   (what a database restart looks like from the server), pauses all traffic (what SIGSTOP of
//!   the database looks like) and adds latency. The real PostgreSQL is shared with the other
//!   tests running at the same time, so it is never restarted or stopped itself.
//! - **Checker**: once healed, every unknown outcome is resolved by replaying its key (the
//!   stored answer if it happened, the payment now if not); then every acknowledged payment is
//!   there exactly once with the id it was acknowledged with, no refused one is, no key is
//!   there twice, every balance equals the model's, and `scrip audit` (every currency sums to
//!   zero, every account within its limits, nothing held for nothing) is clean.
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
            "amount": format!("{}.{:02}", self.cents / 100, self.cents % 100),
            "memo": self.key,
        })
    }
}

const PEOPLE: usize = 6;
const FUNDING_CENTS: i64 = 20_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payments_survive_kills_dropped_and_paused_connections_exactly_once() {
    let seconds: u64 = std::env::var("SCRIP_FAULTS_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(15);
    let db = tokio::task::spawn_blocking(|| TestDb::new(Backend::Postgres))
        .await
        .expect("test db");
    let database = db.url.as_str().to_owned();
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
        dir: dir.clone(),
        database_url: database.clone(),
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
    let server = Arc::new(Mutex::new(Some(harness.start().await)));

    // A shop funds six people with 200.00 FAULT each.
    let register = |handle: String| {
        let harness = Arc::clone(&harness);
        async move {
            let body = json!({"handle": handle, "password": "correct horse battery"});
            harness
                .must(
                    reqwest::Method::POST,
                    "/api/v1/auth/register",
                    None,
                    body.clone(),
                    None,
                )
                .await;
            let login = harness
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
    };
    let owner = register("fault-owner".into()).await;
    harness
        .must(
            reqwest::Method::POST,
            "/api/v1/businesses",
            Some(&owner),
            json!({"handle": "faultshop", "name": "Fault shop"}),
            None,
        )
        .await;
    harness.must(reqwest::Method::POST, "/api/v1/currencies", Some(&owner), json!({"issuer": "faultshop", "code": "FAULT", "name": "Fault money", "scale": 2, "credit_limit": "100000.00"}), None).await;
    let people: Vec<String> = (0..PEOPLE).map(|i| format!("fault{i}")).collect();
    let mut tokens = Vec::new();
    for person in &people {
        tokens.push(register(person.clone()).await);
        let body =
            json!({"from": "faultshop", "to": person, "currency": "FAULT", "amount": "200.00"});
        harness
            .must(
                reqwest::Method::POST,
                "/api/v1/transfers",
                Some(&owner),
                body,
                Some(&format!("fund-{person}")),
            )
            .await;
    }
    let tokens = Arc::new(tokens);
    let people = Arc::new(people);

    // The workload: four clients paying at random until the time is up.
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut clients = Vec::new();
    for client in 0..4_u64 {
        let (harness, tokens, people) = (
            Arc::clone(&harness),
            Arc::clone(&tokens),
            Arc::clone(&people),
        );
        clients.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(0x5C21_0000 + client);
            let mut tried = Vec::new();
            let mut n = 0;
            while Instant::now() < deadline {
                let from = rng.random_range(0..PEOPLE);
                let to = (from + rng.random_range(1..PEOPLE)) % PEOPLE;
                let mut payment = Payment {
                    key: format!("fault-{client}-{n}"),
                    from,
                    to,
                    cents: rng.random_range(1..=3_000),
                    result: None,
                };
                n += 1;
                let body = payment.body(&people);
                payment.result = match harness
                    .call(
                        reqwest::Method::POST,
                        "/api/v1/transfers",
                        Some(&tokens[from]),
                        Some(&body),
                        Some(&payment.key),
                    )
                    .await
                {
                    Outcome::Done(answer) => {
                        Some(Some(answer["id"].as_str().expect("id").to_owned()))
                    }
                    Outcome::Refused(status, answer) => {
                        // Only a lack of funds refuses these payments; anything else is a bug.
                        assert_eq!(answer["code"], "insufficient_funds", "{status}: {answer}");
                        Some(None)
                    }
                    Outcome::Unknown => None,
                };
                tried.push(payment);
            }
            tried
        }));
    }

    // The nemesis: a fault every second or so, healed before the next one.
    let mut faults: BTreeMap<&'static str, u32> = BTreeMap::new();
    let mut rng = StdRng::seed_from_u64(0xFA17);
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(rng.random_range(700..1_500))).await;
        let fault =
            ["kill", "drop-db", "pause-db", "slow-db", "drop-redis"][rng.random_range(0..5)];
        *faults.entry(fault).or_default() += 1;
        match fault {
            "kill" => {
                let mut running = server.lock().await;
                drop(running.take()); // SIGKILL: no drain, in-flight work lost.
                *running = Some(harness.start().await);
            }
            "drop-db" => postgres.drop_connections(),
            "pause-db" => {
                postgres.set(|f| f.paused = true);
                tokio::time::sleep(Duration::from_millis(1_500)).await;
                postgres.set(|f| f.paused = false);
            }
            "slow-db" => {
                postgres.set(|f| f.latency_ms = 50);
                tokio::time::sleep(Duration::from_millis(1_500)).await;
                postgres.set(|f| f.latency_ms = 0);
            }
            _ => redis.drop_connections(),
        }
    }
    let mut payments = Vec::new();
    for client in clients {
        payments.extend(client.await.expect("client"));
    }

    // Healed: resolve every unknown outcome by replaying its key with the same body.
    let unknown = payments.iter().filter(|p| p.result.is_none()).count();
    for payment in payments.iter_mut().filter(|p| p.result.is_none()) {
        let body = payment.body(&people);
        let answer = loop {
            match harness
                .call(
                    reqwest::Method::POST,
                    "/api/v1/transfers",
                    Some(&tokens[payment.from]),
                    Some(&body),
                    Some(&payment.key),
                )
                .await
            {
                Outcome::Unknown => tokio::time::sleep(Duration::from_millis(200)).await,
                other => break other,
            }
        };
        payment.result = Some(match answer {
            Outcome::Done(answer) => Some(answer["id"].as_str().expect("id").to_owned()),
            Outcome::Refused(status, answer) => {
                assert_eq!(answer["code"], "insufficient_funds", "{status}: {answer}");
                None
            }
            Outcome::Unknown => unreachable!(),
        });
    }

    // The checker: what the ledger holds against what was acknowledged.
    let mut anomalies = Vec::new();
    let mut seen: HashMap<String, Vec<String>> = HashMap::new();
    for (i, person) in people.iter().enumerate() {
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/api/v1/transfers?limit=500&cursor={c}"),
                None => "/api/v1/transfers?limit=500".to_owned(),
            };
            let page = harness.get(&path, &tokens[i]).await;
            for t in page["items"].as_array().expect("items") {
                if t["from"] == person.as_str()
                    && let Some(memo) = t["memo"].as_str()
                {
                    seen.entry(memo.to_owned())
                        .or_default()
                        .push(t["id"].as_str().unwrap_or_default().to_owned());
                }
            }
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
    }
    let mut model = [FUNDING_CENTS; PEOPLE];
    for payment in &payments {
        let found = seen.get(&payment.key).cloned().unwrap_or_default();
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
    for (i, token) in tokens.iter().enumerate() {
        let accounts = harness.get("/api/v1/accounts", token).await;
        let balance = accounts["items"]
            .as_array()
            .expect("items")
            .iter()
            .find(|a| a["currency"] == "FAULT")
            .and_then(|a| a["balance"].as_str())
            .unwrap_or("0.00")
            .replace('.', "")
            .parse::<i64>()
            .expect("cents");
        if balance != model[i] {
            anomalies.push(format!(
                "{} holds {balance} cents, the model {}",
                people[i], model[i]
            ));
        }
    }
    if !harness.audit_clean() {
        anomalies.push("scrip audit failed".into());
    }
    let acknowledged = payments
        .iter()
        .filter(|p| matches!(p.result, Some(Some(_))))
        .count();
    println!(
        "fault harness: {seconds} s, {} payments ({acknowledged} applied, {} refused, {unknown} unknown then resolved), faults {faults:?}, anomalies {}",
        payments.len(),
        payments.len() - acknowledged,
        anomalies.len()
    );
    assert!(anomalies.is_empty(), "{anomalies:#?}");
    assert!(
        faults.values().sum::<u32>() > 0,
        "the nemesis did something"
    );
    drop(server.lock().await.take());
    let _ = std::fs::remove_dir_all(&dir);
}
