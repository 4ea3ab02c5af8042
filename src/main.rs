//! `ezenroll`: the one binary. `serve` runs the HTTP gateway, the engine and its consumers
//! (on Redis with `--redis-url`, else on the embedded memory store); `worker` runs one
//! consumer on the shared Redis; `quote`, `products` and `openapi` work offline; `token` mints a
//! bearer token.

// mimalloc: the engine allocates many small, short-lived objects across threads
// (messages, envelopes, futures), where glibc malloc does poorly.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod cli;

use clap::Parser;
use cli::args::{Cli, Command};
use std::process::ExitCode;

fn main() -> ExitCode {
    ezenroll::os::disable_transparent_huge_pages();
    let cli = Cli::parse();
    match cli.command {
        Command::Quote { today, pretty } => {
            cli::offline::quote(today.unwrap_or_else(cli::args::korean_today), pretty)
        }
        Command::Products => cli::offline::products(),
        Command::Openapi => cli::offline::openapi(),
        Command::Serve(args) => cli::serve::serve(*args),
        Command::Worker(args) => cli::worker::worker(args),
        Command::Token(args) => cli::token::token(args),
    }
}
