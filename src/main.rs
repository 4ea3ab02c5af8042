//! `ezenroll`: the one binary. `ezenroll serve` runs the HTTP gateway, the engine and its
//! consumers on the embedded memory store; `ezenroll quote` prices quotes from stdin;
//! `ezenroll token` mints a bearer token; `ezenroll worker --role notifier|mypage` runs one
//! consumer on the shared Redis. With `REDIS_URL` (or `--redis-url`) state lives in Redis.

// mimalloc: the engine allocates many small, short-lived objects across threads
// (messages, envelopes, futures), where glibc malloc showed up as a third of the profile.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use chrono::NaiveDate;
use clap::{Parser, Subcommand};
use ezenroll::api::QuoteService;
use ezenroll::domain::catalog::Catalog;
use ezenroll::domain::customer::parse_iso_date;
use ezenroll::http::auth::{AuthKeys, Role};
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

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
    /// Run the HTTP API, the engine and its consumers (on Redis with `--redis-url`, else
    /// on the embedded memory store) until SIGINT or SIGTERM; then stop accepting, end
    /// the event streams, answer the requests in flight (for up to --shutdown-grace; a
    /// second signal stops waiting) and stop the engine, whose consumers first handle
    /// what the event log holds.
    Serve(ServeArgs),
    /// Run one event-log consumer and nothing else (Redis only): the Notifier or the MyPage
    /// projector, sharing its consumer group with every other process, until SIGINT or
    /// SIGTERM.
    Worker(WorkerArgs),
    /// Mint a bearer token (HS256 JWT) for the gateway and print it to stdout. The secret
    /// must be the server's (`--jwt-secret` or `EZENROLL_JWT_SECRET`); exit 2 without one.
    Token(TokenArgs),
}

#[derive(clap::Args)]
struct TokenArgs {
    /// The token's role.
    #[arg(long, value_enum)]
    role: Role,
    /// The subject: the customer number (e.g. C000000001) for a customer token, required
    /// for one; free text for an admin token (default `admin`).
    #[arg(long, required_if_eq("role", "customer"))]
    sub: Option<String>,
    /// How long the token is valid (e.g. `30m`, `1h`, `12h`).
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    ttl: Duration,
    /// The HMAC secret tokens are signed with (at least 16 bytes).
    #[arg(long, env = "EZENROLL_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "EZENROLL_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// How long issuing a product document takes (e.g. `3s`, `500ms`).
    #[arg(long, env = "EZENROLL_DOCUMENT_DELAY", default_value = "3s", value_parser = parse_duration)]
    document_delay: Duration,
    /// Largest request body accepted, in bytes (larger ones get 413).
    #[arg(long, env = "EZENROLL_BODY_LIMIT", default_value_t = 64 * 1024)]
    body_limit: u64,
    /// Log format on stderr; the level comes from `RUST_LOG` (default `info`).
    #[arg(long, env = "EZENROLL_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Threads that serve HTTP, and as many that run the enrollment actors (default: one
    /// per core). 1 runs the whole server on one thread: no hand-offs between threads, so
    /// the most enrollments per CPU second; right when Redis has the machine's other core.
    #[arg(long, env = "EZENROLL_THREADS", value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,
    #[command(flatten)]
    store: StoreArgs,
    /// Which consumers this process runs besides the API (`none` leaves them to
    /// `ezenroll worker` processes; only sensible with Redis).
    #[arg(long, env = "EZENROLL_CONSUMERS", value_enum, default_value_t = Consumers::All)]
    consumers: Consumers,
    /// The HMAC secret bearer tokens are verified with (at least 16 bytes). Without one,
    /// the server makes up a random secret and prints an admin token (development mode).
    #[arg(long, env = "EZENROLL_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
    /// Payments waiting for the payment provider before callers hear "busy" (503).
    #[arg(long, env = "EZENROLL_PAYMENT_QUEUE", default_value_t = 256)]
    payment_queue: usize,
    /// Payment-provider calls in flight at once.
    #[arg(long, env = "EZENROLL_PAYMENT_CONCURRENCY", default_value_t = 64)]
    payment_concurrency: usize,
    /// Simulated payment provider: how long a call takes.
    #[arg(long, env = "EZENROLL_PAYMENT_LATENCY", default_value = "20ms", value_parser = parse_duration)]
    payment_latency: Duration,
    /// Simulated payment provider: share of charges declined (0 to 1).
    #[arg(long, env = "EZENROLL_PAYMENT_DECLINE_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    payment_decline_rate: f64,
    /// Simulated payment provider: share of calls that fail (0 to 1); failures open the
    /// payment breaker.
    #[arg(long, env = "EZENROLL_PAYMENT_FAILURE_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    payment_failure_rate: f64,
    /// After SIGINT/SIGTERM, how long requests in flight may take to be answered before
    /// the engine stops anyway.
    #[arg(long, env = "EZENROLL_SHUTDOWN_GRACE", default_value = "30s", value_parser = parse_duration)]
    shutdown_grace: Duration,
    /// How long a durable timer (document issuance, plan expiry, refund retry) claimed by
    /// a process stays leased to it: if that process dies, another (or the restarted one)
    /// fires the timer again after this long. Keep it above a payment call's latency.
    #[arg(long, env = "EZENROLL_TIMER_LEASE", default_value = "30s", value_parser = parse_positive_duration)]
    timer_lease: Duration,
    /// How long an event may stay delivered but unacknowledged (its consumer died) before
    /// another consumer of the group takes it over.
    #[arg(long, env = "EZENROLL_CLAIM_IDLE", default_value = "30s", value_parser = parse_positive_duration)]
    claim_idle: Duration,
    #[command(flatten)]
    linger: LingerArgs,
}

