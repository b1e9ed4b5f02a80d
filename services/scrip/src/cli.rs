//! Command line: every option is a flag and an environment variable; the flag wins.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use scrip_domain::{Handle, RegistryId};
use scrip_ledger::{Ledger, principal_by_handle};
use scrip_store::{DatabaseUrl, connect_and_migrate};
use scrip_telemetry::LogFormat;

use crate::server::{Services, Settings};

#[derive(Debug, Parser)]
#[command(
    name = "scrip",
    version,
    about = "Exchange and clearing house for business-issued currencies"
)]
pub struct Cli {
    #[command(flatten)]
    pub config: Config,
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address to serve on.
    #[arg(
        long,
        env = "SCRIP_LISTEN",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub listen: SocketAddr,
    /// `sqlite://PATH` or `postgres://...`
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://./data/scrip.db",
        global = true
    )]
    pub database_url: String,
    /// Redis for production (market data fan-out, shared rate limits); unset: in-process.
    #[arg(long, env = "REDIS_URL", global = true)]
    pub redis_url: Option<String>,
    /// Addresses or networks (CIDR) of the load balancers in front of Scrip, comma-separated: their
    /// `X-Forwarded-For` names the client for rate limits (ignored from anyone else).
    #[arg(
        long,
        env = "SCRIP_TRUSTED_PROXIES",
        value_delimiter = ',',
        value_parser = scrip_http::TrustedProxies::parse_entry,
        global = true
    )]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Prefix of Scrip's keys and channels in Redis, so deployments can share one Redis.
    #[arg(
        long,
        env = "SCRIP_REDIS_PREFIX",
        default_value = "scrip:",
        global = true
    )]
    pub redis_prefix: String,
    /// Keys and other local state of the embedded mode.
    #[arg(long, env = "SCRIP_DATA_DIR", default_value = "./data", global = true)]
    pub data_dir: PathBuf,
    /// The registry id used in addresses (`handle@REGISTRY`).
    #[arg(long, env = "SCRIP_REGISTRY", default_value = "local", global = true)]
    pub registry: String,
    /// PEM Ed25519 private key that signs tokens (gateway); default: generated in the data dir.
    #[arg(long, env = "SCRIP_JWT_PRIVATE_KEY_FILE", global = true)]
    pub jwt_private_key_file: Option<PathBuf>,
    /// PEM Ed25519 public key that verifies tokens; default: beside the generated private key.
    #[arg(long, env = "SCRIP_JWT_PUBLIC_KEY_FILE", global = true)]
    pub jwt_public_key_file: Option<PathBuf>,
    /// Lifetime of access tokens, seconds.
    #[arg(long, env = "SCRIP_TOKEN_TTL_S", default_value_t = 900, global = true)]
    pub token_ttl_s: u64,
    /// Largest credit limit a currency may have, in units of account.
    #[arg(
        long,
        env = "SCRIP_MAX_CREDIT_LIMIT",
        default_value_t = 1_000_000,
        global = true
    )]
    pub max_credit_limit: i64,
    /// Login attempts allowed per minute per client address and handle.
    #[arg(
        long,
        env = "SCRIP_LOGIN_PER_MINUTE",
        default_value_t = 20,
        global = true
    )]
    pub login_per_minute: u32,
    /// Login attempts allowed per minute per client address, whatever the handle.
    #[arg(
        long,
        env = "SCRIP_LOGIN_PER_ADDRESS_PER_MINUTE",
        default_value_t = 100,
        global = true
    )]
    pub login_per_address_per_minute: u32,
    /// Sign-ups allowed per minute per client address.
    #[arg(
        long,
        env = "SCRIP_SIGNUP_PER_MINUTE",
        default_value_t = 30,
        global = true
    )]
    pub signup_per_minute: u32,
    /// Payments allowed per minute per caller.
    #[arg(
        long,
        env = "SCRIP_PAYMENTS_PER_MINUTE",
        default_value_t = 600,
        global = true
    )]
    pub payments_per_minute: u32,
    /// Seconds between scheduled clearing runs; 0 turns the schedule off.
    #[arg(
        long,
        env = "SCRIP_CLEARING_INTERVAL_S",
        default_value_t = 0,
        global = true
    )]
    pub clearing_interval_s: u64,
    /// Unit of account the scheduled clearing runs in.
    #[arg(
        long,
        env = "SCRIP_CLEARING_UNIT",
        default_value = "EUR",
        global = true
    )]
    pub clearing_unit: String,
    /// Serve `/metrics` only on this internal address (for Prometheus), not on `--listen`
    /// where the proxy makes it public; unset: on `--listen` (embedded mode).
    #[arg(long, env = "SCRIP_METRICS_LISTEN", global = true)]
    pub metrics_listen: Option<SocketAddr>,
    /// Market data streams (WebSockets) open at once in this process.
    #[arg(
        long,
        env = "SCRIP_MAX_STREAMS",
        default_value_t = 4_096,
        global = true
    )]
    pub max_streams: usize,
    /// Market data streams open at once from one client address.
    #[arg(
        long,
        env = "SCRIP_MAX_STREAMS_PER_ADDRESS",
        default_value_t = 16,
        global = true
    )]
    pub max_streams_per_address: usize,
    /// New coinage: the registry's mutual-credit currency in which each person gets an
    /// onboarding allowance (with `--onboarding-credit`); unset: no new coinage.
    #[arg(long, env = "SCRIP_ONBOARDING_CURRENCY", global = true)]
    pub onboarding_currency: Option<String>,
    /// Each person's onboarding allowance: the fund pays up to half of a purchase from it.
    #[arg(long, env = "SCRIP_ONBOARDING_CREDIT", global = true)]
    pub onboarding_credit: Option<String>,
    /// The least reputation (mean rating, 1 to 5) a seller needs for new coinage to pay.
    #[arg(
        long,
        env = "SCRIP_ONBOARDING_MIN_REPUTATION",
        default_value = "4.00",
        global = true
    )]
    pub onboarding_min_reputation: String,
    /// Database connections per process.
    #[arg(long, env = "SCRIP_DB_POOL_SIZE", default_value_t = 16, global = true)]
    pub db_pool_size: u32,
    /// `pretty` for a terminal, `json` for log collectors.
    #[arg(
        long,
        env = "SCRIP_LOG_FORMAT",
        default_value = "pretty",
        global = true
    )]
    pub log: LogChoice,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogChoice {
    Pretty,
    Json,
}

