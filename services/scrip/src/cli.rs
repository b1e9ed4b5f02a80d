//! Command line: every option is a flag and an environment variable; the flag wins.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use scrip_ledger::Ledger;
use scrip_store::{DatabaseUrl, connect_and_migrate};

#[derive(Debug, Parser)]
#[command(
    name = "scrip",
    version,
    about = "Exchange and clearing house for business-issued currencies"
)]
pub struct Cli {
    #[command(flatten)]
    pub config: Config,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Args)]
pub struct Config {
    /// `sqlite://PATH` or `postgres://...`
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://./data/scrip.db",
        global = true
    )]
    pub database_url: String,
    /// Keys and other local state of the embedded mode.
    #[arg(long, env = "SCRIP_DATA_DIR", default_value = "./data", global = true)]
    pub data_dir: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create or update the database schema (also done at every start).
    Migrate,
    /// Recompute every balance from the journal and check every invariant; exit status 0 only
    /// when all hold.
    Audit,
}

/// Connections the command-line tools need: few, they run one thing at a time.
const CLI_POOL_SIZE: u32 = 2;

impl Cli {
    pub fn run(self) -> Result<ExitCode, Box<dyn std::error::Error>> {
        let url = DatabaseUrl::parse(&self.config.database_url)?;
        match self.command {
            Command::Migrate => {
                connect_and_migrate(&url, CLI_POOL_SIZE)?;
                println!("database at {url:?} is up to date");
                Ok(ExitCode::SUCCESS)
            }
            Command::Audit => {
                let ledger = Ledger::new(connect_and_migrate(&url, CLI_POOL_SIZE)?);
                let report = ledger.audit()?;
                println!(
                    "audited {} currencies, {} accounts, {} transfers",
                    report.currencies, report.accounts, report.transfers
                );
                if report.is_clean() {
                    println!("every invariant holds");
                    Ok(ExitCode::SUCCESS)
                } else {
                    println!("{} invariant violation(s):", report.violations.len());
                    for violation in &report.violations {
                        println!("  - {violation}");
                    }
                    Ok(ExitCode::from(2))
                }
            }
        }
    }
}