/// How long each consumer lets events gather after a read that found less than a full
/// batch, before reading again.
#[derive(clap::Args)]
struct LingerArgs {
    /// The Notifier's. `0ms` (the default) reads again at once: alarms go out without
    /// delay and each batch's alarm script stays short (a long one holds up appends).
    #[arg(long, alias = "consumer-linger", env = "EZENROLL_NOTIFIER_LINGER", default_value = "0ms", value_parser = parse_duration)]
    notifier_linger: Duration,
    /// The MyPage projector's. It writes one view for all the events of an enrollment
    /// in a batch, so lingering writes fewer views (1.4 instead of 3.2 per enrollment at
    /// 20 ms under `scripts/load-redis.sh`); views lag by up to this much more.
    #[arg(long, env = "EZENROLL_MYPAGE_LINGER", default_value = "20ms", value_parser = parse_duration)]
    mypage_linger: Duration,
}

/// Where state lives: the embedded memory store, or Redis when a URL is given.
#[derive(clap::Args)]
struct StoreArgs {
    /// Redis to keep everything in: `redis://host:port/db`, or `redis+cluster://h:p,h:p`
    /// for a Redis Cluster. Without it, the embedded memory store (nothing survives).
    #[arg(long, env = "REDIS_URL")]
    redis_url: Option<String>,
    /// Starts every Redis key (processes sharing data must share it).
    #[arg(long, env = "EZENROLL_REDIS_PREFIX", default_value = "ez:")]
    redis_prefix: String,
    /// Partitions of the event log (processes sharing a Redis must agree).
    #[arg(long, env = "EZENROLL_PARTITIONS", default_value_t = 16)]
    partitions: u16,
}

