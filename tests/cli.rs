//! The binary as a user runs it: `ezenroll quote` (stdin in, stdout/stderr and the exit
//! status out), `ezenroll serve` stopping on SIGTERM, `ezenroll token --dev` against a
//! development server, and usage errors; and the deployment files (deploy/k8s, the
//! Dockerfile) against the binary they run.

use serde_json::{Value, json};
use std::io::Write;
use std::process::{Command, Output, Stdio};

// A crate root's modules are looked for beside it (tests/manifests.rs); the path keeps
// this test's files under tests/cli/.
#[path = "cli/manifests.rs"]
mod manifests;

fn run(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ezenroll"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ezenroll");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write stdin");
    child.wait_with_output().expect("ezenroll finishes")
}

fn quote(input: &Value) -> Output {
    run(&["quote"], input.to_string().as_bytes())
}

fn request() -> Value {
    json!({
        "productCode": "EZ-TERM",
        "insured": {"birthDate": "1986-05-01", "gender": "male"},
        "quoteDate": "2026-11-24",
        "sumInsured": 100_000_000,
        "coveragePeriod": 20,
        "paymentPeriod": 20,
        "paymentCycle": "monthly"
    })
}

fn stdout_json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn prices_one_request() {
    let out = quote(&request());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let answer = stdout_json(&out);
    assert_eq!(answer["insuranceAge"], 41);
    assert_eq!(answer["productCode"], "EZ-TERM");
    let installment = answer["installment"].as_u64().expect("installment");
    assert_eq!(answer["annualizedPremium"].as_u64(), Some(installment * 12));
    for factor in [
        "insurance",
        "annuityDue",
        "annuityDueK",
        "annuityDueCoverage",
    ] {
        assert!(
            answer["factors"][factor].as_f64().is_some_and(|f| f > 0.0),
            "{factor}"
        );
    }
}

