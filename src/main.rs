//! `ezenroll`: the one binary. Today it prices quotes (`ezenroll quote`); the server,
//! the workers and the token minter join it as their issues land.

// mimalloc: the engine allocates many small, short-lived objects across threads
// (messages, envelopes, futures), where glibc malloc showed up as a third of the profile.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use chrono::NaiveDate;
use clap::{Parser, Subcommand};
use ezenroll::api::QuoteService;
use ezenroll::domain::catalog::Catalog;
use ezenroll::domain::customer::parse_iso_date;
use std::io::{Read, Write};
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "ezenroll",
    version,
    about = "Insurance-enrollment workflow engine"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Price one quote request, or a JSON array of them, read from stdin; the answer
    /// (or answers, in order) goes to stdout as JSON. Exit 2 on malformed input.
    Quote {
        /// The date quotes without a `quoteDate` are priced on (default: today in Korea).
        #[arg(long, value_parser = parse_date)]
        today: Option<NaiveDate>,
        /// Indent the JSON answer.
        #[arg(long)]
        pretty: bool,
    },
    /// Print the built-in demo catalog as JSON (product definitions usable as `product`
    /// in a quote request, or through their `productCode`).
    Products,
}

fn parse_date(text: &str) -> Result<NaiveDate, String> {
    parse_iso_date(text)
}

/// Today in Korea (UTC+9), the date insurance ages are counted on.
fn korean_today() -> NaiveDate {
    (chrono::Utc::now() + chrono::Duration::hours(9)).date_naive()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Quote { today, pretty } => quote(today.unwrap_or_else(korean_today), pretty),
        Command::Products => {
            let catalog = Catalog::demo();
            let products: Vec<_> = catalog.latest_all().map(|p| p.product()).collect();
            write_stdout(|out| serde_json::to_writer_pretty(out, &products).map_err(Into::into))
        }
    }
}

fn quote(today: NaiveDate, pretty: bool) -> ExitCode {
    let mut input = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut input) {
        eprintln!("ezenroll quote: cannot read stdin as UTF-8 text: {e}");
        return ExitCode::from(2);
    }
    let service = QuoteService::new(Arc::new(Catalog::demo()));
    let mut out = Vec::with_capacity(input.len() * 2);
    let result = if pretty {
        service
            .quote_json(&input, today)
            .map(|answer| serde_json::to_writer_pretty(&mut out, &answer).unwrap_or_default())
    } else {
        service.quote_json_into(&input, today, &mut out)
    };
    if let Err(e) = result {
        eprintln!("ezenroll quote: {e}");
        return ExitCode::from(2);
    }
    out.push(b'\n');
    write_stdout(|stdout| stdout.write_all(&out))
}

fn write_stdout(write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> ExitCode {
    let stdout = std::io::stdout();
    let mut lock = stdout.lock();
    match write(&mut lock).and_then(|()| lock.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ezenroll: cannot write to stdout: {e}");
            ExitCode::FAILURE
        }
    }
}
