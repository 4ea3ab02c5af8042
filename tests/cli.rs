//! `ezenroll quote` as a user runs it: a real process, stdin in, stdout/stderr and the
//! exit status out; and `ezenroll serve` stopping on SIGTERM.

use serde_json::{Value, json};
use std::io::Write;
use std::process::{Command, Output, Stdio};

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
    assert_refused(b"", &["EOF"]);
    assert_refused(b"[1, 2]", &["[0]", "expected struct QuoteRequest"]);
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

/// `ezenroll serve` until SIGTERM: it stops accepting, ends the open event stream rather
/// than wait for the client to hang up, stops the engine and exits 0.
#[cfg(unix)]
#[test]
fn serve_stops_cleanly_on_sigterm_with_a_stream_open() {
    use std::io::{BufRead, BufReader, Read};
    use std::net::TcpStream;
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    let secret = "cli-test-only-secret-0123456789";
    let mut child = Command::new(env!("CARGO_BIN_EXE_ezenroll"))
        .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
        .env("EZENROLL_JWT_SECRET", secret)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ezenroll serve");
    let (lines_tx, lines) = mpsc::channel::<String>();
    let stderr = child.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut log = Vec::new();
    let addr = loop {
        let line = lines
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("no 'listening' line ({e}); log: {log:#?}"));
        let parsed: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
        log.push(line);
        if parsed["fields"]["message"] == "ezenroll is listening" {
            break parsed["fields"]["addr"]
                .as_str()
                .expect("the address in the log")
                .to_owned();
        }
    };

    let token = ezenroll::http::auth::AuthKeys::from_secret(secret.as_bytes())
        .expect("keys")
        .mint(
            ezenroll::http::auth::Role::Admin,
            "cli-test",
            Duration::from_secs(60),
        )
        .expect("a token");
    let mut stream = TcpStream::connect(&addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("a read timeout");
    write!(
        stream,
        "GET /events/stream HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\r\n"
    )
    .expect("send the request");
    let mut head = [0u8; 256];
    let n = stream.read(&mut head).expect("the response head");
    let head = String::from_utf8_lossy(&head[..n]).into_owned();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("text/event-stream"), "{head}");

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().expect("the child") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("serve did not stop within 20 s of SIGTERM; log: {log:#?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // The reader thread ends at the end of stderr, closing the channel.
    while let Ok(line) = lines.recv_timeout(Duration::from_secs(5)) {
        log.push(line);
    }
    assert!(status.success(), "{status}; log: {log:#?}");
    let text = log.join("\n");
    for expected in [
        "SIGTERM received",
        "in-flight requests answered",
        "engine stopped",
    ] {
        assert!(text.contains(expected), "no {expected:?} in {text}");
    }
    // The stream was ended by the server, not left hanging.
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).expect("the stream ends");
}