#[test]
fn prices_a_burst_in_order_with_refusals_as_normal_results() {
    let mut too_old = request();
    too_old["insured"]["birthDate"] = json!("1950-01-01");
    let mut wl = request();
    wl["productCode"] = json!("EZ-WL");
    wl["coveragePeriod"] = json!("wholeLife");
    wl["paymentPeriod"] = json!(20);
    let out = quote(&json!([request(), too_old, wl]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let answers = stdout_json(&out);
    let answers = answers.as_array().expect("an array answers an array");
    assert_eq!(answers.len(), 3);
    assert!(answers[0]["installment"].is_u64());
    assert_eq!(
        answers[1]["violations"][0]["code"],
        "ENTRY_AGE_ABOVE_MAXIMUM"
    );
    assert!(answers[1].get("installment").is_none());
    assert_eq!(answers[2]["productCode"], "EZ-WL");
}

#[test]
fn an_inline_product_is_priced() {
    let products = run(&["products"], b"");
    assert_eq!(products.status.code(), Some(0));
    let catalog = stdout_json(&products);
    let term = catalog
        .as_array()
        .and_then(|a| a.iter().find(|p| p["code"] == "EZ-TERM"))
        .cloned()
        .expect("EZ-TERM in the demo catalog");
    let mut inline = request();
    inline
        .as_object_mut()
        .expect("object")
        .remove("productCode");
    inline["product"] = term;
    let by_code = stdout_json(&quote(&request()));
    let out = quote(&inline);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout_json(&out)["installment"], by_code["installment"]);
}

fn assert_refused(input: &[u8], expected: &[&str]) {
    let out = run(&["quote"], input);
    assert_eq!(
        out.status.code(),
        Some(2),
        "stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        out.stdout.is_empty(),
        "nothing is written on malformed input"
    );
    let err = stderr(&out);
    for part in expected {
        assert!(err.contains(part), "stderr {err:?} should contain {part:?}");
    }
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn malformed_json_exits_2() {
    assert_refused(b"{\"productCode\": ", &["EOF"]);
    assert_refused(b"", &["empty"]);
    assert_refused(b"[1, 2]", &["[0]", "expected a JSON object"]);
    assert_refused(
        b"[[1, 2]]",
        &["[0]", "invalid type: array, expected a JSON object"],
    );
    assert_refused(&[0xff, 0xfe, b'{'], &["UTF-8"]);
}

#[test]
fn a_wrong_field_is_named() {
    let mut r = request();
    r["sumInsured"] = json!("a lot");
    assert_refused(r.to_string().as_bytes(), &["sumInsured", "invalid type"]);

    let mut r = request();
    r["insured"]["birthDate"] = json!("1986-02-30");
    assert_refused(
        r.to_string().as_bytes(),
        &["insured.birthDate", "not a calendar date"],
    );

    let mut r = request();
    r["insured"]["gender"] = json!("other");
    assert_refused(
        r.to_string().as_bytes(),
        &["insured.gender", "unknown variant"],
    );

    let mut r = request();
    r["paymentPeriod"] = json!(0);
    assert_refused(r.to_string().as_bytes(), &["paymentPeriod", "1 to 120"]);

    let mut r = request();
    r.as_object_mut().expect("object").remove("paymentCycle");
    assert_refused(r.to_string().as_bytes(), &["missing field `paymentCycle`"]);
}

#[test]
fn unknown_fields_are_an_error_not_dropped() {
    let mut r = request();
    r["discount"] = json!(0.1);
    assert_refused(r.to_string().as_bytes(), &["unknown field `discount`"]);
    let mut r = request();
    r["insured"]["smoker"] = json!(true);
    let burst = json!([request(), r]);
    assert_refused(
        burst.to_string().as_bytes(),
        &["[1].insured", "unknown field `smoker`"],
    );
}

#[test]
fn unknown_products_and_nonsense_definitions_exit_2() {
    let mut r = request();
    r["productCode"] = json!("NOPE");
    assert_refused(
        json!([request(), r]).to_string().as_bytes(),
        &["[1].productCode", "NOPE"],
    );

    let mut r = request();
    r["productVersion"] = json!(7);
    assert_refused(
        r.to_string().as_bytes(),
        &["productVersion", "no version 7"],
    );

    let catalog = stdout_json(&run(&["products"], b""));
    let mut product = catalog[0].clone();
    product["rateBasis"]["interest"] = json!(-0.01);
    product["underwriting"]["entryAge"] = json!({"min": 70, "max": 30});
    let mut r = request();
    r.as_object_mut().expect("object").remove("productCode");
    r["product"] = product;
    assert_refused(
        r.to_string().as_bytes(),
        &[
            "product",
            "interest -0.01",
            "entry age min 70 is above max 30",
        ],
    );

    let mut both = request();
    both["product"] = catalog[0].clone();
    assert_refused(
        both.to_string().as_bytes(),
        &["either product or productCode"],
    );
}

/// A running `ezenroll serve` on a free port, its log lines as they come.
#[cfg(unix)]
struct Served {
    child: std::process::Child,
    addr: String,
    lines: std::sync::mpsc::Receiver<String>,
    log: Vec<String>,
    token: String,
}

#[cfg(unix)]
const SECRET: &str = "cli-test-only-secret-0123456789";

/// Starts `ezenroll serve --listen 127.0.0.1:0 --log-format json <extra>` and waits for its
/// "listening" line, which names the address.
#[cfg(unix)]
fn serve(extra: &[&str]) -> Served {
    serve_with(extra, Some(SECRET), &[])
}

/// [`serve`] with the secret it runs with (none: development mode, whose admin token is
/// minted with `ezenroll token --dev`) and more environment.
#[cfg(unix)]
fn serve_with(extra: &[&str], secret: Option<&str>, env: &[(&str, &str)]) -> Served {
    serve_command(extra, secret, env, None)
}

/// [`serve`] with its soft and hard limit on open files (`RLIMIT_NOFILE`) set to
/// `descriptors`, as `ulimit -n` would.
#[cfg(unix)]
fn serve_limited(extra: &[&str], descriptors: u64) -> Served {
    serve_command(extra, Some(SECRET), &[], Some(descriptors))
}

#[cfg(unix)]
fn serve_command(
    extra: &[&str],
    secret: Option<&str>,
    env: &[(&str, &str)],
    descriptors: Option<u64>,
) -> Served {
    use std::io::BufRead;
    use std::time::Duration;

    let mut command = Command::new(env!("CARGO_BIN_EXE_ezenroll"));
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
        .args(extra)
        .env_remove("EZENROLL_JWT_SECRET")
        .env_remove("EZENROLL_MAX_CONNECTIONS")
        .env_remove("EZENROLL_RATE_LIMIT")
        .env_remove("EZENROLL_RATE_BURST")
        .envs(env.iter().copied());
    if let Some(secret) = secret {
        command.env("EZENROLL_JWT_SECRET", secret);
    }
    if let Some(descriptors) = descriptors {
        use std::os::unix::process::CommandExt;
        let limit = libc::rlimit {
            rlim_cur: descriptors as libc::rlim_t,
            rlim_max: descriptors as libc::rlim_t,
        };
        // SAFETY: runs in the forked child before exec; setrlimit is async-signal-safe and
        // only reads `limit`, a copy owned by the closure.
        unsafe {
            command.pre_exec(move || {
                if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
    }
    let mut child = command
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ezenroll serve");
    let (lines_tx, lines) = std::sync::mpsc::channel::<String>();
    let stderr = child.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if lines_tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut log = Vec::new();
    let addr = loop {
        let line = match lines.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => line,
            Err(e) => {
                let _ = child.kill();
                panic!("no 'listening' line ({e}); log: {log:#?}");
            }
        };
        let parsed: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
        log.push(line);
        if parsed["fields"]["message"] == "ezenroll is listening" {
            break parsed["fields"]["addr"]
                .as_str()
                .expect("the address in the log")
                .to_owned();
        }
    };
    let token = match secret {
        Some(secret) => ezenroll::http::auth::AuthKeys::from_secret(secret.as_bytes())
            .expect("keys")
            .mint(
                ezenroll::http::auth::Role::Admin,
                "cli-test",
                Duration::from_secs(60),
            )
            .expect("a token"),
        None => dev_token(&addr, &["--role", "admin"], env).expect("a development token"),
    };
    Served {
        child,
        addr,
        lines,
        log,
        token,
    }
}

#[cfg(unix)]
impl Served {
    /// One request on its own connection; the status and the JSON body.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.call_as(&self.token, method, path, body)
    }

    /// [`Served::call`] with another bearer token.
    fn call_as(&self, token: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        use std::io::Read;
        let mut stream = std::net::TcpStream::connect(&self.addr).expect("connect");
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .expect("a read timeout");
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.addr,
            token,
            body.len()
        )
        .expect("send the request");
        let mut response = Vec::new();
        stream.read_to_end(&mut response).expect("the response");
        let text = String::from_utf8_lossy(&response).into_owned();
        let status = text
            .get(9..12)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status line in {text:?}"));
        let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((text.as_str(), ""));
        // A chunked body is one chunk here: skip its size line.
        let json = if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            rest.split_once("\r\n").map_or("", |(_, r)| r)
        } else {
            rest
        };
        let json = json.trim_end_matches("\r\n0\r\n\r\n");
        (status, serde_json::from_str(json).unwrap_or(Value::Null))
    }

    /// SIGTERM, then waits (20 s at most) for a clean exit; returns the whole log.
    fn stop(mut self) -> String {
        use std::time::{Duration, Instant};
        let killed = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(killed.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("the child") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "serve did not stop within 20 s of SIGTERM; log: {:#?}",
                    self.log
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        // The reader thread ends at the end of stderr, closing the channel.
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.log.push(line);
        }
        assert!(status.success(), "{status}; log: {:#?}", self.log);
        let text = self.log.join("\n");
        for expected in [
            "SIGTERM received",
            "in-flight requests answered",
            "engine stopped",
        ] {
            assert!(text.contains(expected), "no {expected:?} in {text}");
        }
        text
    }
}

/// `ezenroll serve` until SIGTERM: it stops accepting, ends the open event stream rather
/// than wait for the client to hang up, stops the engine and exits 0.
#[cfg(unix)]
#[test]
fn serve_stops_cleanly_on_sigterm_with_a_stream_open() {
    use std::io::Read;
    use std::net::TcpStream;
    use std::time::Duration;

    let served = serve(&[]);
    let addr = served.addr.clone();
    let mut stream = TcpStream::connect(&addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("a read timeout");
    write!(
        stream,
        "GET /events/stream HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\r\n",
        served.token
    )
    .expect("send the request");
    let mut head = [0u8; 256];
    let n = stream.read(&mut head).expect("the response head");
    let head = String::from_utf8_lossy(&head[..n]).into_owned();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("text/event-stream"), "{head}");

    served.stop();
    // The stream was ended by the server, not left hanging.
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).expect("the stream ends");
}

