//! Development mode: `serve` without a configured secret signs tokens with a random one,
//! prints an admin token and leaves the secret where `ezenroll token --dev` finds it.

use super::args::DEFAULT_LISTEN;
use super::dev_secret::{self, DevSecretFile};
use ezenroll::http::auth::{AuthKeys, Role};
use std::net::SocketAddr;
use std::time::Duration;

/// How long the admin token printed in development mode is valid.
const DEV_TOKEN_TTL: Duration = Duration::from_secs(12 * 3600);

/// The token keys of `serve`, and in development mode the random secret they sign with.
pub struct ServeKeys {
    pub keys: AuthKeys,
    dev_secret: Option<String>,
}

impl ServeKeys {
    /// From the configured secret, or, with none, from a random one made up for this run;
    /// accepting tokens that live at most `max_lifetime`.
    pub fn new(configured: Option<String>, max_lifetime: Duration) -> anyhow::Result<ServeKeys> {
        if let Some(secret) = configured.filter(|s| !s.is_empty()) {
            return Ok(ServeKeys {
                keys: AuthKeys::from_secret(secret.as_bytes())?.with_max_lifetime(max_lifetime),
                dev_secret: None,
            });
        }
        let secret = ezenroll::http::auth::random_secret()?;
        Ok(ServeKeys {
            keys: AuthKeys::from_secret(secret.as_bytes())?.with_max_lifetime(max_lifetime),
            dev_secret: Some(secret),
        })
    }

    /// In development mode, once the server listens on `addr`: writes the secret file and
    /// announces the mode loudly with an admin token and the command for more. The file
    /// lives as long as the returned guard.
    pub fn announce(&self, addr: SocketAddr) -> anyhow::Result<Option<DevSecretFile>> {
        let Some(secret) = &self.dev_secret else {
            return Ok(None);
        };
        // As long as the server accepts, if that is shorter.
        let ttl = DEV_TOKEN_TTL.min(self.keys.max_lifetime());
        let token = self.keys.mint(Role::Admin, "dev-admin", ttl)?;
        let file = dev_secret::write(addr.port(), secret);
        tracing::warn!(
            "development mode: no JWT secret configured; tokens are signed with a random \
             secret for this run only (an admin token is printed on stderr)"
        );
        let more = match &file {
            Ok(file) => {
                let listen = if addr.to_string() == DEFAULT_LISTEN {
                    String::new()
                } else {
                    format!(" --listen {addr}")
                };
                format!(
                    "More tokens for this server (the secret is in {}):\n\n  \
                     ezenroll token --dev{listen} --role customer --sub C000000001\n",
                    file.path().display()
                )
            }
            Err(e) => format!("`ezenroll token --dev` cannot work for this server: {e}\n"),
        };
        eprintln!(
            "\n{}An admin token, valid for {} min:\n\n  export TOKEN={token}\n\n{more}",
            banner(),
            ttl.as_secs() / 60,
        );
        Ok(file.ok())
    }
}

/// The warning, boxed in asterisks.
fn banner() -> String {
    let lines = [
        "DEVELOPMENT MODE: no --jwt-secret / EZENROLL_JWT_SECRET configured.",
        "Tokens are signed with a random secret that dies with this process.",
        "Never run like this in production.",
    ];
    let width = lines.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    let rule = "*".repeat(width + 6);
    let mut out = format!("{rule}\n");
    for line in lines {
        out.push_str(&format!("*  {line:<width$}  *\n"));
    }
    out.push_str(&rule);
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_banner_box_is_square() {
        let banner = banner();
        let widths: Vec<usize> = banner.lines().map(|l| l.chars().count()).collect();
        assert_eq!(widths.len(), 5, "{banner}");
        assert!(
            widths.iter().all(|&w| w == widths[0]),
            "{widths:?}\n{banner}"
        );
        for line in banner.lines() {
            assert!(line.starts_with('*') && line.ends_with('*'), "{line:?}");
        }
    }
}
