//! Request counts and latency histograms by route, rendered in the Prometheus text format.
//!
//! Kept in the app state (no global recorder) so several servers can run in one process.
//! Recording a request takes a shared read lock on the route table (a write lock only the
//! first time a route, method and listener is seen) and a few atomic additions: no
//! allocation, no exclusive lock.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

const BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];
/// [`BUCKETS`] in nanoseconds (a request falls into the first bucket whose bound it does
/// not exceed).
const BUCKETS_NS: [u64; 15] = [
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
];
/// Status codes counted lock-free per route; a route answering more distinct codes counts
/// the rest under a lock.
const STATUS_SLOTS: usize = 6;

/// One listener, method and route: its latency histogram and its answers by status.
#[derive(Debug)]
struct Series {
    listener: &'static str,
    method: Box<str>,
    /// Requests per bucket, not cumulative (summed when rendered); the last slot holds those
    /// slower than every bound.
    buckets: [AtomicU64; BUCKETS_NS.len() + 1],
    sum_ns: AtomicU64,
    count: AtomicU64,
    /// `(status, count)`; a status of 0 is a free slot.
    statuses: [(AtomicU16, AtomicU64); STATUS_SLOTS],
    more_statuses: Mutex<BTreeMap<u16, u64>>,
}

impl Series {
    fn new(listener: &'static str, method: &str) -> Series {
        Series {
            listener,
            method: method.into(),
            buckets: Default::default(),
            sum_ns: AtomicU64::new(0),
            count: AtomicU64::new(0),
            statuses: Default::default(),
            more_statuses: Mutex::new(BTreeMap::new()),
        }
    }

    fn record(&self, status: u16, took: Duration) {
        let ns = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        let i = BUCKETS_NS.iter().position(|b| ns <= *b).unwrap_or(BUCKETS_NS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        for (code, n) in &self.statuses {
            let c = code.load(Ordering::Acquire);
            if c == status
                || (c == 0
                    && match code.compare_exchange(0, status, Ordering::AcqRel, Ordering::Acquire) {
                        Ok(_) => true,
                        Err(other) => other == status,
                    })
            {
                n.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        if let Ok(mut m) = self.more_statuses.lock() {
            *m.entry(status).or_default() += 1;
        }
    }

    /// Answers by status, ascending.
    fn statuses(&self) -> BTreeMap<u16, u64> {
        let mut out = self.more_statuses.lock().map(|m| m.clone()).unwrap_or_default();
        for (code, n) in &self.statuses {
            let c = code.load(Ordering::Acquire);
            let n = n.load(Ordering::Relaxed);
            if c != 0 && n > 0 {
                *out.entry(c).or_default() += n;
            }
        }
        out
    }
}

/// In-process request metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Route → its series (one per listener and method; few, searched in order).
    routes: RwLock<HashMap<Box<str>, Vec<Arc<Series>>>>,
}

impl Metrics {
    /// Records one finished request.
    pub fn record(&self, listener: &'static str, method: &str, route: &str, status: u16, took: Duration) {
        let found = self.routes.read().ok().and_then(|r| {
            r.get(route)?
                .iter()
                .find(|s| s.listener == listener && &*s.method == method)
                .cloned()
        });
        let series = match found {
            Some(s) => s,
            None => {
                let Ok(mut w) = self.routes.write() else { return };
                let list = w.entry(route.into()).or_default();
                match list.iter().find(|s| s.listener == listener && &*s.method == method) {
                    Some(s) => s.clone(),
                    None => {
                        let s = Arc::new(Series::new(listener, method));
                        list.push(s.clone());
                        s
                    }
                }
            }
        };
        series.record(status, took);
    }

    /// Every series, sorted by listener, method and route.
    fn sorted(&self) -> Vec<(Box<str>, Arc<Series>)> {
        let mut all: Vec<(Box<str>, Arc<Series>)> = self
            .routes
            .read()
            .map(|r| {
                r.iter()
                    .flat_map(|(route, list)| list.iter().map(|s| (route.clone(), s.clone())))
                    .collect()
            })
            .unwrap_or_default();
        all.sort_by(|(ra, a), (rb, b)| (a.listener, &a.method, ra).cmp(&(b.listener, &b.method, rb)));
        all
    }

    /// The Prometheus exposition text.
    pub fn render(&self) -> String {
        let all = self.sorted();
        let mut out = String::new();
        out.push_str("# HELP latch_http_requests_total HTTP requests by listener, method, route and status.\n");
        out.push_str("# TYPE latch_http_requests_total counter\n");
        for (route, s) in &all {
            for (status, n) in s.statuses() {
                let _ = writeln!(
                    out,
                    "latch_http_requests_total{{listener=\"{}\",method=\"{}\",route=\"{}\",status=\"{status}\"}} {n}",
                    s.listener,
                    s.method,
                    escape(route)
                );
            }
        }
        out.push_str(
            "# HELP latch_http_request_duration_seconds HTTP request latency by listener, method and route.\n",
        );
        out.push_str("# TYPE latch_http_request_duration_seconds histogram\n");
        for (route, s) in &all {
            let labels = format!(
                "listener=\"{}\",method=\"{}\",route=\"{}\"",
                s.listener,
                s.method,
                escape(route)
            );
            let count = s.count.load(Ordering::Relaxed);
            let mut cumulative = 0;
            for (i, b) in BUCKETS.iter().enumerate() {
                cumulative += s.buckets[i].load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "latch_http_request_duration_seconds_bucket{{{labels},le=\"{b}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "latch_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {count}"
            );
            let sum = s.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
            let _ = writeln!(out, "latch_http_request_duration_seconds_sum{{{labels}}} {sum}");
            let _ = writeln!(out, "latch_http_request_duration_seconds_count{{{labels}}} {count}");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_statuses_and_cumulative_buckets() {
        let m = Metrics::default();
        for status in [200, 200, 404, 201, 202, 203, 204, 205, 206, 206] {
            m.record("public", "GET", "/a", status, Duration::from_micros(300));
        }
        m.record("public", "GET", "/a", 200, Duration::from_secs(10));
        m.record("admin", "GET", "/a", 200, Duration::from_micros(50));
        let text = m.render();
        for line in [
            r#"latch_http_requests_total{listener="admin",method="GET",route="/a",status="200"} 1"#,
            r#"latch_http_requests_total{listener="public",method="GET",route="/a",status="200"} 3"#,
            r#"latch_http_requests_total{listener="public",method="GET",route="/a",status="206"} 2"#,
            r#"latch_http_request_duration_seconds_bucket{listener="public",method="GET",route="/a",le="0.00025"} 0"#,
            r#"latch_http_request_duration_seconds_bucket{listener="public",method="GET",route="/a",le="0.0005"} 10"#,
            r#"latch_http_request_duration_seconds_bucket{listener="public",method="GET",route="/a",le="5"} 10"#,
            r#"latch_http_request_duration_seconds_bucket{listener="public",method="GET",route="/a",le="+Inf"} 11"#,
            r#"latch_http_request_duration_seconds_count{listener="public",method="GET",route="/a"} 11"#,
            r#"latch_http_request_duration_seconds_bucket{listener="admin",method="GET",route="/a",le="0.0001"} 1"#,
        ] {
            assert!(text.contains(line), "{line}\n{text}");
        }
        let admin = text.find("listener=\"admin\"").unwrap_or(usize::MAX);
        let public = text.find("listener=\"public\"").unwrap_or(0);
        assert!(admin < public, "sorted by listener");
    }
}
