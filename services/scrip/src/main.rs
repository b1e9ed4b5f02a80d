//! `scrip`: the one binary. `cargo run --release` is `scrip serve`.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = scrip::cli::Cli::parse();
    scrip_telemetry::init_tracing(cli.config.log_format(), "info,actix_server=warn");
    match cli.run() {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