impl StoreArgs {
    async fn open(&self) -> anyhow::Result<Arc<dyn ezenroll::store::Store>> {
        use ezenroll::store::memory::MemoryStore;
        use ezenroll::store::redis::{RedisConfig, RedisStore};
        let partitions = self.partitions.max(1);
        Ok(match &self.redis_url {
            None => Arc::new(MemoryStore::new(partitions)),
            Some(url) => {
                let config = RedisConfig::new(url.clone())
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
enum Consumers {
    /// The Notifier and the MyPage projector.
    All,
    Notifier,
    Mypage,
    None,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum WorkerRole {
    /// Sends a notification (알림톡) per status change.
    Notifier,
    /// Keeps the MyPage read model (내보험 조회).
    Mypage,
}

#[derive(clap::Args)]
struct WorkerArgs {
    /// Which consumer to run.
    #[arg(long, value_enum)]
    role: WorkerRole,
    #[command(flatten)]
    store: StoreArgs,
    /// Log format on stderr; the level comes from `RUST_LOG` (default `info`).
    #[arg(long, env = "EZENROLL_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// How long an event may stay delivered but unacknowledged (its consumer died) before
    /// another consumer of the group takes it over.
    #[arg(long, env = "EZENROLL_CLAIM_IDLE", default_value = "30s", value_parser = parse_positive_duration)]
    claim_idle: Duration,
    #[command(flatten)]
    linger: LingerArgs,
}

/// The consumers' settings with `claim_idle` and `linger`; stale entries are looked for
/// six times per idle period (every 5 s at the default 30 s), at most every 100 ms.
fn consumer_config(
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

/// How long the admin token printed in development mode is valid.
const DEV_TOKEN_TTL: Duration = Duration::from_secs(12 * 3600);

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// `500ms`, `3s`, `2m`, `1h`; a bare number is seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
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
fn korean_today() -> NaiveDate {
    ezenroll::domain::time::korean_date(chrono::Utc::now())
}

fn main() -> ExitCode {
    ezenroll::os::disable_transparent_huge_pages();
    let cli = Cli::parse();
    match cli.command {
        Command::Quote { today, pretty } => quote(today.unwrap_or_else(korean_today), pretty),
        Command::Products => {
            let catalog = Catalog::demo();
            let products: Vec<_> = catalog.latest_all().map(|p| p.product()).collect();
            write_stdout(|out| serde_json::to_writer_pretty(out, &products).map_err(Into::into))
        }
        Command::Serve(args) => serve(args),
        Command::Worker(args) => worker(args),
        Command::Token(args) => token(args),
    }
}

fn token(args: TokenArgs) -> ExitCode {
    let Some(secret) = args.jwt_secret.filter(|s| !s.is_empty()) else {
        eprintln!(
            "ezenroll token: no secret; pass --jwt-secret or set EZENROLL_JWT_SECRET \
             (the one the server runs with)"
        );
        return ExitCode::from(2);
    };
    let keys = match AuthKeys::from_secret(secret.as_bytes()) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("ezenroll token: {e}");
            return ExitCode::from(2);
        }
    };
    let sub = args.sub.unwrap_or_else(|| "admin".to_owned());
    match keys.mint(args.role, &sub, args.ttl) {
        Ok(token) => write_stdout(|out| writeln!(out, "{token}")),
        Err(e) => {
            eprintln!("ezenroll token: {e}");
            ExitCode::from(2)
        }
    }
}

/// The token keys of `serve`: from the configured secret, or, with none, from a random
/// one made up for this run, announced loudly with an admin token to use.
fn serve_keys(secret: Option<String>) -> anyhow::Result<AuthKeys> {
    if let Some(secret) = secret.filter(|s| !s.is_empty()) {
        return Ok(AuthKeys::from_secret(secret.as_bytes())?);
    }
    let secret = ezenroll::http::auth::random_secret()?;
    let keys = AuthKeys::from_secret(secret.as_bytes())?;
    let token = keys.mint(Role::Admin, "dev-admin", DEV_TOKEN_TTL)?;
    tracing::warn!(
        "development mode: no JWT secret configured; tokens are signed with a random \
         secret for this run only (an admin token is printed on stderr)"
    );
    eprintln!(
        "\n\
         ************************************************************************\n\
         *  DEVELOPMENT MODE: no --jwt-secret / EZENROLL_JWT_SECRET configured.  *\n\
         *  Tokens are signed with a random secret that dies with this process.  *\n\
         *  Never run like this in production.                                   *\n\
         ************************************************************************\n\
         An admin token, valid for {} h:\n\n\
         export TOKEN={token}\n\n\
         For customer tokens, run with EZENROLL_JWT_SECRET set and use `ezenroll token`.\n",
        DEV_TOKEN_TTL.as_secs() / 3600
    );
    Ok(keys)
}

/// Logs to stderr, batched in memory and written by a background thread (see
/// `ezenroll::logging`): lines wait at most 50 ms and are never dropped. Keep the returned
/// guard alive: dropping it writes out what is still waiting.
fn init_tracing(format: LogFormat) -> Option<ezenroll::logging::LogGuard> {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only for a person at a terminal, not in files or log collectors.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let (writer, guard) =
        match ezenroll::logging::BatchedLog::start(std::io::stderr(), "ezenroll-log") {
            Ok(started) => started,
            Err(e) => {
                eprintln!("ezenroll: logging is not available: {e}");
                return None;
            }
        };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(writer);
    let installed = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    match installed {
        Ok(()) => Some(guard),
        Err(e) => {
            eprintln!("ezenroll: logging is not available: {e}");
            None
        }
    }
}

fn serve(args: ServeArgs) -> ExitCode {
    let _log = init_tracing(args.log_format);
    // Actors need an actix System, which runs on the tokio runtime that serves HTTP: a
    // multi-thread one, or with --threads 1 a current-thread one, where the engine puts
    // its actors on the System's own arbiter and one thread does everything.
    let built = match args.threads {
        Some(1) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        Some(n) => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(usize::from(n))
            .enable_all()
            .build(),
        None => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
    };
    let runtime = match built {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the runtime");
            return ExitCode::FAILURE;
        }
    };
    let system = actix_rt::System::with_tokio_rt(move || runtime);
    match system.block_on(run_server(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "ezenroll serve failed");
            ExitCode::FAILURE
        }
    }
}

async fn run_server(args: ServeArgs) -> anyhow::Result<()> {
    use ezenroll::actors::payment::{GatewayConfig, Simulation};
    use ezenroll::actors::{Engine, EngineConfig};
    use ezenroll::http::{self, HttpConfig};

    let auth = serve_keys(args.jwt_secret)?;
    let config = EngineConfig {
        document_delay: args.document_delay,
        payment: GatewayConfig {
            mailbox_capacity: args.payment_queue,
            max_in_flight: args.payment_concurrency.max(1),
            ..GatewayConfig::default()
        },
        simulation: Simulation {
            latency: args.payment_latency,
            decline_rate: args.payment_decline_rate,
            failure_rate: args.payment_failure_rate,
        },
        timer_lease: args.timer_lease,
        consumers: consumer_config(args.claim_idle, args.linger.notifier_linger),
        projector_linger: args.linger.mypage_linger,
        run_notifier: matches!(args.consumers, Consumers::All | Consumers::Notifier),
        run_projector: matches!(args.consumers, Consumers::All | Consumers::Mypage),
        ..EngineConfig::default()
    };
    let config = match args.threads {
        // On the System's arbiter, this very thread.
        Some(1) => EngineConfig {
            arbiters: 0,
            ..config
        },
        Some(n) => EngineConfig {
            arbiters: usize::from(n),
            ..config
        },
        None => config,
    };
    let store = args.store.open().await?;
    let engine = Engine::start(config, store).await?;
    let http_config = HttpConfig {
        body_limit: args.body_limit,
        ..HttpConfig::new(auth)
    };
    let signalled = Arc::new(tokio::sync::Notify::new());
    let shutdown = {
        let signalled = Arc::clone(&signalled);
        async move {
            shutdown_signal().await;
            // A stored permit: the wait below cannot miss it.
            signalled.notify_one();
        }
    };
    let (addr, server) = match http::serve(engine.clone(), args.listen, http_config, shutdown) {
        Ok(bound) => bound,
        Err(e) => {
            engine.shutdown().await;
            return Err(e.into());
        }
    };
    tracing::info!(%addr, backend = engine.store().backend(), "ezenroll is listening");
    let mut server = std::pin::pin!(server);
    // The server ends only after a signal, so either way its requests are answered here.
    tokio::select! {
        () = &mut server => tracing::info!("in-flight requests answered"),
        () = signalled.notified() => drain(server, args.shutdown_grace).await,
    }
    // The HTTP server has answered what it accepted, so its events are in the log for
    // the consumers to handle before they stop.
    tracing::info!("stopping the engine");
    engine.shutdown().await;
    Ok(())
}

fn worker(args: WorkerArgs) -> ExitCode {
    let _log = init_tracing(args.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run_worker(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "ezenroll worker failed");
            ExitCode::FAILURE
        }
    }
}

async fn run_worker(args: WorkerArgs) -> anyhow::Result<()> {
    use ezenroll::actors::EngineConfig;
    use ezenroll::actors::consumers::{self, AlarmChannel, StoreChannel};
    if args.store.redis_url.is_none() {
        anyhow::bail!(
            "a worker needs the shared store: give --redis-url or REDIS_URL (on the memory \
             store, `ezenroll serve` runs the consumers itself)"
        );
    }
    let store = args.store.open().await?;
    let defaults = EngineConfig::default();
    let consumer = match args.role {
        WorkerRole::Notifier => {
            consumers::start_notifier(
                store,
                consumer_config(args.claim_idle, args.linger.notifier_linger),
                &defaults.instance,
                Arc::new(StoreChannel) as Arc<dyn AlarmChannel>,
            )
            .await?
        }
        WorkerRole::Mypage => {
            consumers::start_projector(
                store,
                consumer_config(args.claim_idle, args.linger.mypage_linger),
                &defaults.instance,
            )
            .await?
        }
    };
    tracing::info!(consumer = consumer.name(), "worker running");
    shutdown_signal().await;
    tracing::info!("stopping after the batch in hand");
    consumer.stop().await;
    Ok(())
}

/// Waits for the HTTP server to answer the requests in flight, for up to `grace` or until
/// a second signal: a stuck client must not keep the process from stopping.
async fn drain(server: std::pin::Pin<&mut impl std::future::Future<Output = ()>>, grace: Duration) {
    tokio::select! {
        () = server => tracing::info!("in-flight requests answered"),
        () = tokio::time::sleep(grace) => tracing::warn!(
            grace_secs = grace.as_secs_f64(),
            "requests still in flight after the shutdown grace; stopping anyway"
        ),
        () = shutdown_signal() => tracing::warn!("second signal: not waiting for requests in flight"),
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!("SIGINT received"),
        () = terminate => tracing::info!("SIGTERM received"),
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
