//! Request counters for `GET /metrics`: every answered request is counted by route
//! *template* (`/enrollments/{id}`, never the raw path, so ids do not blow up the
//! cardinality), method and status, with a duration histogram. The hot path is one sharded
//! map lookup and a few relaxed atomic adds.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use warp::http::Method;

/// Histogram upper bounds, in microseconds (0.0005 s … 2.5 s).
const BUCKETS_MICROS: [u64; 12] = [
    500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    2_500_000,
];

/// (route template, method, status)
type Key = (&'static str, &'static str, u16);

#[derive(Default)]
struct Series {
    count: AtomicU64,
    sum_micros: AtomicU64,
    /// Non-cumulative: `buckets[i]` counts durations in `(bound[i-1], bound[i]]`.
    buckets: [AtomicU64; 12],
}

/// Per-route request counters and duration histograms.
#[derive(Default)]
pub struct HttpMetrics {
    series: dashmap::DashMap<Key, Series>,
}

impl HttpMetrics {
    /// Records one answered request.
    pub fn record(&self, method: &Method, path: &str, status: u16, elapsed: Duration) {
        let key = (route_template(path), method_label(method), status);
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let bump = |s: &Series| {
            s.count.fetch_add(1, Ordering::Relaxed);
            s.sum_micros.fetch_add(micros, Ordering::Relaxed);
            if let Some(i) = BUCKETS_MICROS.iter().position(|&b| micros <= b) {
                s.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        };
        if let Some(s) = self.series.get(&key) {
            bump(&s);
        } else {
            bump(&self.series.entry(key).or_default());
        }
    }

    /// Writes the request series in the Prometheus text format.
    pub fn render(&self, out: &mut String) {
        let mut by_key: Vec<(Key, u64, u64, [u64; 12])> = self
            .series
            .iter()
            .map(|e| {
                let s = e.value();
                (
                    *e.key(),
                    s.count.load(Ordering::Relaxed),
                    s.sum_micros.load(Ordering::Relaxed),
                    std::array::from_fn(|i| s.buckets[i].load(Ordering::Relaxed)),
                )
            })
            .collect();
        by_key.sort_by_key(|(k, ..)| *k);

        out.push_str("# HELP ezenroll_http_requests_total HTTP requests answered.\n");
        out.push_str("# TYPE ezenroll_http_requests_total counter\n");
        for ((route, method, status), count, ..) in &by_key {
            let _ = writeln!(
                out,
                "ezenroll_http_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}} {count}"
            );
        }

        // The histogram per route and method, summed over statuses.
        let mut hist: BTreeMap<(&str, &str), (u64, u64, [u64; 12])> = BTreeMap::new();
        for ((route, method, _), count, sum, buckets) in &by_key {
            let h = hist.entry((route, method)).or_default();
            h.0 += count;
            h.1 += sum;
            for (acc, b) in h.2.iter_mut().zip(buckets) {
                *acc += b;
            }
        }
        out.push_str(
            "# HELP ezenroll_http_request_duration_seconds Time to answer an HTTP request.\n",
        );
        out.push_str("# TYPE ezenroll_http_request_duration_seconds histogram\n");
        for ((route, method), (count, sum, buckets)) in &hist {
            let labels = format!("route=\"{route}\",method=\"{method}\"");
            let mut cumulative = 0;
            for (bound, n) in BUCKETS_MICROS.iter().zip(buckets) {
                cumulative += n;
                let le = *bound as f64 / 1e6;
                let _ = writeln!(
                    out,
                    "ezenroll_http_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "ezenroll_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {count}"
            );
            let _ = writeln!(
                out,
                "ezenroll_http_request_duration_seconds_sum{{{labels}}} {}",
                *sum as f64 / 1e6
            );
            let _ = writeln!(
                out,
                "ezenroll_http_request_duration_seconds_count{{{labels}}} {count}"
            );
        }
    }
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "OTHER",
    }
}

/// The route template a raw path matches; `unmatched` for anything no route serves.
pub fn route_template(path: &str) -> &'static str {
    let mut segments = path.strip_prefix('/').unwrap_or(path).split('/');
    let first = segments.next().unwrap_or("");
    let second = segments.next().filter(|s| !s.is_empty());
    let third = segments.next();
    if let Some(fourth) = segments.next() {
        return match (first, second, third, fourth, segments.next()) {
            ("enrollments", Some(_), Some("documents"), no, None) if !no.is_empty() => {
                "/enrollments/{id}/documents/{no}"
            }
            _ => "unmatched",
        };
    }
    match (first, second, third) {
        ("livez", None, None) => "/livez",
        ("readyz", None, None) => "/readyz",
        ("metrics", None, None) => "/metrics",
        ("quotes", None, None) => "/quotes",
        ("products", None, None) => "/products",
        ("products", Some(_), None) => "/products/{code}",
        ("customers", None, None) => "/customers",
        ("customers", Some(_), None) => "/customers/{no}",
        ("enrollments", None, None) => "/enrollments",
        ("enrollments", Some(_), None) => "/enrollments/{id}",
        ("enrollments", Some(_), Some("plan")) => "/enrollments/{id}/plan",
        ("enrollments", Some(_), Some("document")) => "/enrollments/{id}/document",
        ("enrollments", Some(_), Some("proposal")) => "/enrollments/{id}/proposal",
        ("enrollments", Some(_), Some("payment")) => "/enrollments/{id}/payment",
        ("enrollments", Some(_), Some("withdrawal")) => "/enrollments/{id}/withdrawal",
        ("enrollments", Some(_), Some("events")) => "/enrollments/{id}/events",
        ("mypage", None, None) => "/mypage",
        ("mypage", Some(_), None) => "/mypage/{id}",
        ("alarms", None, None) => "/alarms",
        ("events", Some("stream"), None) => "/events/stream",
        _ => "unmatched",
    }
}

#[cfg(test)]
mod tests {
    use super::route_template;

    #[test]
    fn raw_paths_map_to_templates() {
        assert_eq!(route_template("/quotes"), "/quotes");
        assert_eq!(route_template("/enrollments/abc"), "/enrollments/{id}");
        assert_eq!(
            route_template("/enrollments/abc/plan"),
            "/enrollments/{id}/plan"
        );
        assert_eq!(route_template("/products/EZ-TERM"), "/products/{code}");
        assert_eq!(route_template("/events/stream"), "/events/stream");
        assert_eq!(route_template("/enrollments/abc/nope"), "unmatched");
        assert_eq!(route_template("/a/b/c/d"), "unmatched");
        assert_eq!(
            route_template("/enrollments/abc/documents/DOC-1"),
            "/enrollments/{id}/documents/{no}"
        );
        assert_eq!(route_template("/enrollments/abc/documents/"), "unmatched");
        assert_eq!(
            route_template("/enrollments/abc/documents/x/y"),
            "unmatched"
        );
        assert_eq!(route_template("/enrollments/abc/plan/x"), "unmatched");
        assert_eq!(route_template("/"), "unmatched");
    }
}
