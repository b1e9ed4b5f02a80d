//! Marketplace search benchmark: seeds `--listings` listings (titles and descriptions drawn
//! from a small vocabulary, held by `--holders` people, 200 at most each as the API allows),
//! then offers `--rate` searches per second for `--duration-s` seconds on an open loop (each
//! latency measured from when the request was due) and prints the percentiles per kind of
//! query: one word, two words, and a prefix as typed. Run the server with raised sign-up and
//! login limits (`SCRIP_SIGNUP_PER_MINUTE=100000 SCRIP_LOGIN_PER_MINUTE=100000
//! SCRIP_LOGIN_PER_ADDRESS_PER_MINUTE=100000`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use rand::Rng;
use rand::seq::IndexedRandom;
use reqwest::Client;
use serde_json::{Value, json};

type Failure = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Parser)]
#[command(about = "Search benchmark for Scrip's marketplace")]
struct Args {
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    base_url: String,
    #[arg(long, default_value_t = 10_000)]
    listings: usize,
    #[arg(long, default_value_t = 60)]
    holders: usize,
    /// Searches per second offered.
    #[arg(long, default_value_t = 200)]
    rate: u64,
    #[arg(long, default_value_t = 20)]
    duration_s: u64,
    /// Listings posted at once while seeding.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// The listings are there already (a second run on the same server): search only.
    #[arg(long)]
    seeded: bool,
}

const GOODS: [&str; 24] = [
    "bread",
    "sourdough",
    "cake",
    "pastry",
    "vegetables",
    "apples",
    "honey",
    "cheese",
    "coffee",
    "ale",
    "cider",
    "eggs",
    "bicycle",
    "repair",
    "lessons",
    "gardening",
    "plumbing",
    "haircut",
    "massage",
    "childcare",
    "tutoring",
    "carpentry",
    "painting",
    "cleaning",
];
const WORDS: [&str; 24] = [
    "fresh",
    "organic",
    "local",
    "weekly",
    "handmade",
    "seasonal",
    "quick",
    "friendly",
    "home",
    "baked",
    "grown",
    "delivered",
    "morning",
    "evening",
    "small",
    "large",
    "family",
    "garden",
    "kitchen",
    "village",
    "market",
    "traditional",
    "careful",
    "experienced",
];

fn text(rng: &mut impl Rng, words: usize) -> String {
    (0..words)
        .map(|i| {
            if i % 3 == 1 {
                *GOODS.choose(rng).unwrap_or(&"bread")
            } else {
                *WORDS.choose(rng).unwrap_or(&"fresh")
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

async fn post(
    client: &Client,
    url: String,
    token: Option<&str>,
    body: Value,
) -> Result<Value, Failure> {
    let mut request = client.post(url).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await?;
    let status = response.status();
    let body: Value = response.json().await?;
    if !status.is_success() {
        return Err(format!("{status} {body}").into());
    }
    Ok(body)
}

async fn seed(client: &Client, args: &Args) -> Result<(), Failure> {
    let started = Instant::now();
    let suffix: u32 = rand::rng().random_range(0..1_000_000);
    let mut tokens = Vec::with_capacity(args.holders);
    for i in 0..args.holders {
        let handle = format!("seller{suffix}x{i}");
        let password = "search-bench-password";
        post(
            client,
            format!("{}/api/v1/auth/register", args.base_url),
            None,
            json!({"handle": handle, "password": password}),
        )
        .await?;
        let login = post(
            client,
            format!("{}/api/v1/auth/login", args.base_url),
            None,
            json!({"handle": handle, "password": password}),
        )
        .await?;
        tokens.push(
            login["access_token"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
    }
    let tokens = Arc::new(tokens);
    let per_worker = args.listings.div_ceil(args.concurrency);
    let mut workers = Vec::new();
    for w in 0..args.concurrency {
        let (client, tokens, base) = (client.clone(), tokens.clone(), args.base_url.clone());
        let count = per_worker.min(args.listings.saturating_sub(w * per_worker));
        workers.push(tokio::spawn(async move {
            for n in 0..count {
                let (title, description, kind) = {
                    let mut rng = rand::rng();
                    (
                        text(&mut rng, 3),
                        text(&mut rng, 14),
                        if rng.random_bool(0.7) {
                            "offer"
                        } else {
                            "want"
                        },
                    )
                };
                let token = &tokens[(w * per_worker + n) % tokens.len()];
                post(
                    &client,
                    format!("{base}/api/v1/listings"),
                    Some(token),
                    json!({"kind": kind, "title": title, "description": description}),
                )
                .await?;
            }
            Ok::<(), Failure>(())
        }));
    }
    for worker in workers {
        worker.await??;
    }
    eprintln!(
        "seeded {} listings for {} holders in {:.1} s",
        args.listings,
        args.holders,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    let at = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted
        .get(at.min(sorted.len().saturating_sub(1)))
        .map_or(0.0, |&us| us as f64 / 1000.0)
}

#[tokio::main]
async fn main() -> Result<(), Failure> {
    let args = Args::parse();
    let client = Client::builder()
        .timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(256)
        .build()?;
    if !args.seeded {
        seed(&client, &args).await?;
    }
    let kinds = ["one word", "two words", "prefix"];
    let total = args.rate * args.duration_s;
    let interval = Duration::from_secs_f64(1.0 / args.rate as f64);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..total {
        tokio::time::sleep_until((start + interval.mul_f64(i as f64)).into()).await;
        let due = Instant::now();
        let (kind, q) = {
            let mut rng = rand::rng();
            let kind = rng.random_range(0..kinds.len());
            let good = *GOODS.choose(&mut rng).unwrap_or(&"bread");
            let q = match kind {
                0 => good.to_owned(),
                1 => format!("{} {good}", WORDS.choose(&mut rng).unwrap_or(&"fresh")),
                _ => good.chars().take(4).collect(),
            };
            (kind, q)
        };
        let (client, url) = (
            client.clone(),
            format!("{}/api/v1/listings?limit=20&q={q}", args.base_url),
        );
        tasks.push(tokio::spawn(async move {
            let ok = matches!(client.get(url).send().await, Ok(r) if r.status().is_success());
            (
                kind,
                ok,
                u64::try_from(due.elapsed().as_micros()).unwrap_or(u64::MAX),
            )
        }));
    }
    let mut latencies: Vec<Vec<u64>> = vec![Vec::new(); kinds.len()];
    let mut errors = 0;
    for task in tasks {
        let (kind, ok, us) = task.await?;
        latencies[kind].push(us);
        errors += u64::from(!ok);
    }
    println!(
        "offered {}/s searches for {} s over {} listings: {} errors, {:.0} answered/s",
        args.rate,
        args.duration_s,
        args.listings,
        errors,
        total as f64 / start.elapsed().as_secs_f64()
    );
    for (kind, sorted) in kinds.iter().zip(latencies.iter_mut()) {
        sorted.sort_unstable();
        println!(
            "  {kind:<9} {:>6} sent; latency ms p50 {:.1} p90 {:.1} p99 {:.1} max {:.1}",
            sorted.len(),
            percentile(sorted, 50.0),
            percentile(sorted, 90.0),
            percentile(sorted, 99.0),
            percentile(sorted, 100.0)
        );
    }
    Ok(())
}