impl Config {
    pub fn log_format(&self) -> LogFormat {
        match self.log {
            LogChoice::Pretty => LogFormat::Pretty,
            LogChoice::Json => LogFormat::Json,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API (all services in one process unless one is named).
    Serve {
        /// Run only this service.
        service: Option<ServiceName>,
        /// Seed a small living economy (shops, customers, currencies) on first start.
        #[arg(long)]
        demo: bool,
    },
    /// Create or update the database schema (also done at every start).
    Migrate,
    /// Recompute every balance from the journal and check every invariant; exit status 0 only
    /// when all hold.
    Audit,
    /// Demurrage: charge every period that has ended (the server also does it every minute).
    Demurrage {
        #[command(subcommand)]
        command: DemurrageCommand,
    },
    /// Registry administration.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Exit status 0 when URL (an `http://host:port/path`, e.g. `/readyz`) answers 2xx within
    /// 3 s: a health check for container images that have no curl.
    Probe { url: String },
    /// Checks a member directory proof (the JSON of `GET /currencies/{code}/directory/proof`,
    /// from FILE or `-` for standard input) against a root: exit status 0 only when the member
    /// is in it. No database, no network: anyone can run it.
    VerifyDirectory {
        /// The proof's JSON, or `-` to read it from standard input.
        proof: PathBuf,
        /// The root to check against (hex), as published by `GET .../directory`: never the
        /// proof's own, which anyone making a proof can choose.
        #[arg(long)]
        root: String,
    },
    /// Checks a proof of liabilities (the JSON of `GET /accounts/proof`, from FILE or `-`)
    /// against a published root: exit status 0 only when the holder's balance is counted in
    /// it. No database, no network: anyone can run it.
    VerifyProof {
        /// The proof's JSON, or `-` to read it from standard input.
        proof: PathBuf,
        /// The root to check against (hex), as published by `GET .../liabilities` or its list
        /// of roots: never the proof's own, which anyone making a proof can choose.
        #[arg(long)]
        root: String,
        /// The published total (a decimal amount); the root commits to it. Default: the
        /// proof's own, printed so it can be compared by eye.
        #[arg(long)]
        total: Option<String>,
    },
    /// The clearing solver on its own, for comparison with other tools.
    Clearing {
        #[command(subcommand)]
        command: ClearingCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum ClearingCommand {
    /// Solve `debtor,creditor,amount` lines (amount in integer minor units) and print total
    /// debt, cleared, remaining and solve time.
    Bench { file: PathBuf },
    /// Write a realistic obligation network as `debtor,creditor,amount` lines to stdout.
    Generate {
        #[arg(long, default_value_t = 40_000)]
        firms: usize,
        #[arg(long, default_value_t = 300_000)]
        obligations: usize,
        #[arg(long, default_value_t = 7)]
        seed: u64,
    },
}

#[derive(Debug, Subcommand)]
pub enum DemurrageCommand {
    /// Charge what is due now; safe to run at any time and as often as wanted (each account
    /// pays each period at most once).
    Run,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ServiceName {
    Gateway,
    Issuer,
    Wallet,
    Clearing,
    Orderbook,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Give HANDLE the registry operator role (runs clearing, reads the registry's accounts).
    GrantOperator { handle: String },
    /// Make the token signing key pair in DIR (kept if it exists): the private key for the
    /// gateway, the public one for every service.
    Keys { dir: PathBuf },
}

/// Connections the one-shot commands need: few, they run one thing at a time.
const CLI_POOL_SIZE: u32 = 2;

impl Cli {
    pub fn run(self) -> Result<ExitCode, Box<dyn std::error::Error>> {
        match &self.command {
            // Pure computation, and probes: no database involved.
            Some(Command::Clearing { command }) => {
                return crate::clearing_bench::run(command).map(|()| ExitCode::SUCCESS);
            }
            Some(Command::Probe { url }) => return Ok(probe(url)),
            Some(Command::VerifyDirectory { proof, root }) => {
                return verify_directory(proof, root);
            }
            Some(Command::VerifyProof { proof, root, total }) => {
                return verify_proof(proof, root, total.as_deref());
            }
            Some(Command::Admin {
                command: AdminCommand::Keys { dir },
            }) => {
                scrip_auth::load_or_create_keys(dir)?;
                println!("token keys are in {}", dir.display());
                return Ok(ExitCode::SUCCESS);
            }
            _ => {}
        }
        let url = DatabaseUrl::parse(&self.config.database_url)?;
        match self.command.unwrap_or(Command::Serve {
            service: None,
            demo: false,
        }) {
            Command::Serve { service, demo } => {
                let services = match service {
                    None => Services::all(),
                    Some(ServiceName::Gateway) => Services::only_gateway(),
                    Some(ServiceName::Issuer) => Services::only_issuer(),
                    Some(ServiceName::Wallet) => Services::only_wallet(),
                    Some(ServiceName::Clearing) => Services::only_clearing(),
                    Some(ServiceName::Orderbook) => Services::only_orderbook(),
                };
                let settings = Settings::from_config(&self.config, url, services, demo)?;
                crate::server::run_blocking(settings)?;
                Ok(ExitCode::SUCCESS)
            }
            Command::Migrate => {
                connect_and_migrate(&url, CLI_POOL_SIZE)?;
                println!("database at {url:?} is up to date");
                Ok(ExitCode::SUCCESS)
            }
            Command::Audit => audit(&url),
            Command::Demurrage {
                command: DemurrageCommand::Run,
            } => {
                let ledger = Ledger::new(connect_and_migrate(&url, CLI_POOL_SIZE)?);
                let report = scrip_ledger::demurrage::run_due(&ledger, scrip_http::now_us())?;
                let taken: i128 = report.charged_atoms.values().sum();
                println!(
                    "charged {} period(s): {} account(s) paid, {} atoms in all",
                    report.periods, report.accounts_charged, taken
                );
                Ok(ExitCode::SUCCESS)
            }
            Command::Clearing { .. }
            | Command::Probe { .. }
            | Command::VerifyDirectory { .. }
            | Command::VerifyProof { .. } => Ok(ExitCode::SUCCESS),
            Command::Admin {
                command: AdminCommand::Keys { .. },
            } => Ok(ExitCode::SUCCESS),
            Command::Admin {
                command: AdminCommand::GrantOperator { handle },
            } => {
                let ledger = Ledger::new(connect_and_migrate(&url, CLI_POOL_SIZE)?);
                let registry = RegistryId::parse(&self.config.registry)?;
                let handle = Handle::parse_local(&handle, &registry)?;
                ledger.write(|conn| {
                    let principal = principal_by_handle(conn, &handle)?;
                    scrip_auth::access::grant_role(conn, principal.id, scrip_auth::access::OPERATOR)
                })?;
                println!("{handle} is now a registry operator");
                Ok(ExitCode::SUCCESS)
            }
        }
    }
}

/// `scrip probe URL`: a plain HTTP/1.0 GET over TCP, status 2xx or failure.
fn probe(url: &str) -> ExitCode {
    use std::io::{Read as _, Write as _};
    let answer = (|| -> Result<bool, Box<dyn std::error::Error>> {
        let rest = url.strip_prefix("http://").ok_or("only http:// URLs")?;
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        let timeout = std::time::Duration::from_secs(3);
        let address = std::net::ToSocketAddrs::to_socket_addrs(host)?
            .next()
            .ok_or("no address")?;
        let mut stream = std::net::TcpStream::connect_timeout(&address, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        write!(stream, "GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n")?;
        let mut head = [0_u8; 16];
        let read = stream.read(&mut head)?;
        let status = std::str::from_utf8(&head[..read])?;
        Ok(status.starts_with("HTTP/1.") && status.get(9..10) == Some("2"))
    })();
    match answer {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(error) => {
            eprintln!("probe failed: {error}");
            ExitCode::from(1)
        }
    }
}

fn audit(url: &DatabaseUrl) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let ledger = Ledger::new(connect_and_migrate(url, CLI_POOL_SIZE)?);
    let report = ledger.audit()?;
    println!(
        "audited {} currencies, {} accounts, {} transfers",
        report.currencies, report.accounts, report.transfers
    );
    for check in scrip_ledger::Violation::CHECKS {
        let found = report
            .violations
            .iter()
            .filter(|v| v.check() == check)
            .count();
        let verdict = if found == 0 {
            "ok".to_owned()
        } else {
            format!("{found} violation(s)")
        };
        println!("  {check}: {verdict}");
    }
    if report.is_clean() {
        println!("every invariant holds");
        return Ok(ExitCode::SUCCESS);
    }
    println!("{} invariant violation(s):", report.violations.len());
    for violation in &report.violations {
        println!("  - {violation}");
    }
    Ok(ExitCode::from(2))
}

/// The JSON of a proof file, or of standard input for `-`.
fn read_proof(proof: &std::path::Path) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
    let text = if proof.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())?
    } else {
        std::fs::read_to_string(proof)
            .map_err(|e| format!("cannot read {}: {e}", proof.display()))?
    };
    Ok(serde_json::from_str(&text).map_err(|e| format!("the proof is not JSON: {e}"))?)
}

/// `scrip verify-proof`: rebuilds the holder's leaf from its salt, address and balance, folds
/// it with the path (hashes and sums) and compares with the published root and total.
fn verify_proof(
    proof: &std::path::Path,
    root: &str,
    total: Option<&str>,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let proof = read_proof(proof)?;
    let field = |value: &serde_json::Value, name: &str| -> Result<String, String> {
        value
            .get(name)
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| format!("the proof has no {name:?}"))
    };
    let scale = proof
        .get("scale")
        .and_then(serde_json::Value::as_i64)
        .ok_or("the proof has no \"scale\"")?;
    let scale = scrip_domain::Scale::new(scale)?;
    let atoms = |what: &str, raw: &str| -> Result<u128, String> {
        let amount =
            scrip_domain::Amount::parse(raw, scale).map_err(|e| format!("{what} {raw:?}: {e}"))?;
        u128::try_from(amount.atoms()).map_err(|_| format!("{what} is negative"))
    };
    let (currency, address, salt) = (
        field(&proof, "currency")?,
        field(&proof, "address")?,
        field(&proof, "salt")?,
    );
    let balance = field(&proof, "balance")?;
    let steps = proof
        .get("path")
        .and_then(serde_json::Value::as_array)
        .ok_or("the proof has no \"path\"")?;
    let mut path = Vec::with_capacity(steps.len());
    for (i, step) in steps.iter().enumerate() {
        let sum = atoms(&format!("step {i}'s sum"), &field(step, "sum")?)?;
        path.push((field(step, "side")?, field(step, "hash")?, sum));
    }
    let path: Vec<(&str, &str, u128)> = path
        .iter()
        .map(|(side, hash, sum)| (side.as_str(), hash.as_str(), *sum))
        .collect();
    let total = match total {
        Some(published) => published.to_owned(),
        None => field(&proof, "total")?,
    };
    let leaf = (
        currency.as_str(),
        salt.as_str(),
        address.as_str(),
        atoms("the balance", &balance)?,
    );
    if scrip_proofs::check(leaf, &path, (root, atoms("the total", &total)?))? {
        println!(
            "{address}'s {balance} {currency} is counted in the total {total} under root {root}"
        );
        Ok(ExitCode::SUCCESS)
    } else {
        println!(
            "{address}'s {balance} {currency} is NOT proven counted under root {root} with total {total}"
        );
        Ok(ExitCode::from(1))
    }
}

/// `scrip verify-directory`: folds the proof's leaf with its path and compares with the root.
fn verify_directory(
    proof: &std::path::Path,
    root: &str,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let text = if proof.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())?
    } else {
        std::fs::read_to_string(proof)
            .map_err(|e| format!("cannot read {}: {e}", proof.display()))?
    };
    let proof: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("the proof is not JSON: {e}"))?;
    let field = |name: &str| {
        proof
            .get(name)
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| format!("the proof has no {name:?}"))
    };
    let (currency, member) = (field("currency")?, field("member")?);
    let steps = proof
        .get("path")
        .and_then(serde_json::Value::as_array)
        .ok_or("the proof has no \"path\"")?;
    let mut path = Vec::with_capacity(steps.len());
    for step in steps {
        let part = |name: &str| {
            step.get(name)
                .and_then(serde_json::Value::as_str)
                .unwrap_or("")
        };
        path.push((part("side"), part("hash")));
    }
    if scrip_governance::directory::check((currency, member), &path, root)? {
        println!("{member} is a member of {currency} under root {root}");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("{member} is NOT proven a member of {currency} under root {root}");
        Ok(ExitCode::from(1))
    }
}
