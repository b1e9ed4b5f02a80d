//! Open-loop load generator: requests are sent on a fixed schedule (`--rate` per second)
//! whether or not earlier ones have answered, and each latency is measured from the moment
//! the request was *due*, so a slow server cannot hide its queueing (no coordinated omission).
//!
//! Scenario `payments`: one shop issues a currency to `--customers` customers, who then pay
//! each other random small amounts.
//! Scenario `orders`: two shops issue two currencies to every customer and open a market
//! between them; customers then place limit orders (one lot, random side, random price within
//! ten ticks of the middle: about half trade on arrival, half rest) and one in five of them is
//! immediate-or-cancel.
//! Scenario `mixed`: the same world; half the requests are customers paying each other, two
//! fifths are orders and one tenth is the shop issuing (paying out to a customer).
//! Scenario `converted`: three shops' currencies A, B, C and markets A-B and B-C, deep on the
//! ask side (each shop sells its own currency at 1.00); customers hold only B and C and pay
//! A's shop 1.00 A, half of them with B (one market crossed) and half with C (two markets),
//! through `POST /api/v1/payments`.
//! `--watchers N` also keeps N WebSocket clients on the market's stream and checks that each
//! sees a gapless sequence. Latency percentiles are printed per kind of request.
//! Run the server with raised sign-up and payment limits:
//! `SCRIP_SIGNUP_PER_MINUTE=100000 SCRIP_LOGIN_PER_MINUTE=100000
//! SCRIP_LOGIN_PER_ADDRESS_PER_MINUTE=100000 SCRIP_PAYMENTS_PER_MINUTE=1000000`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use rand::Rng;
use reqwest::Client;
use serde_json::{Value, json};

use crate::http1::Http1;

mod http1;

#[derive(Debug, Parser)]
#[command(about = "Open-loop load generator for Scrip")]
struct Args {
    /// Where Scrip serves.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    base_url: String,
    /// Offered load, requests per second.
    #[arg(long, default_value_t = 1_000)]
    rate: u64,
    /// How long to offer it.
    #[arg(long, default_value_t = 20)]
    duration_s: u64,
    /// Customers paying each other.
    #[arg(long, default_value_t = 200)]
    customers: usize,
    /// `payments`, `orders`, `mixed` or `converted`.
    #[arg(long, default_value = "payments")]
    scenario: String,
    /// WebSocket clients watching the market's stream (scenarios with a market).
    #[arg(long, default_value_t = 0)]
    watchers: usize,
    /// Give up on a request after this long (counted as an error).
    #[arg(long, default_value_t = 5_000)]
    timeout_ms: u64,
}

type Failure = Box<dyn std::error::Error + Send + Sync>;

async fn call(
    client: &Client,
    args: &Args,
    path: &str,
    token: Option<&str>,
    body: Value,
) -> Result<Value, Failure> {
    let mut request = client.post(format!("{}{path}", args.base_url)).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await?;
    let status = response.status();
    let body: Value = response.json().await?;
    if !status.is_success() {
        return Err(format!("{path}: {status} {body}").into());
    }
    Ok(body)
}

/// The measured request, on the minimal client (`http1`): the body already formatted, the
/// answer's body read but not parsed unless it is an error, so the load generator spends as
/// little of the machine's CPU as it can (it shares the cores with the server and the
/// database).
async fn fire(
    http: &Http1,
    timeout: Duration,
    path: &str,
    authorization: &str,
    body: String,
) -> Result<(), Failure> {
    let answer = tokio::time::timeout(timeout, http.post(path, authorization, &body))
        .await
        .map_err(|_| format!("no answer within {} ms", timeout.as_millis()))??;
    if !(200..300).contains(&answer.status) {
        return Err(format!(
            "{} {}",
            answer.status,
            String::from_utf8_lossy(&answer.body)
        )
        .into());
    }
    Ok(())
}