/// `ezenroll serve --threads 1`: HTTP, the actors, the payment gateway, the document
/// issuer and the consumers all on one thread. A whole enrollment goes through, the
/// process runs no arbiter threads, and it stops cleanly.
#[cfg(unix)]
#[test]
fn serve_on_one_thread_enrolls_and_stops() {
    let served = serve(&[
        "--threads",
        "1",
        "--document-delay",
        "0s",
        "--payment-latency",
        "0ms",
    ]);
    let (status, customer) = served.call(
        "POST",
        "/customers",
        Some(
            json!({"name": "한스레드", "birthDate": "1986-05-01", "gender": "female",
                    "mobilePhone": "010-1234-5678"}),
        ),
    );
    assert_eq!(status, 201, "{customer}");
    let no = customer["customerNo"].as_str().expect("a customer number");
    let (status, plan) = served.call(
        "POST",
        "/enrollments",
        Some(
            json!({"customerNo": no, "productCode": "EZ-TERM", "sumInsured": 100_000_000,
                    "coveragePeriod": 20, "paymentPeriod": 20, "paymentCycle": "monthly"}),
        ),
    );
    assert_eq!(status, 201, "{plan}");
    let id = plan["id"].as_str().expect("an enrollment id").to_owned();
    let (status, requested) = served.call("POST", &format!("/enrollments/{id}/document"), None);
    assert_eq!(status, 202, "{requested}");
    let (status, issued) = served.call(
        "GET",
        &format!("/enrollments/{id}?waitWhileStatus=DocumentRequested&waitSeconds=10"),
        None,
    );
    assert_eq!(status, 200, "{issued}");
    assert_eq!(issued["status"], "DocumentIssued", "{issued}");
    let (status, contracted) = served.call(
        "POST",
        &format!("/enrollments/{id}/proposal"),
        Some(json!({"paymentMethod": "card"})),
    );
    assert_eq!(status, 200, "{contracted}");
    assert_eq!(contracted["status"], "Contracted", "{contracted}");

    // The main thread and the log writer, nothing else: no arbiter threads
    // ("actix-rt|system"), no tokio workers ("tokio-rt-worker"), as `--threads 2` has.
    let mut threads = std::fs::read_dir(format!("/proc/{}/task", served.child.id()))
        .expect("the server's threads")
        .filter_map(|t| {
            let path = t.ok()?.path().join("comm");
            Some(std::fs::read_to_string(path).ok()?.trim().to_owned())
        })
        .collect::<Vec<_>>();
    threads.sort();
    assert_eq!(threads, ["ezenroll", "ezenroll-log"]);
    served.stop();
}

