//! The production topology as separate processes of the real binary on this machine:
//! PostgreSQL, Redis, two gateways, issuer, wallet, clearing and two order-book processes.
//! Trades go through it; the process that owns the market is killed with SIGKILL mid-trading;
//! the other serves the market within 10 s; no acknowledged order, trade or transfer is lost;
//! `scrip audit` is clean; a WebSocket client on the other gateway sees a gapless sequence.
//!
//! The test plays the load balancer: each path goes to the service that owns it, and an order
//! refused with 503 by one order-book process is retried on the other (what nginx's
//! `proxy_next_upstream http_503` does in deploy/).

use std::collections::HashSet;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use reqwest::{Client, Method, StatusCode};
use scrip_store::Backend;
use scrip_store::test_support::TestDb;
use serde_json::{Value, json};

use crate::app::redis_url;

/// A service process, killed when dropped.
struct Process {
    name: &'static str,
    child: Child,
    base: String,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

struct Topology {
    dir: PathBuf,
    database_url: String,
    prefix: String,
    client: Client,
}

impl Topology {
    fn scrip(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_scrip"));
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", &self.database_url)
            .env("REDIS_URL", redis_url())
            .env("SCRIP_REDIS_PREFIX", &self.prefix)
            .env("SCRIP_DATA_DIR", self.dir.join("data"))
            .env(
                "SCRIP_JWT_PUBLIC_KEY_FILE",
                self.dir.join("keys/jwt-ed25519-public.pem"),
            )
            .env("SCRIP_LOGIN_PER_MINUTE", "10000")
            .env("SCRIP_LOGIN_PER_ADDRESS_PER_MINUTE", "10000")
            .env("SCRIP_SIGNUP_PER_MINUTE", "10000")
            .env("SCRIP_PAYMENTS_PER_MINUTE", "100000")
            .env("RUST_LOG", "info");
        command
    }