async fn user(client: &Client, args: &Args, handle: &str) -> Result<String, Failure> {
    let password = "load-test-password";
    call(
        client,
        args,
        "/api/v1/auth/register",
        None,
        json!({"handle": handle, "password": password}),
    )
    .await?;
    let login = call(
        client,
        args,
        "/api/v1/auth/login",
        None,
        json!({"handle": handle, "password": password}),
    )
    .await?;
    Ok(login["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned())
}

/// Registers one shop per currency and the customers, funds every customer in every currency,
/// and (with two currencies) opens a market between them.
async fn setup(client: &Client, args: &Args, currencies: usize) -> Result<World, Failure> {
    let run: u32 = rand::rng().random_range(0..1_000_000);
    let owner = user(client, args, &format!("load-owner-{run}")).await?;
    let mut codes = Vec::new();
    for c in 0..currencies {
        let shop = format!("load-shop-{run}-{c}");
        let code = format!("L{run}X{c}");
        call(
            client,
            args,
            "/api/v1/businesses",
            Some(&owner),
            json!({"handle": shop, "name": "Load shop"}),
        )
        .await?;
        call(client, args, "/api/v1/currencies", Some(&owner),
            json!({"issuer": shop, "code": code, "name": "Load money", "scale": 2, "credit_limit": "900000"})).await?;
        codes.push((shop, code));
    }
    for pair in codes.windows(2) {
        let (base, quote) = (&pair[0].1, &pair[1].1);
        call(client, args, "/api/v1/markets", Some(&owner),
            json!({"base": base, "quote": quote, "tick_size": "0.01", "lot_size": "1.00", "fee_bps": 10})).await?;
        if currencies == 3 {
            // The base's shop sells its own currency deep at 1.00: payments convert into it.
            call(
                client,
                args,
                "/api/v1/orders",
                Some(&owner),
                json!({"market": format!("{base}-{quote}"), "side": "sell", "type": "limit",
                       "price": "1.00", "quantity": "50000", "holder": pair[0].0}),
            )
            .await?;
        }
    }
    let mut handles = Vec::new();
    let mut tokens = Vec::new();
    for i in 0..args.customers {
        let handle = format!("load-{run}-{i}");
        tokens.push(user(client, args, &handle).await?);
        // Converting customers hold no A: what they hold of the target would be spent first.
        let skip = usize::from(currencies == 3);
        for (shop, code) in codes.iter().skip(skip) {
            call(
                client,
                args,
                "/api/v1/transfers",
                Some(&owner),
                json!({"from": shop, "to": handle, "currency": code, "amount": "4000"}),
            )
            .await?;
        }
        handles.push(handle);
    }
    let bearer = |token: &str| format!("Bearer {token}");
    Ok(World {
        owner_authorization: bearer(&owner),
        authorizations: tokens.iter().map(|token| bearer(token)).collect(),
        shop: codes[0].0.clone(),
        codes: codes.into_iter().map(|(_, code)| code).collect(),
        handles,
    })
}

/// Who and what the load runs with.
#[derive(Debug)]
struct World {
    shop: String,
    codes: Vec<String>,
    /// Handles and currency codes are plain ASCII words, so bodies are formatted as text.
    handles: Vec<String>,
    /// `Bearer <token>` of each customer and of the owner, built once.
    authorizations: Vec<String>,
    owner_authorization: String,
}

const ORDERS_PATH: &str = "/api/v1/orders";
const TRANSFERS_PATH: &str = "/api/v1/transfers";
const PAYMENTS_PATH: &str = "/api/v1/payments";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Payment,
    Order,
    Issue,
    /// A payment converted through one market.
    OneHop,
    /// A payment converted through two markets.
    TwoHops,
}

impl Kind {
    const ALL: [Kind; 5] = [
        Kind::Payment,
        Kind::Order,
        Kind::Issue,
        Kind::OneHop,
        Kind::TwoHops,
    ];

    fn name(self) -> &'static str {
        match self {
            Kind::Payment => "payments",
            Kind::Order => "orders",
            Kind::Issue => "issuing",
            Kind::OneHop => "1-hop",
            Kind::TwoHops => "2-hop",
        }
    }
}

