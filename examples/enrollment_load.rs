//! A load generator for full enrollments over HTTP: the flow of `scripts/wrk/enrollment.lua`
//! (customer → plan → document → long poll until issued → paid proposal, a customer reused
//! for 10 plans), FLOWS of them at once, each on its own keep-alive connection.
//!
//! wrk can only keep a flow's state per thread, so that script needs one wrk thread per
//! connection, and those threads take CPU away from the server they measure. Here every
//! flow is a task on ONE thread, speaking plain HTTP/1.1 over its socket, so the
//! generator stays cheap next to the server.
//!
//!   cargo run --release --example enrollment_load -- 127.0.0.1:8080 64 10s
//!
//! Arguments: address (host:port), flows, duration (`10s`, `2m` or seconds). The bearer
//! token is `EZENROLL_TOKEN` when set. Prints one line in the format of the wrk script's:
//! `RESULT rps=… p50_us=… p99_us=… errors=… enrollments_per_s=… polls=…`. A request is an
//! error when it cannot be sent or read, or when its answer is 4xx/5xx (as wrk counts).

use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

type Failure = Box<dyn std::error::Error + Send + Sync>;

/// What one flow counted.
#[derive(Default)]
struct Tally {
    requests: u64,
    errors: u64,
    contracted: u64,
    polls: u64,
    latencies_us: Vec<u32>,
}

/// One answer: the status and the body.
struct Answer {
    status: u16,
    body: Vec<u8>,
}

/// A keep-alive HTTP/1.1 connection that is reopened after any failure.
struct Connection {
    addr: String,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
    request: Vec<u8>,
    auth: String,
}

impl Connection {
    fn new(addr: &str) -> Connection {
        let auth = match std::env::var("EZENROLL_TOKEN") {
            Ok(token) if !token.is_empty() => format!("Authorization: Bearer {token}\r\n"),
            _ => String::new(),
        };
        Connection {
            addr: addr.to_owned(),
            stream: None,
            buf: Vec::with_capacity(16 * 1024),
            request: Vec::with_capacity(1024),
            auth,
        }
    }

    async fn call(&mut self, method: &str, path: &str, body: &str) -> Result<Answer, Failure> {
        let result = self.exchange(method, path, body).await;
        if result.is_err() {
            self.stream = None;
        }
        result
    }

    async fn exchange(&mut self, method: &str, path: &str, body: &str) -> Result<Answer, Failure> {
        if self.stream.is_none() {
            let stream = TcpStream::connect(&self.addr).await?;
            stream.set_nodelay(true)?;
            self.stream = Some(stream);
            self.buf.clear();
        }
        let stream = self.stream.as_mut().ok_or("no connection")?;
        self.request.clear();
        self.request.extend_from_slice(method.as_bytes());
        self.request.push(b' ');
        self.request.extend_from_slice(path.as_bytes());
        self.request
            .extend_from_slice(b" HTTP/1.1\r\nHost: load\r\nContent-Type: application/json\r\n");
        self.request.extend_from_slice(self.auth.as_bytes());
        self.request.extend_from_slice(b"Content-Length: ");
        self.request
            .extend_from_slice(body.len().to_string().as_bytes());
        self.request.extend_from_slice(b"\r\n\r\n");
        self.request.extend_from_slice(body.as_bytes());
        stream.write_all(&self.request).await?;
        read_answer(stream, &mut self.buf).await
    }
}

/// Reads one response (Content-Length or chunked body) from `stream`; bytes after it stay
/// in `buf` for the next one.
async fn read_answer(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<Answer, Failure> {
    let head_end = loop {
        if let Some(at) = find(buf, b"\r\n\r\n") {
            break at + 4;
        }
        fill(stream, buf).await?;
    };
    let head = std::str::from_utf8(&buf[..head_end])?;
    let status: u16 = head
        .split(' ')
        .nth(1)
        .ok_or("no status in the response")?
        .parse()?;
    let mut length = None;
    let mut chunked = false;
    for line in head.split("\r\n").skip(1) {
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(value.trim().parse::<usize>()?);
            } else if name.eq_ignore_ascii_case("transfer-encoding")
                && value.trim().eq_ignore_ascii_case("chunked")
            {
                chunked = true;
            }
        }
    }
    let body = if chunked {
        let mut body = Vec::new();
        let mut at = head_end;
        loop {
            let line_end = loop {
                if let Some(n) = find(&buf[at..], b"\r\n") {
                    break at + n;
                }
                fill(stream, buf).await?;
            };
            let size_text = std::str::from_utf8(&buf[at..line_end])?;
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)?;
            let data = line_end + 2;
            while buf.len() < data + size + 2 {
                fill(stream, buf).await?;
            }
            body.extend_from_slice(&buf[data..data + size]);
            at = data + size + 2;
            if size == 0 {
                break;
            }
        }
        buf.drain(..at);
        body
    } else {
        let length = length.unwrap_or(0);
        while buf.len() < head_end + length {
            fill(stream, buf).await?;
        }
        let body = buf[head_end..head_end + length].to_vec();
        buf.drain(..head_end + length);
        body
    };
    Ok(Answer { status, body })
}

async fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<(), Failure> {
    let start = buf.len();
    buf.resize(start + 8192, 0);
    let read = stream.read(&mut buf[start..]).await;
    match read {
        Ok(0) => {
            buf.truncate(start);
            Err("the server closed the connection".into())
        }
        Ok(n) => {
            buf.truncate(start + n);
            Ok(())
        }
        Err(e) => {
            buf.truncate(start);
            Err(e.into())
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The text after `"<field>":"` up to the next quote.
fn string_field<'a>(body: &'a [u8], field: &str) -> Option<&'a str> {
    let key = format!("\"{field}\":\"");
    let start = find(body, key.as_bytes())? + key.len();
    let len = body[start..].iter().position(|&b| b == b'"')?;
    std::str::from_utf8(&body[start..start + len]).ok()
}

fn contains(body: &[u8], text: &str) -> bool {
    find(body, text.as_bytes()).is_some()
}

enum Step {
    Customer,
    Plan,
    Document,
    Poll,
    Proposal,
}

/// One customer clicking through enrollments until `until`.
async fn flow(addr: String, id: usize, until: Instant) -> Tally {
    let mut tally = Tally::default();
    let mut conn = Connection::new(&addr);
    let mut step = Step::Customer;
    let (mut customer, mut enrollment) = (String::new(), String::new());
    let mut plans = 0u64;
    let customer_body = format!(
        r#"{{"name":"부하{id}","birthDate":"1986-05-01","gender":"male","mobilePhone":"010-1234-5678"}}"#
    );
    while Instant::now() < until {
        let started = Instant::now();
        let answer = match step {
            Step::Customer => conn.call("POST", "/customers", &customer_body).await,
            Step::Plan => {
                let body = format!(
                    r#"{{"customerNo":"{customer}","productCode":"EZ-TERM","sumInsured":100000000,"coveragePeriod":20,"paymentPeriod":20,"paymentCycle":"monthly"}}"#
                );
                conn.call("POST", "/enrollments", &body).await
            }
            Step::Document => {
                let path = format!("/enrollments/{enrollment}/document");
                conn.call("POST", &path, "").await
            }
            Step::Poll => {
                // Answered when the document is issued (or after 10 s), not at once.
                let path = format!(
                    "/enrollments/{enrollment}?waitWhileStatus=DocumentRequested&waitSeconds=10"
                );
                conn.call("GET", &path, "").await
            }
            Step::Proposal => {
                let path = format!("/enrollments/{enrollment}/proposal");
                conn.call("POST", &path, r#"{"paymentMethod":"card"}"#)
                    .await
            }
        };
        tally.requests += 1;
        let answer = match answer {
            Ok(answer) => answer,
            Err(_) => {
                tally.errors += 1;
                // Back off a little so a server that is down is not spun against.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let micros = started.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
        tally.latencies_us.push(micros);
        if answer.status >= 400 {
            tally.errors += 1;
        }
        let body = &answer.body;
        step = match step {
            Step::Customer => match string_field(body, "customerNo") {
                Some(no) => {
                    customer = no.to_owned();
                    Step::Plan
                }
                None => Step::Customer,
            },
            Step::Plan => match string_field(body, "id") {
                Some(id) => {
                    enrollment = id.to_owned();
                    Step::Document
                }
                None => Step::Plan,
            },
            Step::Document if answer.status == 202 => Step::Poll,
            Step::Document => Step::Plan,
            Step::Poll => {
                tally.polls += 1;
                if contains(body, r#""status":"DocumentIssued""#) {
                    Step::Proposal
                } else {
                    Step::Poll
                }
            }
            Step::Proposal => {
                if contains(body, r#""status":"Contracted""#) {
                    tally.contracted += 1;
                }
                plans += 1;
                if plans.is_multiple_of(10) {
                    Step::Customer
                } else {
                    Step::Plan
                }
            }
        };
    }
    tally
}

fn duration(text: &str) -> Option<Duration> {
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let n: u64 = number.parse().ok()?;
    let seconds = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return None,
    };
    Some(Duration::from_secs(seconds))
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn main() -> Result<(), Failure> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [addr, flows, time] = args.as_slice() else {
        return Err("usage: enrollment_load <host:port> <flows> <duration, e.g. 10s>".into());
    };
    let flows: usize = flows.parse()?;
    let time = duration(time).ok_or("a duration is like 10s, 2m or 1h")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let started = Instant::now();
    let tallies = runtime.block_on(async {
        let until = Instant::now() + time;
        let tasks: Vec<_> = (1..=flows)
            .map(|id| tokio::spawn(flow(addr.clone(), id, until)))
            .collect();
        let mut tallies = Vec::with_capacity(flows);
        for task in tasks {
            tallies.push(task.await);
        }
        tallies
    });
    let elapsed = started.elapsed().as_secs_f64();
    let mut total = Tally::default();
    for tally in tallies {
        let tally = tally?;
        total.requests += tally.requests;
        total.errors += tally.errors;
        total.contracted += tally.contracted;
        total.polls += tally.polls;
        total.latencies_us.extend(tally.latencies_us);
    }
    total.latencies_us.sort_unstable();
    println!(
        "RESULT rps={:.0} p50_us={} p99_us={} errors={} enrollments_per_s={:.0} polls={}",
        total.requests as f64 / elapsed,
        percentile(&total.latencies_us, 50.0),
        percentile(&total.latencies_us, 99.0),
        total.errors,
        total.contracted as f64 / elapsed,
        total.polls
    );
    Ok(())
}
