//! The command line: subcommands, their options and the parsers of option values.

use chrono::NaiveDate;
use clap::{Parser, Subcommand};
use ezenroll::domain::customer::parse_iso_date;
use ezenroll::http::auth::Role;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "ezenroll",
    version,
    about = "Insurance-enrollment workflow engine"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Price quote requests read from stdin; answers go to stdout as JSON.
    ///
    /// Reads one request, or a JSON array of them, and answers in order. An underwriting
    /// refusal is an answer (exit 0); malformed input exits 2, naming the field.
    Quote {
        /// The date quotes without a `quoteDate` are priced on (default: today in Korea).
        #[arg(long, value_parser = parse_date)]
        today: Option<NaiveDate>,
        /// Indent the JSON answer.
        #[arg(long)]
        pretty: bool,
    },
    /// Print the built-in demo catalog as JSON.
    ///
    /// Each product definition can be sent as `product` in a quote request, or named by
    /// its `productCode`.
    Products,
    /// Print the HTTP API's OpenAPI 3.1 document (what `GET /openapi.json` serves).
    ///
    /// Feed it to a client generator or a contract tester; no server is needed.
    Openapi,
    /// Run the HTTP API, the engine and its consumers until SIGINT or SIGTERM.
    ///
    /// State lives in Redis with `--redis-url`, else in the embedded memory store. On a
    /// signal it stops accepting, ends the event streams, answers the requests in flight
    /// (for up to --shutdown-grace; a second signal stops waiting) and stops the engine,
    /// whose consumers first handle what the event log holds.
    Serve(Box<ServeArgs>),
    /// Run one event-log consumer on the shared Redis until SIGINT or SIGTERM.
    ///
    /// The Notifier or the MyPage projector, sharing its consumer group with every other
    /// process on the same Redis.
    Worker(WorkerArgs),
    /// Mint a bearer token (HS256 JWT) for the gateway and print it to stdout.
    ///
    /// The token is signed with the server's secret (`--jwt-secret` or
    /// `EZENROLL_JWT_SECRET`), or with `--dev` with the secret of the development server
    /// running on this machine. Exit 2 without either.
    Token(TokenArgs),
}

#[derive(clap::Args)]
pub struct TokenArgs {
    /// The token's role.
    #[arg(long, value_enum)]
    pub role: Role,
    /// The subject: the customer number (e.g. C000000001) for a customer token, required
    /// for one; free text for an admin token (default `admin`).
    #[arg(long, required_if_eq("role", "customer"))]
    pub sub: Option<String>,
    /// How long the token is valid (e.g. `30m`, `1h`, `12h`).
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    pub ttl: Duration,
    /// The HMAC secret tokens are signed with (at least 16 bytes).
    #[arg(long, env = "EZENROLL_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// Sign with the secret of the development server (`serve` without a secret) that
    /// listens on `--listen` on this machine, as the same user.
    #[arg(long)]
    pub dev: bool,
    /// With `--dev`: the address the development server listens on.
    #[arg(long, env = "EZENROLL_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// The longest lifetime the server accepts (its `--max-token-lifetime`); a longer
    /// `--ttl` is refused.
    #[arg(long, env = "EZENROLL_MAX_TOKEN_LIFETIME", default_value = "24h", value_parser = parse_positive_duration)]
    pub max_token_lifetime: Duration,
}