/// One WebSocket client on the market's stream: messages seen, and gaps in the sequence
/// (a snapshot starts the count again, as a client would).
async fn watch(url: String, until: Instant) -> Result<(u64, u64), Failure> {
    use futures_util::StreamExt as _;
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await?;
    let (mut messages, mut gaps, mut sequence) = (0_u64, 0_u64, None::<u64>);
    while let Ok(Some(message)) = tokio::time::timeout_at(until.into(), socket.next()).await {
        let tokio_tungstenite::tungstenite::Message::Text(text) = message? else {
            continue;
        };
        let message: Value = serde_json::from_str(text.as_str())?;
        let got = message["sequence"].as_u64().unwrap_or_default();
        if message["type"] != "snapshot" && sequence.is_some_and(|s| got != s + 1) {
            gaps += 1;
        }
        sequence = Some(got);
        messages += 1;
    }
    Ok((messages, gaps))
}

fn percentile(sorted_us: &[u64], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted_us.len() - 1) as f64).round() as usize;
    sorted_us[rank.min(sorted_us.len() - 1)] as f64 / 1_000.0
}

#[tokio::main]
async fn main() -> Result<(), Failure> {
    let args = Arc::new(Args::parse());
    let client = Client::builder()
        .timeout(Duration::from_millis(args.timeout_ms))
        .pool_max_idle_per_host(512)
        .build()?;
    eprintln!("setting up {} customers...", args.customers);
    // Shares of payments, orders, issuing, payments through one market and through two.
    let (mix, currencies): ([u32; 5], usize) = match args.scenario.as_str() {
        "payments" => ([100, 0, 0, 0, 0], 1),
        "orders" => ([0, 100, 0, 0, 0], 2),
        "mixed" => ([50, 40, 10, 0, 0], 2),
        "converted" => ([0, 0, 0, 50, 50], 3),
        other => {
            return Err(format!(
                "unknown scenario {other:?}: payments, orders, mixed or converted"
            )
            .into());
        }
    };
    let world = Arc::new(setup(&client, &args, currencies).await?);
    let symbol = Arc::new(world.codes[..world.codes.len().min(2)].join("-"));
    let http = Arc::new(Http1::new(&args.base_url)?);
    let timeout = Duration::from_millis(args.timeout_ms);
    let total = args.rate * args.duration_s;
    let interval = Duration::from_secs_f64(1.0 / args.rate as f64);
    let errors = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    let start = Instant::now();
    let mut watchers = Vec::new();
    if currencies >= 2 {
        let url = format!(
            "{}/api/v1/markets/{symbol}/stream",
            args.base_url.replacen("http", "ws", 1)
        );
        let until = start + Duration::from_secs(args.duration_s + 3);
        for _ in 0..args.watchers {
            watchers.push(tokio::spawn(watch(url.clone(), until)));
        }
    }
    eprintln!(
        "offering {} {}/s for {} s...",
        args.rate, args.scenario, args.duration_s
    );
    for i in 0..total {
        let due = start + interval.mul_f64(i as f64);
        tokio::time::sleep_until(due.into()).await;
        let (http, world, symbol, errors) =
            (http.clone(), world.clone(), symbol.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let (kind, from, path, body) = {
                let mut rng = rand::rng();
                let from = rng.random_range(0..world.handles.len());
                let mut roll = rng.random_range(0..100);
                let mut kind = Kind::ALL[Kind::ALL.len() - 1];
                for (share, candidate) in mix.iter().zip(Kind::ALL) {
                    if roll < *share {
                        kind = candidate;
                        break;
                    }
                    roll -= share;
                }
                let to = (from + rng.random_range(1..world.handles.len())) % world.handles.len();
                match kind {
                    Kind::Order => {
                        let side = if rng.random_bool(0.5) { "buy" } else { "sell" };
                        // Buys lean up and sells down by five ticks, so about half cross.
                        let lean: i64 = if side == "buy" { 5 } else { -5 };
                        let cents = 100 + lean + rng.random_range(-10..=10_i64);
                        let tif = if rng.random_bool(0.2) { "ioc" } else { "gtc" };
                        let body = format!(
                            r#"{{"market":"{symbol}","side":"{side}","type":"limit","price":"{}.{:02}","quantity":"1.00","time_in_force":"{tif}"}}"#,
                            cents / 100,
                            cents % 100
                        );
                        (kind, Some(from), ORDERS_PATH, body)
                    }
                    Kind::Payment => {
                        let body = format!(
                            r#"{{"to":"{}","currency":"{}","amount":"0.01"}}"#,
                            world.handles[to], world.codes[0]
                        );
                        (kind, Some(from), TRANSFERS_PATH, body)
                    }
                    Kind::Issue => {
                        let body = format!(
                            r#"{{"from":"{}","to":"{}","currency":"{}","amount":"0.05"}}"#,
                            world.shop, world.handles[to], world.codes[0]
                        );
                        (kind, None, TRANSFERS_PATH, body)
                    }
                    Kind::OneHop | Kind::TwoHops => {
                        let (source, hops) = if kind == Kind::OneHop { (1, 1) } else { (2, 2) };
                        let body = format!(
                            r#"{{"to":"{}","currency":"{}","amount":"1.00","pay_with":["{}"],"max_hops":{hops}}}"#,
                            world.shop, world.codes[0], world.codes[source]
                        );
                        (kind, Some(from), PAYMENTS_PATH, body)
                    }
                }
            };
            let authorization = match from {
                Some(customer) => &world.authorizations[customer],
                None => &world.owner_authorization,
            };
            let outcome = fire(&http, timeout, path, authorization, body).await;
            let failed = outcome.is_err();
            if let Err(error) = outcome
                && errors.fetch_add(1, Ordering::Relaxed) < 3
            {
                eprintln!("error: {error}");
            }
            (kind, failed, u64::try_from(due.elapsed().as_micros()).unwrap_or(u64::MAX))
        }));
    }
    let mut latencies_us: Vec<Vec<u64>> = vec![Vec::new(); Kind::ALL.len()];
    let mut failures = [0_u64; Kind::ALL.len()];
    for task in tasks {
        let (kind, failed, latency_us) = task.await?;
        let slot = Kind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
        latencies_us[slot].push(latency_us);
        failures[slot] += u64::from(failed);
    }
    let elapsed = start.elapsed().as_secs_f64();
    let failed = errors.load(Ordering::Relaxed);
    let done = total - failed;
    println!(
        "offered {}/s {} for {}s: {} ok, {} errors, {:.0} ok/s",
        args.rate,
        args.scenario,
        args.duration_s,
        done,
        failed,
        done as f64 / elapsed,
    );
    for (slot, kind) in Kind::ALL.iter().enumerate() {
        let sorted = &mut latencies_us[slot];
        if sorted.is_empty() {
            continue;
        }
        sorted.sort_unstable();
        println!(
            "  {:<9} {:>7} sent {:>5} errors; latency ms p50 {:.1} p90 {:.1} p99 {:.1} p99.9 {:.1} max {:.1}",
            kind.name(),
            sorted.len(),
            failures[slot],
            percentile(sorted, 50.0),
            percentile(sorted, 90.0),
            percentile(sorted, 99.0),
            percentile(sorted, 99.9),
            percentile(sorted, 100.0),
        );
    }
    if !watchers.is_empty() {
        let (mut messages, mut gaps, mut broken) = (0, 0, 0);
        for watcher in watchers {
            match watcher.await? {
                Ok((m, g)) => {
                    messages += m;
                    gaps += g;
                }
                Err(error) => {
                    broken += 1;
                    eprintln!("watcher: {error}");
                }
            }
        }
        println!(
            "  watchers  {} streams, {} messages, {} sequence gaps, {} failed",
            args.watchers, messages, gaps, broken
        );
    }
    Ok(())
}