/// `GET path` on a connection of its own: the status and the body as text (status 0 when
/// the connection was closed without an answer). Connecting and reading give up after
/// `wait`.
#[cfg(unix)]
fn get_text(addr: &str, path: &str, wait: std::time::Duration) -> (u16, String) {
    use std::io::Read;
    let Some(mut stream) = addr
        .parse()
        .ok()
        .and_then(|a| std::net::TcpStream::connect_timeout(&a, wait).ok())
    else {
        return (0, String::new());
    };
    stream.set_read_timeout(Some(wait)).expect("a read timeout");
    if write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .is_err()
    {
        return (0, String::new());
    }
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    (status, body)
}

/// The value of an unlabelled sample in a `/metrics` text.
#[cfg(unix)]
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

/// Under a limit of 256 open files, 300 idle connections (as a client that opens them and
/// sends nothing) do not keep `/livez` from answering: at the connection cap, half the
/// limit by default, and when accepting fails for want of descriptors (a cap set above
/// what the limit allows), the connection idle the longest makes room for the new one.
/// Failed accepts are logged once, not once a second.
#[cfg(target_os = "linux")]
#[test]
fn livez_answers_while_idle_connections_hog_the_descriptors() {
    use std::net::TcpStream;
    use std::time::Duration;

    const DESCRIPTORS: u64 = 256;
    const IDLE: usize = 300;
    let wait = Duration::from_secs(5);
    for (extra, out_of_descriptors) in [
        (&[][..], false),
        (&["--max-connections", "10000"][..], true),
    ] {
        let served = serve_limited(extra, DESCRIPTORS);
        let limits = served
            .log
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|l| {
                l["fields"]["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("HTTP limits"))
            })
            .unwrap_or_else(|| panic!("no HTTP limits line in {:#?}", served.log));
        let cap = if out_of_descriptors {
            10_000
        } else {
            DESCRIPTORS / 2
        };
        assert_eq!(limits["fields"]["max_connections"], cap, "{limits}");

        let addr: std::net::SocketAddr = served.addr.parse().expect("the address");
        let idle: Vec<TcpStream> = (0..IDLE)
            .filter_map(|_| TcpStream::connect_timeout(&addr, wait).ok())
            .collect();
        assert!(
            idle.len() > DESCRIPTORS as usize,
            "only {} connected",
            idle.len()
        );
        for probe in 0..3 {
            let (status, body) = get_text(&served.addr, "/livez", wait);
            assert_eq!(status, 200, "probe {probe} (cap {cap}): {body:?}");
        }
        let (status, metrics) = get_text(&served.addr, "/metrics", wait);
        assert_eq!(status, 200, "{metrics}");
        assert!(
            metric(&metrics, "ezenroll_connections_shed_total") >= 1.0,
            "{metrics}"
        );
        let accept_errors = metric(&metrics, "ezenroll_accept_errors_total");
        if out_of_descriptors {
            assert!(accept_errors >= 1.0, "{metrics}");
        } else {
            assert!(
                metric(&metrics, "ezenroll_connections_open") <= cap as f64,
                "{metrics}"
            );
        }
        drop(idle);
        let log = served.stop();
        let warned = log
            .lines()
            .filter(|l| l.contains("cannot accept connections"))
            .count();
        assert_eq!(
            warned,
            usize::from(out_of_descriptors),
            "failed accepts are logged once: {log}"
        );
    }
}