/// Where `serve` listens unless told otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "EZENROLL_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// How long issuing a product document takes (e.g. `3s`, `500ms`).
    #[arg(long, env = "EZENROLL_DOCUMENT_DELAY", default_value = "3s", value_parser = parse_duration)]
    pub document_delay: Duration,
    /// Largest request body accepted, in bytes (larger ones get 413).
    #[arg(long, env = "EZENROLL_BODY_LIMIT", default_value_t = 64 * 1024)]
    pub body_limit: u64,
    /// Requests a second each caller may send to this copy: a caller is a verified token's
    /// subject, else the client's address. Over it (and its burst), 429 with Retry-After.
    /// `/livez`, `/readyz` and `/metrics` are never limited. 0 turns the limit off.
    #[arg(long, env = "EZENROLL_RATE_LIMIT", default_value_t = ezenroll::http::RateLimit::DEFAULT.per_second)]
    pub rate_limit: u32,
    /// Requests a caller may send at once above --rate-limit (default: two seconds' worth).
    #[arg(long, env = "EZENROLL_RATE_BURST", value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_burst: Option<u32>,
    /// Connections open at once (default: half the open-file limit, `ulimit -n`). At the
    /// cap a new connection takes the place of the one idle the longest; when all are
    /// busy it is answered 503. 0 sets no cap.
    #[arg(long, env = "EZENROLL_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Log format on stderr; the level comes from `RUST_LOG` (default `info`).
    #[arg(long, env = "EZENROLL_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Threads that serve HTTP, and as many that run the enrollment actors (default: one
    /// per core). 1 runs the whole server on one thread, with no hand-offs between
    /// threads: right when Redis has the machine's other core.
    #[arg(long, env = "EZENROLL_THREADS", value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: Option<u16>,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Which consumers this process runs besides the API (`none` leaves them to
    /// `ezenroll worker` processes; only sensible with Redis).
    #[arg(long, env = "EZENROLL_CONSUMERS", value_enum, default_value_t = Consumers::All)]
    pub consumers: Consumers,
    /// The HMAC secret bearer tokens are verified with (at least 16 bytes). Without one,
    /// the server runs in development mode: a random secret, an admin token on stderr,
    /// and `ezenroll token --dev` for more tokens.
    #[arg(long, env = "EZENROLL_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// The longest a bearer token may live (`exp − iat`); longer ones are refused, so a
    /// token minted to never expire is no token.
    #[arg(long, env = "EZENROLL_MAX_TOKEN_LIFETIME", default_value = "24h", value_parser = parse_positive_duration)]
    pub max_token_lifetime: Duration,
    /// Payments waiting for the payment provider before callers hear "busy" (503).
    #[arg(long, env = "EZENROLL_PAYMENT_QUEUE", default_value_t = 256)]
    pub payment_queue: usize,
    /// Payment-provider calls in flight at once.
    #[arg(long, env = "EZENROLL_PAYMENT_CONCURRENCY", default_value_t = 64)]
    pub payment_concurrency: usize,
    /// Simulated payment provider: how long a call takes.
    #[arg(long, env = "EZENROLL_PAYMENT_LATENCY", default_value = "20ms", value_parser = parse_duration)]
    pub payment_latency: Duration,
    /// Simulated payment provider: share of charges declined (0 to 1).
    #[arg(long, env = "EZENROLL_PAYMENT_DECLINE_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    pub payment_decline_rate: f64,
    /// Simulated payment provider: share of calls that fail (0 to 1); failures open the
    /// payment breaker.
    #[arg(long, env = "EZENROLL_PAYMENT_FAILURE_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    pub payment_failure_rate: f64,
    /// After SIGINT/SIGTERM, how long requests in flight may take to be answered before
    /// the engine stops anyway.
    #[arg(long, env = "EZENROLL_SHUTDOWN_GRACE", default_value = "30s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
    /// After SIGINT/SIGTERM, how long this copy keeps accepting requests (sending them on
    /// to the copies that took its enrollments over) while `/readyz` says not ready, so a
    /// load balancer stops sending to it before it closes its socket.
    #[arg(long, env = "EZENROLL_DRAIN_DELAY", default_value = "0s", value_parser = parse_duration)]
    pub drain_delay: Duration,
    /// With Redis: the address (`host:port`) the other copies on the same Redis reach this
    /// one at, to send it the requests about the enrollments it owns. Default: the
    /// `--listen` address, or 127.0.0.1 with its port when it listens on all interfaces.
    #[arg(long, env = "EZENROLL_ADVERTISE")]
    pub advertise: Option<String>,
    /// With Redis: how long this copy's heartbeat and its hold on its share of the
    /// enrollments last unless renewed: a copy that dies has its enrollments taken over
    /// by the others after this long.
    #[arg(long, env = "EZENROLL_OWNERSHIP_LEASE", default_value = "10s", value_parser = parse_positive_duration)]
    pub ownership_lease: Duration,
    /// How long a durable timer (document issuance, plan expiry, refund retry) claimed by
    /// a process stays leased to it: if that process dies, another (or the restarted one)
    /// fires the timer again after this long. Keep it above a payment call's latency.
    #[arg(long, env = "EZENROLL_TIMER_LEASE", default_value = "30s", value_parser = parse_positive_duration)]
    pub timer_lease: Duration,
    /// How long an event may stay delivered but unacknowledged (its consumer died) before
    /// another consumer of the group takes it over.
    #[arg(long, env = "EZENROLL_CLAIM_IDLE", default_value = "30s", value_parser = parse_positive_duration)]
    pub claim_idle: Duration,
    #[command(flatten)]
    pub linger: LingerArgs,
}

/// How long each consumer lets events gather after a read that found less than a full
/// batch, before reading again.
#[derive(clap::Args)]
pub struct LingerArgs {
    /// The Notifier's. `0ms` reads again at once: alarms go out without delay and each
    /// batch's alarm script stays short (a long one holds up appends).
    #[arg(long, alias = "consumer-linger", env = "EZENROLL_NOTIFIER_LINGER", default_value = "0ms", value_parser = parse_duration)]
    pub notifier_linger: Duration,
    /// The MyPage projector's. It writes one view for all of an enrollment's events in a
    /// batch, so lingering writes fewer views; views lag by up to this much more.
    #[arg(long, env = "EZENROLL_MYPAGE_LINGER", default_value = "20ms", value_parser = parse_duration)]
    pub mypage_linger: Duration,
}

