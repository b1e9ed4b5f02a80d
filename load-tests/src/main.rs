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
//! Run the server with raised sign-up and payment limits:
//! `SCRIP_SIGNUP_PER_MINUTE=100000 SCRIP_LOGIN_PER_MINUTE=100000 SCRIP_PAYMENTS_PER_MINUTE=1000000`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use rand::Rng;
use reqwest::Client;
use serde_json::{Value, json};

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
    /// `payments` or `orders`.
    #[arg(long, default_value = "payments")]
    scenario: String,
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
/// and (with two currencies) opens a market between them; returns `(codes, handles, tokens)`.
async fn setup(
    client: &Client,
    args: &Args,
    currencies: usize,
) -> Result<(Vec<String>, Vec<String>, Vec<String>), Failure> {
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
    if let [(_, base), (_, quote)] = codes.as_slice() {
        call(client, args, "/api/v1/markets", Some(&owner),
            json!({"base": base, "quote": quote, "tick_size": "0.01", "lot_size": "1.00", "fee_bps": 10})).await?;
    }
    let mut handles = Vec::new();
    let mut tokens = Vec::new();
    for i in 0..args.customers {
        let handle = format!("load-{run}-{i}");
        tokens.push(user(client, args, &handle).await?);
        for (shop, code) in &codes {
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
    Ok((
        codes.into_iter().map(|(_, code)| code).collect(),
        handles,
        tokens,
    ))
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
    let orders = match args.scenario.as_str() {
        "payments" => false,
        "orders" => true,
        other => return Err(format!("unknown scenario {other:?}: payments or orders").into()),
    };
    let (codes, handles, tokens) = setup(&client, &args, if orders { 2 } else { 1 }).await?;
    let symbol = codes.join("-");
    let (handles, tokens, code, symbol) = (
        Arc::new(handles),
        Arc::new(tokens),
        Arc::new(codes[0].clone()),
        Arc::new(symbol),
    );
    let total = args.rate * args.duration_s;
    let interval = Duration::from_secs_f64(1.0 / args.rate as f64);
    let errors = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    eprintln!(
        "offering {} {}/s for {} s...",
        args.rate, args.scenario, args.duration_s
    );
    let start = Instant::now();
    for i in 0..total {
        let due = start + interval.mul_f64(i as f64);
        tokio::time::sleep_until(due.into()).await;
        let (client, args, handles, tokens, code, symbol, errors) = (
            client.clone(),
            args.clone(),
            handles.clone(),
            tokens.clone(),
            code.clone(),
            symbol.clone(),
            errors.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let (from, path, body) = {
                let mut rng = rand::rng();
                let from = rng.random_range(0..handles.len());
                if orders {
                    let side = if rng.random_bool(0.5) { "buy" } else { "sell" };
                    // Buys lean up and sells down by five ticks, so about half cross.
                    let lean: i64 = if side == "buy" { 5 } else { -5 };
                    let cents = 100 + lean + rng.random_range(-10..=10_i64);
                    let tif = if rng.random_bool(0.2) { "ioc" } else { "gtc" };
                    let body = json!({"market": *symbol, "side": side, "type": "limit",
                        "price": format!("{}.{:02}", cents / 100, cents % 100),
                        "quantity": "1.00", "time_in_force": tif});
                    (from, "/api/v1/orders", body)
                } else {
                    let to = (from + rng.random_range(1..handles.len())) % handles.len();
                    let body = json!({"to": handles[to], "currency": *code, "amount": "0.01"});
                    (from, "/api/v1/transfers", body)
                }
            };
            let outcome = call(&client, &args, path, Some(&tokens[from]), body).await;
            if let Err(error) = outcome
                && errors.fetch_add(1, Ordering::Relaxed) < 3
            {
                eprintln!("error: {error}");
            }
            u64::try_from(due.elapsed().as_micros()).unwrap_or(u64::MAX)
        }));
    }
    let mut latencies_us = Vec::with_capacity(tasks.len());
    for task in tasks {
        latencies_us.push(task.await?);
    }
    let elapsed = start.elapsed().as_secs_f64();
    latencies_us.sort_unstable();
    let failed = errors.load(Ordering::Relaxed);
    let done = latencies_us.len() as u64 - failed;
    println!(
        "offered {}/s for {}s: {} ok, {} errors, {:.0} ok/s; latency ms p50 {:.1} p90 {:.1} p99 {:.1} p99.9 {:.1} max {:.1}",
        args.rate,
        args.duration_s,
        done,
        failed,
        done as f64 / elapsed,
        percentile(&latencies_us, 50.0),
        percentile(&latencies_us, 90.0),
        percentile(&latencies_us, 99.0),
        percentile(&latencies_us, 99.9),
        percentile(&latencies_us, 100.0),
    );
    Ok(())
}
