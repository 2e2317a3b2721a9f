//! A small Prometheus registry: counters and gauges with labels, rendered in the text format.
//!
//! One `Metrics` value per process is created by `app` and passed down (no globals), so two
//! apps in one test process keep separate figures. Handles are cheap atomics; registering the
//! same name and labels twice returns the same series.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
}

struct Family {
    help: String,
    kind: Kind,
    series: BTreeMap<String, Arc<AtomicI64>>,
}

/// The process registry. Cheap to clone.
#[derive(Clone, Default)]
pub struct Metrics {
    families: Arc<Mutex<BTreeMap<String, Family>>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

/// A monotonically increasing count.
#[derive(Clone, Debug)]
pub struct Counter(Arc<AtomicI64>);

impl Counter {
    /// Adds one.
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds `value`.
    pub fn add(&self, value: u64) {
        self.0.fetch_add(i64::try_from(value).unwrap_or(i64::MAX), Ordering::Relaxed);
    }

    /// The current value.
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down.
#[derive(Clone, Debug)]
pub struct Gauge(Arc<AtomicI64>);

impl Gauge {
    /// Sets the value.
    pub fn set(&self, value: i64) {
        self.0.store(value, Ordering::Relaxed);
    }

    /// Adds one.
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// Subtracts one.
    pub fn dec(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }

    /// The current value.
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl Metrics {
    /// A new, empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers (or finds) a counter. `labels` are `(name, value)` pairs.
    pub fn counter(&self, name: &str, help: &str, labels: &[(&str, &str)]) -> Counter {
        Counter(self.series(name, help, Kind::Counter, labels))
    }

    /// Registers (or finds) a gauge.
    pub fn gauge(&self, name: &str, help: &str, labels: &[(&str, &str)]) -> Gauge {
        Gauge(self.series(name, help, Kind::Gauge, labels))
    }

    fn series(&self, name: &str, help: &str, kind: Kind, labels: &[(&str, &str)]) -> Arc<AtomicI64> {
        let label_text = render_labels(labels);
        let mut families = self.families.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let family = families.entry(name.to_owned()).or_insert_with(|| Family {
            help: help.to_owned(),
            kind,
            series: BTreeMap::new(),
        });
        debug_assert!(family.kind == kind, "metric {name} registered as two kinds");
        family.series.entry(label_text).or_default().clone()
    }

    /// Renders every series in the Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let families = self.families.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut out = String::new();
        for (name, family) in families.iter() {
            let kind = match family.kind {
                Kind::Counter => "counter",
                Kind::Gauge => "gauge",
            };
            let _ = writeln!(out, "# HELP {name} {}", family.help.replace('\\', "\\\\").replace('\n', "\\n"));
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (labels, value) in &family.series {
                let _ = writeln!(out, "{name}{labels} {}", value.load(Ordering::Relaxed));
            }
        }
        out
    }
}

fn render_labels(labels: &[(&str, &str)]) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = labels
        .iter()
        .map(|(key, value)| {
            let escaped = value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
            format!("{key}=\"{escaped}\"")
        })
        .collect();
    format!("{{{}}}", parts.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_gauges_with_escaped_labels() {
        let metrics = Metrics::new();
        metrics.counter("fctf_requests_total", "Requests served.", &[("role", "api"), ("path", "a\"b")]).add(3);
        metrics.gauge("fctf_up", "1 while running.", &[]).set(1);
        let text = metrics.render();
        assert!(text.contains("# TYPE fctf_requests_total counter"), "{text}");
        assert!(text.contains("fctf_requests_total{role=\"api\",path=\"a\\\"b\"} 3"), "{text}");
        assert!(text.contains("fctf_up 1"), "{text}");
    }

    #[test]
    fn same_series_is_shared() {
        let metrics = Metrics::new();
        metrics.counter("c", "h", &[("a", "1")]).inc();
        metrics.counter("c", "h", &[("a", "1")]).inc();
        assert_eq!(metrics.counter("c", "h", &[("a", "1")]).get(), 2);
    }
}