/// How the data is laid out in Redis; every process sharing a Redis must agree.
#[derive(clap::Args)]
pub struct RedisLayout {
    /// Starts every Redis key (processes sharing data must share it).
    #[arg(long, env = "EZENROLL_REDIS_PREFIX", default_value = "ez:")]
    pub redis_prefix: String,
    /// Partitions of the event log (processes sharing a Redis must agree).
    #[arg(long, env = "EZENROLL_PARTITIONS", default_value_t = 16)]
    pub partitions: u16,
}

/// Where `serve` keeps its state: the embedded memory store, or Redis when a URL is given.
#[derive(clap::Args)]
pub struct StoreArgs {
    /// Redis to keep everything in: `redis://host:port/db`, or `redis+cluster://h:p,h:p`
    /// for a Redis Cluster. Without it, the embedded memory store (nothing survives).
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: Option<String>,
    #[command(flatten)]
    pub layout: RedisLayout,
}

/// The Redis a worker shares with the `serve` processes; a worker has no store of its own.
#[derive(clap::Args)]
pub struct WorkerStoreArgs {
    /// The Redis the `serve` processes keep their state in: `redis://host:port/db`, or
    /// `redis+cluster://h:p,h:p` for a Redis Cluster.
    #[arg(long, env = "REDIS_URL", required = true)]
    pub redis_url: String,
    #[command(flatten)]
    pub layout: RedisLayout,
}

impl RedisLayout {
    /// Opens the store: Redis at `url`, or the embedded memory store without one.
    pub async fn open(&self, url: Option<&str>) -> anyhow::Result<Arc<dyn ezenroll::store::Store>> {
        use ezenroll::store::memory::MemoryStore;
        use ezenroll::store::redis::{RedisConfig, RedisStore};
        let partitions = self.partitions.max(1);
        Ok(match url {
            None => Arc::new(MemoryStore::new(partitions)),
            Some(url) => {
                let config = RedisConfig::new(url.to_owned())
                    .with_prefix(self.redis_prefix.clone())
                    .with_partitions(partitions);
                let store = RedisStore::connect(config)
                    .await
                    .map_err(|e| anyhow::anyhow!("cannot use Redis at {url}: {e}"))?;
                Arc::new(store)
            }
        })
    }
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Consumers {
    /// The Notifier and the MyPage projector.
    All,
    Notifier,
    Mypage,
    None,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WorkerRole {
    /// Sends a notification (알림톡) per status change.
    Notifier,
    /// Keeps the MyPage read model (내보험 조회).
    Mypage,
}

#[derive(clap::Args)]
pub struct WorkerArgs {
    /// Which consumer to run.
    #[arg(long, value_enum)]
    pub role: WorkerRole,
    #[command(flatten)]
    pub store: WorkerStoreArgs,
    /// Log format on stderr; the level comes from `RUST_LOG` (default `info`).
    #[arg(long, env = "EZENROLL_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// How long an event may stay delivered but unacknowledged (its consumer died) before
    /// another consumer of the group takes it over.
    #[arg(long, env = "EZENROLL_CLAIM_IDLE", default_value = "30s", value_parser = parse_positive_duration)]
    pub claim_idle: Duration,
    #[command(flatten)]
    pub linger: LingerArgs,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// The consumers' settings with `claim_idle` and `linger`; stale entries are looked for
/// six times per idle period, so a dead consumer's entries wait about one idle period.
pub fn consumer_config(
    claim_idle: Duration,
    linger: Duration,
) -> ezenroll::actors::consumers::ConsumerConfig {
    ezenroll::actors::consumers::ConsumerConfig {
        claim_idle,
        linger,
        claim_every: (claim_idle / 6).clamp(Duration::from_millis(100), Duration::from_secs(5)),
        ..ezenroll::actors::consumers::ConsumerConfig::default()
    }
}

/// A share from 0 to 1.
fn parse_rate(text: &str) -> Result<f64, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|r| (0.0..=1.0).contains(r))
        .ok_or_else(|| format!("{text:?} is not a rate from 0 to 1"))
}

/// `500ms`, `3s`, `2m`, `1h`; a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 500ms, 3s, 2m or 1h"))?;
    let secs = |factor: u64| {
        n.checked_mul(factor)
            .map(Duration::from_secs)
            .ok_or_else(|| format!("{text:?} is too long"))
    };
    match unit.trim() {
        "ms" => Ok(Duration::from_millis(n)),
        "" | "s" => secs(1),
        "m" => secs(60),
        "h" => secs(3600),
        other => Err(format!(
            "unknown unit {other:?} in {text:?}; use ms, s, m or h"
        )),
    }
}

/// A duration as [`parse_duration`] reads it, but not zero.
fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    parse_duration(text).and_then(|d| {
        if d.is_zero() {
            Err(format!("{text:?} must be longer than zero"))
        } else {
            Ok(d)
        }
    })
}

fn parse_date(text: &str) -> Result<NaiveDate, String> {
    parse_iso_date(text)
}

/// Today in Korea (UTC+9), the date insurance ages are counted on.
pub fn korean_today() -> NaiveDate {
    ezenroll::domain::time::korean_date(chrono::Utc::now())
}