    async fn start(&self, name: &'static str, service: &str) -> Process {
        let port = free_port();
        let log = std::fs::File::create(self.dir.join(format!("{name}.log"))).expect("log file");
        let mut command = self.scrip();
        command
            .args(["serve", service])
            .env("SCRIP_LISTEN", format!("127.0.0.1:{port}"))
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        if service == "gateway" {
            command.env(
                "SCRIP_JWT_PRIVATE_KEY_FILE",
                self.dir.join("keys/jwt-ed25519-private.pem"),
            );
        }
        let child = command.spawn().expect("scrip starts");
        let process = Process {
            name,
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let started = Instant::now();
        loop {
            let ready = self
                .client
                .get(format!("{}/readyz", process.base))
                .send()
                .await
                .map(|r| r.status() == StatusCode::OK)
                .unwrap_or(false);
            if ready {
                return process;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{name} did not become ready; see {}",
                self.dir.join(format!("{name}.log")).display()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The routes of deploy/proxy/nginx.conf.
struct Router<'a> {
    client: &'a Client,
    gateway: &'a Process,
    issuer: &'a Process,
    wallet: &'a Process,
    clearing: &'a Process,
    orderbooks: Vec<&'a Process>,
}

impl Router<'_> {
    fn targets(&self, path: &str) -> Vec<&Process> {
        let api = path.strip_prefix("/api/v1/").unwrap_or("");
        if api.starts_with("clearing") || api.starts_with("obligations") {
            vec![self.clearing]
        } else if api.starts_with("businesses")
            || api.starts_with("currencies")
            || api.starts_with("proposals")
        {
            vec![self.issuer]
        } else if api.starts_with("accounts") || api.starts_with("transfers") {
            vec![self.wallet]
        } else if api.starts_with("orders")
            || (api.starts_with("markets") && !path.ends_with("/stream"))
        {
            self.orderbooks.clone()
        } else {
            vec![self.gateway]
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let mut last = (StatusCode::SERVICE_UNAVAILABLE, Value::Null);
        for target in self.targets(path) {
            let mut request = self
                .client
                .request(method.clone(), format!("{}{path}", target.base));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            let Ok(response) = request.send().await else {
                continue; // a dead process: the balancer tries the next one
            };
            let status = response.status();
            let body = response.json().await.unwrap_or(Value::Null);
            if status != StatusCode::SERVICE_UNAVAILABLE {
                return (status, body);
            }
            last = (status, body);
        }
        last
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(token), Some(&body))
            .await
    }

    async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(token), None).await
    }

    async fn user(&self, handle: &str) -> String {
        let body = json!({"handle": handle, "password": "correct horse battery"});
        let (status, answer) = self
            .call(Method::POST, "/api/v1/auth/register", None, Some(&body))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        let (status, answer) = self
            .call(Method::POST, "/api/v1/auth/login", None, Some(&body))
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        answer["access_token"].as_str().expect("token").to_owned()
    }
}

fn audit(topology: &Topology) -> bool {
    topology
        .scrip()
        .arg("audit")
        .stdout(Stdio::null())
        .status()
        .expect("scrip audit runs")
        .success()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn separate_processes_survive_an_order_book_killed_mid_trading() {
    let db = tokio::task::spawn_blocking(|| TestDb::new(Backend::Postgres))
        .await
        .expect("db");
    let dir = std::env::temp_dir().join(format!("scrip-topology-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let topology = Topology {
        dir: dir.clone(),
        database_url: db.url.as_str().to_owned(),
        prefix: format!("scrip-topology:{}:", std::process::id()),
        client: Client::new(),
    };
    let made = topology
        .scrip()
        .args(["admin", "keys"])
        .arg(dir.join("keys"))
        .status()
        .expect("keys");
    assert!(made.success());
    let migrated = topology.scrip().arg("migrate").status().expect("migrate");
    assert!(migrated.success());

    let gateway = topology.start("gateway-1", "gateway").await;
    let other_gateway = topology.start("gateway-2", "gateway").await;
    let issuer = topology.start("issuer", "issuer").await;
    let wallet = topology.start("wallet", "wallet").await;
    let clearing = topology.start("clearing", "clearing").await;
    let book_a = topology.start("orderbook-a", "orderbook").await;
    let book_b = topology.start("orderbook-b", "orderbook").await;
    for process in [
        &gateway,
        &other_gateway,
        &issuer,
        &wallet,
        &clearing,
        &book_b,
    ] {
        let ready: Value = topology
            .client
            .get(format!("{}/readyz", process.base))
            .send()
            .await
            .expect("readyz")
            .json()
            .await
            .expect("json");
        assert_eq!(ready["redis"], "ok", "{}: {ready}", process.name);
    }

    // The balancer in front of every process; a killed process is skipped, as nginx does.
    let book_a_pid = book_a.child.id();
    let router = Router {
        client: &topology.client,
        gateway: &gateway,
        issuer: &issuer,
        wallet: &wallet,
        clearing: &clearing,
        orderbooks: vec![&book_a, &book_b],
    };

    // Set up through the services' own processes: two shops, two customers, one market.
    let rosa = router.user("rosa").await;
    for (business, code) in [("bakery", "BREAD"), ("grocer", "GROC")] {
        let (status, body) = router
            .post(
                "/api/v1/businesses",
                &rosa,
                json!({"handle": business, "name": business}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (status, body) = router.post("/api/v1/currencies", &rosa, json!({"issuer": business, "code": code, "name": code, "scale": 2, "credit_limit": "100000.00"})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, body) = router.post("/api/v1/markets", &rosa, json!({"base": "BREAD", "quote": "GROC", "tick_size": "0.01", "lot_size": "1.00", "fee_bps": 20})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let market_path = "/api/v1/markets/BREAD-GROC".to_owned();
    let seller = router.user("sally").await;
    let buyer = router.user("bill").await;
    let mut transfers = HashSet::new();
    for (from, to, code) in [("bakery", "sally", "BREAD"), ("grocer", "bill", "GROC")] {
        let (status, body) = router
            .post(
                "/api/v1/transfers",
                &rosa,
                json!({"from": from, "to": to, "currency": code, "amount": "10000.00"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        transfers.insert(body["id"].as_str().expect("id").to_owned());
    }

    // The standby order-book process and the other gateway follow the market: their replicas
    // carry the owner's sequence (so a takeover continues it without a gap).
    let owner_sequence = |base: String| {
        let client = topology.client.clone();
        async move {
            let book: Value = client
                .get(format!("{base}/api/v1/markets/BREAD-GROC/book"))
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            book["sequence"].as_u64()
        }
    };
    let started = Instant::now();
    loop {
        let owner = owner_sequence(book_a.base.clone()).await;
        let standby = owner_sequence(book_b.base.clone()).await;
        let watcher_side = owner_sequence(other_gateway.base.clone()).await;
        if owner.is_some() && owner == standby && owner == watcher_side {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "replicas did not follow: {owner:?} {standby:?} {watcher_side:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A WebSocket client on the other gateway instance watches the market throughout.
    let url = format!(
        "{}{market_path}/stream",
        other_gateway.base.replacen("http", "ws", 1)
    );
    let (socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("websocket");
    let watcher = tokio::spawn(async move {
        let mut socket = socket;
        let mut sequence: Option<u64> = None;
        let (mut messages, mut snapshots, mut trades) = (0_u64, 0_u64, 0_u64);
        while let Ok(Some(Ok(message))) =
            tokio::time::timeout(Duration::from_secs(20), socket.next()).await
        {
            let tokio_tungstenite::tungstenite::Message::Text(text) = message else {
                continue;
            };
            let message: Value = serde_json::from_str(text.as_str()).expect("json");
            let got = message["sequence"].as_u64().expect("sequence");
            match message["type"].as_str() {
                Some("snapshot") => snapshots += 1,
                _ => {
                    let previous = sequence.expect("a snapshot comes first");
                    assert_eq!(got, previous + 1, "gapless on the other gateway: {message}");
                    if message["type"] == "trade" {
                        trades += 1;
                    }
                }
            }
            sequence = Some(got);
            messages += 1;
            if message["type"] == "trade" && message["quantity"] == "99.00" {
                break; // the last trade of the test
            }
        }
        (messages, snapshots, trades, sequence)
    });

    // Trading: every acknowledged order and trade is remembered.
    let mut orders: Vec<String> = Vec::new();
    let mut trades: HashSet<String> = HashSet::new();
    let mut killed_at: Option<Instant> = None;
    let mut served_again_after: Option<Duration> = None;
    for round in 0..40 {
        if round == 20 {
            // SIGKILL the owner of the market mid-trading.
            let killed = Command::new("kill")
                .args(["-KILL", &book_a_pid.to_string()])
                .status()
                .expect("kill");
            assert!(killed.success());
            killed_at = Some(Instant::now());
        }
        let quantity = if round == 39 { "99.00" } else { "2.00" };
        for (token, side) in [(&seller, "sell"), (&buyer, "buy")] {
            let body = json!({"market": "BREAD-GROC", "side": side, "type": "limit", "price": "1.00", "quantity": quantity});
            let answer = loop {
                let (status, answer) = router.post("/api/v1/orders", token, body.clone()).await;
                if status == StatusCode::CREATED {
                    break answer;
                }
                assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
                let since = killed_at
                    .expect("only unavailable after the kill")
                    .elapsed();
                assert!(
                    since < Duration::from_secs(10),
                    "the market is not served again 10 s after its owner died"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            };
            if served_again_after.is_none()
                && let Some(at) = killed_at
            {
                served_again_after = Some(at.elapsed());
            }
            orders.push(answer["id"].as_str().expect("id").to_owned());
            for fill in answer["fills"].as_array().expect("fills") {
                trades.insert(fill["trade_id"].as_str().expect("trade").to_owned());
            }
        }
        // A payment now and then, through the wallet process.
        let (status, body) = router
            .post(
                "/api/v1/transfers",
                &seller,
                json!({"to": "bill", "currency": "BREAD", "amount": "0.01"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        transfers.insert(body["id"].as_str().expect("id").to_owned());
    }
    let served_again_after = served_again_after.expect("orders after the kill");
    println!("market served again {served_again_after:?} after its owner was killed");

    // Nothing acknowledged is lost: every order, trade and transfer is there.
    for id in &orders {
        let owner = if orders.iter().position(|o| o == id).expect("index") % 2 == 0 {
            &seller
        } else {
            &buyer
        };
        let (status, body) = router.get(&format!("/api/v1/orders/{id}"), owner).await;
        assert_eq!(status, StatusCode::OK, "order {id}: {body}");
    }
    let (status, page) = router
        .get(&format!("{market_path}/trades?limit=500"), &seller)
        .await;
    assert_eq!(status, StatusCode::OK);
    let stored: HashSet<String> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|t| t["id"].as_str().expect("id").to_owned())
        .collect();
    assert!(
        trades.is_subset(&stored),
        "every acknowledged trade is stored"
    );
    assert_eq!(trades.len(), 40, "each round's buy trades with its sell");
    for id in &transfers {
        let (status, _) = router.get(&format!("/api/v1/transfers/{id}"), &rosa).await;
        let (status_customer, _) = router
            .get(&format!("/api/v1/transfers/{id}"), &seller)
            .await;
        assert!(
            status == StatusCode::OK || status_customer == StatusCode::OK,
            "transfer {id} is stored"
        );
    }
    assert!(
        tokio::task::spawn_blocking({
            let topology = Topology {
                dir: dir.clone(),
                database_url: topology.database_url.clone(),
                prefix: topology.prefix.clone(),
                client: Client::new(),
            };
            move || audit(&topology)
        })
        .await
        .expect("audit task"),
        "scrip audit is clean"
    );

    // The other gateway's client saw every message in order, across the takeover.
    let (messages, snapshots, streamed_trades, _) = watcher.await.expect("watcher");
    assert_eq!(
        streamed_trades, 40,
        "{messages} messages, {snapshots} snapshots"
    );
    assert_eq!(
        snapshots, 1,
        "one snapshot, then a gapless sequence across the takeover"
    );
    drop(router);
    drop((
        book_a,
        gateway,
        other_gateway,
        issuer,
        wallet,
        clearing,
        book_b,
    ));
    let _ = std::fs::remove_dir_all(&dir);
}