/// `--threads 0` is refused at once, naming the option, before anything starts.
#[test]
fn serve_refuses_zero_threads() {
    let out = run(&["serve", "--threads", "0", "--listen", "127.0.0.1:0"], b"");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let text = stderr(&out);
    assert!(text.contains("--threads"), "{text}");
    assert!(text.contains('0'), "{text}");
}

/// Each consumer's linger is its own option, on `serve` and on `worker`; a value that is
/// no duration is refused at once, naming the option.
#[test]
fn consumer_lingers_are_options_of_their_own() {
    for (command, option) in [
        ("serve", "--mypage-linger"),
        ("serve", "--notifier-linger"),
        ("worker", "--mypage-linger"),
        ("worker", "--notifier-linger"),
    ] {
        let out = run(&[command, option, "soon"], b"");
        assert_eq!(
            out.status.code(),
            Some(2),
            "{command} {option}: {}",
            stderr(&out)
        );
        let text = stderr(&out);
        assert!(text.contains(option), "{command} {option}: {text}");
        assert!(text.contains("soon"), "{command} {option}: {text}");
    }
}

/// `ezenroll token --dev --listen <addr> <args>` with `env`: the token, or the exit code and
/// stderr of a refusal.
#[cfg(unix)]
fn dev_token(
    addr: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> Result<String, (Option<i32>, String)> {
    let out = Command::new(env!("CARGO_BIN_EXE_ezenroll"))
        .args(["token", "--dev", "--listen", addr])
        .args(args)
        .env_remove("EZENROLL_JWT_SECRET")
        .envs(env.iter().copied())
        .output()
        .expect("run ezenroll token");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err((out.status.code(), stderr(&out)))
    }
}

