//! `scrip clearing bench FILE.csv` and `scrip clearing generate`: the solver on a file, so it
//! can be compared with other tools on the same input.

use std::collections::HashMap;
use std::io::{BufRead, BufWriter, Write};
use std::time::Instant;

use scrip_netting::generate::{NetworkSpec, obligations};
use scrip_netting::{Obligation, check, solve};

use crate::cli::ClearingCommand;

type Failure = Box<dyn std::error::Error>;

pub fn run(command: &ClearingCommand) -> Result<(), Failure> {
    match command {
        ClearingCommand::Bench { file } => {
            let reader = std::io::BufReader::new(
                std::fs::File::open(file)
                    .map_err(|e| format!("cannot open {}: {e}", file.display()))?,
            );
            let (parties, edges) = parse(reader)?;
            let started = Instant::now();
            let result = solve(parties.len(), &edges)?;
            let solve_ms = started.elapsed().as_secs_f64() * 1_000.0;
            check(parties.len(), &edges, &result.cleared)?;
            let share = if result.gross_before == 0 {
                0.0
            } else {
                100.0 * result.total_cleared as f64 / result.gross_before as f64
            };
            println!("parties:      {}", parties.len());
            println!(
                "obligations:  {} ({} inside cycles)",
                edges.len(),
                result.edges_in_cycles
            );
            println!("total debt:   {}", result.gross_before);
            println!("cleared:      {} ({share:.2}%)", result.total_cleared);
            println!("remaining:    {}", result.gross_after());
            println!("solve time:   {solve_ms:.1} ms");
            Ok(())
        }
        ClearingCommand::Generate {
            firms,
            obligations: count,
            seed,
        } => {
            let edges = obligations(&NetworkSpec {
                firms: *firms,
                obligations: *count,
                seed: *seed,
            });
            let mut out = BufWriter::new(std::io::stdout().lock());
            writeln!(out, "debtor,creditor,amount")?;
            for e in edges {
                writeln!(out, "f{},f{},{}", e.debtor, e.creditor, e.amount)?;
            }
            out.flush()?;
            Ok(())
        }
    }
}

/// Reads `debtor,creditor,amount` lines. A header line, blank lines and `#` comments are
/// skipped; anything else malformed is an error naming its line.
pub fn parse(reader: impl BufRead) -> Result<(Vec<String>, Vec<Obligation>), Failure> {
    let mut ids: HashMap<String, u32> = HashMap::new();
    let mut names = Vec::new();
    let mut edges = Vec::new();
    for (number, line) in reader.lines().enumerate() {
        let line = line?;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let [debtor, creditor, amount] = fields[..] else {
            return Err(format!("line {}: expected debtor,creditor,amount", number + 1).into());
        };
        let Ok(amount) = amount.parse::<u64>() else {
            if number == 0 && !amount.chars().any(|c| c.is_ascii_digit()) {
                continue; // a header such as `debtor,creditor,amount`
            }
            return Err(format!(
                "line {}: amount {amount:?} is not a whole number of minor units",
                number + 1
            )
            .into());
        };
        let mut id = |name: &str| {
            *ids.entry(name.to_owned()).or_insert_with(|| {
                names.push(name.to_owned());
                u32::try_from(names.len() - 1).unwrap_or(u32::MAX)
            })
        };
        let (debtor, creditor) = (id(debtor), id(creditor));
        if debtor == creditor {
            return Err(format!("line {}: a party cannot owe itself", number + 1).into());
        }
        edges.push(Obligation {
            debtor,
            creditor,
            amount,
        });
    }
    Ok((names, edges))
}
