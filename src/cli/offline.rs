//! `ezenroll quote` and `ezenroll products`: the premium core without a server.

use super::process::write_stdout;
use chrono::NaiveDate;
use ezenroll::api::QuoteService;
use ezenroll::domain::catalog::Catalog;
use std::io::Read;
use std::process::ExitCode;
use std::sync::Arc;

pub fn quote(today: NaiveDate, pretty: bool) -> ExitCode {
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

/// `ezenroll openapi`: the HTTP API's OpenAPI document.
pub fn openapi() -> ExitCode {
    write_stdout(|out| {
        out.write_all(ezenroll::http::openapi::document().as_bytes())?;
        out.write_all(b"\n")
    })
}

pub fn products() -> ExitCode {
    let catalog = Catalog::demo();
    let products: Vec<_> = catalog.latest_all().map(|p| p.product()).collect();
    write_stdout(|out| serde_json::to_writer_pretty(out, &products).map_err(Into::into))
}
