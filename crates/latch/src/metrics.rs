//! Request counts and latency histograms by route, rendered in the Prometheus text format.
//!
//! Kept in the app state (no global recorder) so several servers can run in one process.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

const BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

#[derive(Debug, Default)]
struct Series {
    buckets: Vec<u64>,
    sum: f64,
    count: u64,
}

/// In-process request metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    counts: Mutex<BTreeMap<(String, String, String, u16), u64>>,
    latency: Mutex<BTreeMap<(String, String, String), Series>>,
}

impl Metrics {
    /// Records one finished request.
    pub fn record(&self, listener: &str, method: &str, route: &str, status: u16, took: Duration) {
        if let Ok(mut c) = self.counts.lock() {
            *c.entry((listener.into(), method.into(), route.into(), status))
                .or_default() += 1;
        }
        if let Ok(mut l) = self.latency.lock() {
            let s = l.entry((listener.into(), method.into(), route.into())).or_default();
            if s.buckets.is_empty() {
                s.buckets = vec![0; BUCKETS.len()];
            }
            let secs = took.as_secs_f64();
            for (i, b) in BUCKETS.iter().enumerate() {
                if secs <= *b {
                    s.buckets[i] += 1;
                }
            }
            s.sum += secs;
            s.count += 1;
        }
    }

    /// The Prometheus exposition text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP latch_http_requests_total HTTP requests by listener, method, route and status.\n");
        out.push_str("# TYPE latch_http_requests_total counter\n");
        if let Ok(c) = self.counts.lock() {
            for ((listener, method, route, status), n) in c.iter() {
                let _ = writeln!(
                    out,
                    "latch_http_requests_total{{listener=\"{listener}\",method=\"{method}\",route=\"{}\",status=\"{status}\"}} {n}",
                    escape(route)
                );
            }
        }
        out.push_str(
            "# HELP latch_http_request_duration_seconds HTTP request latency by listener, method and route.\n",
        );
        out.push_str("# TYPE latch_http_request_duration_seconds histogram\n");
        if let Ok(l) = self.latency.lock() {
            for ((listener, method, route), s) in l.iter() {
                let labels = format!(
                    "listener=\"{listener}\",method=\"{method}\",route=\"{}\"",
                    escape(route)
                );
                for (i, b) in BUCKETS.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "latch_http_request_duration_seconds_bucket{{{labels},le=\"{b}\"}} {}",
                        s.buckets[i]
                    );
                }
                let _ = writeln!(
                    out,
                    "latch_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                    s.count
                );
                let _ = writeln!(out, "latch_http_request_duration_seconds_sum{{{labels}}} {}", s.sum);
                let _ = writeln!(out, "latch_http_request_duration_seconds_count{{{labels}}} {}", s.count);
            }
        }
        if let Some(n) = crate::store::stats::statements() {
            out.push_str("# HELP latch_sql_statements_total SQL statements run (LATCH_COUNT_SQL_STATEMENTS=1).\n");
            out.push_str("# TYPE latch_sql_statements_total counter\n");
            let _ = writeln!(out, "latch_sql_statements_total {n}");
        }
        out
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}
