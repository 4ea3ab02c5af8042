//! `ezenroll token`: a bearer token signed with the server's secret.

use super::args::TokenArgs;
use super::dev_secret;
use super::process::write_stdout;
use ezenroll::http::auth::AuthKeys;
use std::process::ExitCode;

pub fn token(args: TokenArgs) -> ExitCode {
    let configured = args.jwt_secret.filter(|s| !s.is_empty());
    let secret = match (args.dev, configured) {
        (true, Some(_)) => {
            return refuse(
                "--dev signs with the development server's secret, yet a secret is \
                 configured (--jwt-secret or EZENROLL_JWT_SECRET); use one or the other",
            );
        }
        (true, None) => match dev_secret::read(args.listen.port()) {
            Ok(secret) => secret,
            Err(e) => return refuse(&e.to_string()),
        },
        (false, Some(secret)) => secret,
        (false, None) => {
            return refuse(
                "no secret; pass --jwt-secret or set EZENROLL_JWT_SECRET (the one the server \
                 runs with), or --dev for the development server on this machine",
            );
        }
    };
    let keys = match AuthKeys::from_secret(secret.as_bytes()) {
        Ok(k) => k.with_max_lifetime(args.max_token_lifetime),
        Err(e) => return refuse(&e.to_string()),
    };
    let sub = args.sub.unwrap_or_else(|| "admin".to_owned());
    match keys.mint(args.role, &sub, args.ttl) {
        Ok(token) => write_stdout(|out| writeln!(out, "{token}")),
        Err(e) => refuse(&e.to_string()),
    }
}

fn refuse(why: &str) -> ExitCode {
    eprintln!("ezenroll token: {why}");
    ExitCode::from(2)
}