/// A development server (no secret) keeps its random secret in a private file while it
/// runs, so `ezenroll token --dev` mints tokens it accepts, a customer's among them,
/// without a restart; once it has stopped, the file is gone and `token --dev` says so.
#[cfg(unix)]
#[test]
fn a_development_server_hands_out_tokens_until_it_stops() {
    use std::os::unix::fs::PermissionsExt;

    let runtime = tempfile::tempdir().expect("a runtime dir");
    let runtime_dir = runtime.path().to_str().expect("a UTF-8 path").to_owned();
    let env = [("XDG_RUNTIME_DIR", runtime_dir.as_str())];
    let served = serve_with(&["--document-delay", "0s"], None, &env);
    let dir = runtime.path().join("ezenroll");
    let mode =
        |p: &std::path::Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    let port = served.addr.rsplit(':').next().expect("a port").to_owned();
    let file = dir.join(format!("dev-{port}.secret"));
    assert_eq!(mode(&file), 0o600);

    // The admin token `serve_with` minted with --dev is accepted: an admin-only route.
    let (status, customer) = served.call(
        "POST",
        "/customers",
        Some(
            json!({"name": "김개발", "birthDate": "1990-02-03", "gender": "female",
                    "mobilePhone": "010-2222-3333"}),
        ),
    );
    assert_eq!(status, 201, "{customer}");
    let no = customer["customerNo"].as_str().expect("a customer number");
    let customer_token =
        dev_token(&served.addr, &["--role", "customer", "--sub", no], &env).expect("a token");
    let (status, own) = served.call_as(&customer_token, "GET", &format!("/customers/{no}"), None);
    assert_eq!(status, 200, "{own}");
    assert_eq!(own["customerNo"], no);
    let (status, refused) = served.call_as(&customer_token, "POST", "/customers", Some(json!({})));
    assert_eq!(status, 403, "a customer token, not an admin one: {refused}");

    let addr = served.addr.clone();
    served.stop();
    assert!(!file.exists(), "the secret file outlived the server");
    let (code, text) = dev_token(&addr, &["--role", "admin"], &env).expect_err("no server");
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains(&format!("port {port}")), "{text}");
}

/// A server with a configured secret writes no development secret.
#[cfg(unix)]
#[test]
fn a_configured_secret_leaves_no_development_file() {
    let runtime = tempfile::tempdir().expect("a runtime dir");
    let runtime_dir = runtime.path().to_str().expect("a UTF-8 path").to_owned();
    let env = [("XDG_RUNTIME_DIR", runtime_dir.as_str())];
    let served = serve_with(&[], Some(SECRET), &env);
    let (code, text) =
        dev_token(&served.addr, &["--role", "admin"], &env).expect_err("no dev server");
    assert_eq!(code, Some(2), "{text}");
    served.stop();
}

/// A worker has no store of its own: without a Redis URL it is a usage error (exit 2)
/// naming the option, before anything starts.
#[test]
fn a_worker_needs_a_redis_url() {
    let out = Command::new(env!("CARGO_BIN_EXE_ezenroll"))
        .args(["worker", "--role", "notifier"])
        .env_remove("REDIS_URL")
        .output()
        .expect("run ezenroll worker");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--redis-url"), "{}", stderr(&out));
    let help = run(&["worker", "--help"], b"");
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    assert!(!help.contains("memory store"), "{help}");
}
