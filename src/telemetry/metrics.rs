//! The watcher's metrics: what it records, and their exposition.
//!
//! [`Metrics`] holds every family `supportctl watch --listen` exposes, under
//! names that alerts are written against (so they change only on purpose),
//! and encodes them in the Prometheus text format, version 0.0.4
//! ([`CONTENT_TYPE`]). Every label value comes from a fixed enumeration
//! ([`ReconcileResult`], [`Action`], the build's version): no label ever
//! carries a user id, an email, a phone or any other text from a config set
//! or the state. Nothing here reads the clock: the caller passes the times.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::{
    EncodeLabelSet, EncodeLabelValue, EncodeMetric, LabelValueEncoder, MetricEncoder,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The `Content-Type` of what [`Metrics::encode`] returns.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// The upper bounds of the reconcile duration histogram's buckets, in
/// seconds: from a no-op reconcile served from the caches (about a
/// millisecond) to a first apply of a large tenancy (tens of seconds).
const DURATION_BUCKETS: [f64; 15] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Every metric family a watcher serves, as a scrape shows them: the names
/// alerts are written against (a test holds the exposition to them).
pub const FAMILIES: [&str; 10] = [
    "supportctl_reconciles_total",
    "supportctl_reconcile_duration_seconds",
    "supportctl_last_success_timestamp_seconds",
    "supportctl_changes_applied_total",
    "supportctl_config_valid",
    "supportctl_leader",
    "supportctl_lease_epoch",
    "supportctl_lease_expiry_timestamp_seconds",
    "supportctl_next_grant_expiry_timestamp_seconds",
    "supportctl_build_info",
];

/// How one reconcile of a watcher ended: the `result` label of
/// `supportctl_reconciles_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReconcileResult {
    /// A plan with changes was applied (`status::OutcomeKind::Applied`).
    Applied,
    /// The state already matched the config set (`NoChanges`).
    NoChange,
    /// The config set failed to load or check (`Invalid`).
    InvalidConfig,
    /// The plan went stale: the state moved between the plan and its apply.
    Stale,
    /// The mass-delete guard refused the plan (`Refused`).
    Refused,
    /// The tenancy is kept by another watcher, or another holds the lease
    /// (`Contended`).
    Contended,
    /// Planning or applying failed otherwise: the database, a file (`Failed`).
    Error,
    /// Another replica holds the lease; this one applied nothing
    /// (`Standby`).
    Standby,
}

impl ReconcileResult {
    /// Every result, in the order a scrape lists them.
    pub const ALL: [ReconcileResult; 8] = [
        ReconcileResult::Applied,
        ReconcileResult::NoChange,
        ReconcileResult::InvalidConfig,
        ReconcileResult::Stale,
        ReconcileResult::Refused,
        ReconcileResult::Contended,
        ReconcileResult::Error,
        ReconcileResult::Standby,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ReconcileResult::Applied => "applied",
            ReconcileResult::NoChange => "no_change",
            ReconcileResult::InvalidConfig => "invalid_config",
            ReconcileResult::Stale => "stale",
            ReconcileResult::Refused => "refused",
            ReconcileResult::Contended => "contended",
            ReconcileResult::Error => "error",
            ReconcileResult::Standby => "standby",
        }
    }
}

impl EncodeLabelValue for ReconcileResult {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> fmt::Result {
        fmt::Write::write_str(encoder, self.as_str())
    }
}

/// What a change did to a row: the `action` label of
/// `supportctl_changes_applied_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Create,
    Update,
    Delete,
    Replace,
}

impl Action {
    /// Every action, in the order a scrape lists them.
    pub const ALL: [Action; 4] = [
        Action::Create,
        Action::Update,
        Action::Delete,
        Action::Replace,
    ];

    /// The label value, which is also the name [`Metrics::applied`] takes.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
            Action::Replace => "replace",
        }
    }

    /// The action a name stands for, if it is one of the four.
    pub fn from_name(name: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == name)
    }
}

impl EncodeLabelValue for Action {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> fmt::Result {
        fmt::Write::write_str(encoder, self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ResultLabels {
    result: ReconcileResult,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ActionLabels {
    action: Action,
}

/// A counter family whose label sets are fixed at its making: one counter
/// for each, counted without a lock, and a scrape lists them in the order
/// they were given (the crate's `Family` lists its map's order, which
/// changes from run to run).
#[derive(Debug, Clone)]
struct FixedCounters<L> {
    series: Arc<[(L, Counter)]>,
}

impl<L> FixedCounters<L> {
    fn new(labels: impl IntoIterator<Item = L>) -> Self {
        FixedCounters {
            series: labels
                .into_iter()
                .map(|l| (l, Counter::default()))
                .collect(),
        }
    }

    /// The counter of the `index`th label set given to [`Self::new`].
    fn at(&self, index: usize) -> &Counter {
        &self.series[index].1
    }
}

impl<L: EncodeLabelSet + fmt::Debug + Send + Sync + 'static> EncodeMetric for FixedCounters<L> {
    fn encode(&self, mut encoder: MetricEncoder) -> fmt::Result {
        for (labels, counter) in self.series.iter() {
            counter.encode(encoder.encode_family(labels)?)?;
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Counter
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

/// A gauge that may have no value: while it has none, a scrape shows its
/// `HELP` and `TYPE` lines and no sample, so that an alert on it neither
/// fires nor reads a made-up time (an expiry of 0 would read as long past).
/// `NaN` stands for no value; a value that is not finite is none. Like the
/// crate's own metrics, a clone shares its value (one clone is registered).
#[derive(Debug, Clone)]
struct OptionalGauge(Arc<AtomicU64>);

impl Default for OptionalGauge {
    fn default() -> Self {
        OptionalGauge(Arc::new(AtomicU64::new(f64::NAN.to_bits())))
    }
}

impl OptionalGauge {
    fn set(&self, value: Option<f64>) {
        let value = value.filter(|v| v.is_finite()).unwrap_or(f64::NAN);
        self.0.store(value.to_bits(), Ordering::Relaxed);
    }

    fn get(&self) -> Option<f64> {
        Some(f64::from_bits(self.0.load(Ordering::Relaxed))).filter(|v| !v.is_nan())
    }
}

impl EncodeMetric for OptionalGauge {
    fn encode(&self, mut encoder: MetricEncoder) -> fmt::Result {
        match self.get() {
            Some(value) => encoder.encode_gauge(&value),
            None => Ok(()),
        }
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Gauge
    }
}

/// Every metric of a watcher, registered once. It is `Send + Sync`, and
/// every recording is an atomic operation or two (the histogram takes a
/// short lock), so the loop and the lease thread record through a shared
/// `Arc<Metrics>` while the HTTP server encodes it.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    reconciles: FixedCounters<ResultLabels>,
    duration: Histogram,
    last_success: Gauge<f64, AtomicU64>,
    changes: FixedCounters<ActionLabels>,
    config_valid: Gauge,
    leader: Gauge,
    lease_epoch: Gauge,
    lease_expiry: OptionalGauge,
    next_grant_expiry: OptionalGauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Every family registered, and every label value of `result` and
    /// `action` at 0, so that a scrape lists them all from the start (and
    /// `rate()` sees a counter's first increase).
    ///
    /// Before anything is recorded, `supportctl_last_success_timestamp_seconds`
    /// reads 0 (so an alert on its age fires for a watcher that never
    /// succeeds), `supportctl_config_valid` and `supportctl_leader` read 0,
    /// and the two expiry gauges have no sample.
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let reconciles =
            FixedCounters::new(ReconcileResult::ALL.map(|result| ResultLabels { result }));
        // prometheus-client adds `_total` to a counter's name, and `.` to
        // every help text.
        registry.register(
            "supportctl_reconciles",
            "Reconciles of the watcher, by how each ended",
            reconciles.clone(),
        );
        let duration = Histogram::new(DURATION_BUCKETS);
        registry.register(
            "supportctl_reconcile_duration_seconds",
            "How long each reconcile took, from reading the config set to the end of its apply",
            duration.clone(),
        );
        let last_success = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "supportctl_last_success_timestamp_seconds",
            "When the latest successful reconcile ended, in seconds since the Unix epoch (0: none yet)",
            last_success.clone(),
        );
        let changes = FixedCounters::new(Action::ALL.map(|action| ActionLabels { action }));
        registry.register(
            "supportctl_changes_applied",
            "Changes the watcher applied to the state, by what each did to a row",
            changes.clone(),
        );
        let config_valid = Gauge::default();
        registry.register(
            "supportctl_config_valid",
            "Whether the latest read of the config set checked without errors (1) or not (0)",
            config_valid.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "supportctl_leader",
            "Whether this watcher holds the lease and may apply (1) or stands by (0)",
            leader.clone(),
        );
        let lease_epoch = Gauge::default();
        registry.register(
            "supportctl_lease_epoch",
            "The epoch of the lease as this watcher last saw it",
            lease_epoch.clone(),
        );
        let lease_expiry = OptionalGauge::default();
        registry.register(
            "supportctl_lease_expiry_timestamp_seconds",
            "When the lease as this watcher last saw it expires, in seconds since the Unix epoch (no sample: no lease known)",
            lease_expiry.clone(),
        );
        let next_grant_expiry = OptionalGauge::default();
        registry.register(
            "supportctl_next_grant_expiry_timestamp_seconds",
            "When the next grant in the config set expires, in seconds since the Unix epoch (no sample: none expires)",
            next_grant_expiry.clone(),
        );
        let build = Family::<BuildLabels, Gauge>::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        registry.register(
            "supportctl_build_info",
            "The version of supportctl that runs, as a label; the value is always 1",
            build,
        );
        Metrics {
            registry,
            reconciles,
            duration,
            last_success,
            changes,
            config_valid,
            leader,
            lease_epoch,
            lease_expiry,
            next_grant_expiry,
        }
    }

    /// One reconcile ended with `result` after `took`.
    pub fn reconciled(&self, result: ReconcileResult, took: Duration) {
        self.reconciles.at(result as usize).inc();
        self.duration.observe(took.as_secs_f64());
    }

    /// The latest successful reconcile ended at `unix_seconds`. A time that
    /// is not finite is ignored.
    pub fn succeeded_at(&self, unix_seconds: f64) {
        if unix_seconds.is_finite() {
            self.last_success.set(unix_seconds);
        }
    }

    /// An apply made `n` changes of `action`, one of `create`, `update`,
    /// `delete` and `replace`. Any other name is a bug of the caller: it is
    /// ignored (a debug build asserts), so that no label ever takes a value
    /// from outside the four.
    pub fn applied(&self, action: &str, n: u64) {
        let Some(action) = Action::from_name(action) else {
            debug_assert!(false, "unknown action `{action}`");
            return;
        };
        self.changes.at(action as usize).inc_by(n);
    }

    /// Whether the latest read of the config set checked without errors.
    pub fn config_valid(&self, valid: bool) {
        self.config_valid.set(i64::from(valid));
    }

    /// The lease as this watcher last saw it: whether it holds it, its
    /// epoch (an epoch past `i64::MAX` reads `i64::MAX`), and when it
    /// expires (`None`: no lease known, the gauge has no sample).
    pub fn lease(&self, leader: bool, epoch: u64, expires_unix_seconds: Option<f64>) {
        self.leader.set(i64::from(leader));
        self.lease_epoch
            .set(i64::try_from(epoch).unwrap_or(i64::MAX));
        self.lease_expiry.set(expires_unix_seconds);
    }

    /// When the next grant of the config set expires (`None`: none does,
    /// and the gauge has no sample rather than a 0 that reads as long past).
    pub fn next_grant_expiry(&self, unix_seconds: Option<f64>) {
        self.next_grant_expiry.set(unix_seconds);
    }

    /// The exposition of every family, in the Prometheus text format
    /// (version 0.0.4, served as [`CONTENT_TYPE`]).
    pub fn encode(&self) -> String {
        let mut text = String::with_capacity(4096);
        if let Err(e) =
            prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry)
        {
            // Writing to a `String` does not fail, and no metric here fails
            // to encode; should one, what was written is still served.
            tracing::warn!(error = %e, "metrics not all encoded");
        }
        text
    }
}

/// Where `promtool` is, and its check of an exposition: shared with
/// `tests/it/telemetry.rs`.
#[cfg(test)]
#[path = "../../tests/support/promtool.rs"]
mod promtool;

#[cfg(test)]
mod tests {
    use super::*;

    /// A few recordings of each kind, as a watcher would make them.
    fn recorded() -> Metrics {
        let metrics = Metrics::new();
        metrics.reconciled(ReconcileResult::Applied, Duration::from_millis(420));
        metrics.reconciled(ReconcileResult::NoChange, Duration::from_millis(3));
        metrics.reconciled(ReconcileResult::NoChange, Duration::from_micros(800));
        metrics.reconciled(ReconcileResult::Error, Duration::from_secs(75));
        metrics.succeeded_at(1_780_000_000.25);
        metrics.applied("create", 3);
        metrics.applied("delete", 1);
        metrics.config_valid(true);
        metrics.lease(true, 7, Some(1_780_000_030.0));
        metrics.next_grant_expiry(Some(1_780_086_400.0));
        metrics
    }

    /// The sample lines of a family (its name followed by a space or `{`).
    fn samples<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
        text.lines()
            .filter(|l| {
                l.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
            })
            .collect()
    }

    #[test]
    fn every_family_has_help_and_type_under_its_fixed_name() {
        for metrics in [Metrics::new(), recorded()] {
            let text = metrics.encode();
            for name in FAMILIES {
                assert!(
                    text.contains(&format!("\n# HELP {name} "))
                        || text.starts_with(&format!("# HELP {name} ")),
                    "no HELP for {name} in:\n{text}"
                );
                assert!(
                    text.contains(&format!("# TYPE {name} ")),
                    "no TYPE for {name}"
                );
            }
            assert!(!text.contains("_total_total"), "{text}");
            assert!(
                !text.contains("# EOF"),
                "the classic format has no EOF line"
            );
        }
    }

    #[test]
    fn the_fixed_label_sets_are_in_the_order_of_their_variants() {
        for (i, result) in ReconcileResult::ALL.into_iter().enumerate() {
            assert_eq!(result as usize, i, "{result:?}");
        }
        for (i, action) in Action::ALL.into_iter().enumerate() {
            assert_eq!(action as usize, i, "{action:?}");
            assert_eq!(Action::from_name(action.as_str()), Some(action));
        }
        assert_eq!(Action::from_name("Create"), None);
        assert_eq!(Action::from_name(""), None);
    }

    #[test]
    fn every_label_value_is_there_from_the_start() {
        let text = Metrics::new().encode();
        for result in ReconcileResult::ALL {
            let line = format!(
                "supportctl_reconciles_total{{result=\"{}\"}} 0",
                result.as_str()
            );
            assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
        }
        for action in Action::ALL {
            let line = format!(
                "supportctl_changes_applied_total{{action=\"{}\"}} 0",
                action.as_str()
            );
            assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
        }
        let version = env!("CARGO_PKG_VERSION");
        assert!(
            text.lines()
                .any(|l| l == format!("supportctl_build_info{{version=\"{version}\"}} 1")),
            "{text}"
        );
        assert_eq!(
            samples(&text, "supportctl_last_success_timestamp_seconds"),
            ["supportctl_last_success_timestamp_seconds 0.0"]
        );
        assert!(samples(&text, "supportctl_lease_expiry_timestamp_seconds").is_empty());
        assert!(samples(&text, "supportctl_next_grant_expiry_timestamp_seconds").is_empty());
    }

    #[test]
    fn recordings_show_in_the_exposition() {
        let text = recorded().encode();
        let has = |line: &str| text.lines().any(|l| l == line);
        assert!(
            has("supportctl_reconciles_total{result=\"applied\"} 1"),
            "{text}"
        );
        assert!(
            has("supportctl_reconciles_total{result=\"no_change\"} 2"),
            "{text}"
        );
        assert!(
            has("supportctl_reconciles_total{result=\"error\"} 1"),
            "{text}"
        );
        assert!(
            has("supportctl_reconcile_duration_seconds_count 4"),
            "{text}"
        );
        assert!(
            has("supportctl_reconcile_duration_seconds_bucket{le=\"0.001\"} 1"),
            "{text}"
        );
        assert!(
            has("supportctl_reconcile_duration_seconds_bucket{le=\"60\"} 3"),
            "{text}"
        );
        assert!(
            has("supportctl_reconcile_duration_seconds_bucket{le=\"+Inf\"} 4"),
            "{text}"
        );
        assert!(
            has("supportctl_last_success_timestamp_seconds 1780000000.25"),
            "{text}"
        );
        assert!(
            has("supportctl_changes_applied_total{action=\"create\"} 3"),
            "{text}"
        );
        assert!(
            has("supportctl_changes_applied_total{action=\"delete\"} 1"),
            "{text}"
        );
        assert!(
            has("supportctl_changes_applied_total{action=\"update\"} 0"),
            "{text}"
        );
        assert!(has("supportctl_config_valid 1"), "{text}");
        assert!(has("supportctl_leader 1"), "{text}");
        assert!(has("supportctl_lease_epoch 7"), "{text}");
        assert!(
            has("supportctl_lease_expiry_timestamp_seconds 1780000030.0"),
            "{text}"
        );
        assert!(
            has("supportctl_next_grant_expiry_timestamp_seconds 1780086400.0"),
            "{text}"
        );
    }

    #[test]
    fn an_expiry_that_goes_away_leaves_no_sample() {
        let metrics = recorded();
        metrics.lease(false, u64::MAX, None);
        metrics.next_grant_expiry(Some(f64::INFINITY));
        metrics.config_valid(false);
        let text = metrics.encode();
        assert!(samples(&text, "supportctl_lease_expiry_timestamp_seconds").is_empty());
        assert!(samples(&text, "supportctl_next_grant_expiry_timestamp_seconds").is_empty());
        assert_eq!(samples(&text, "supportctl_leader"), ["supportctl_leader 0"]);
        assert_eq!(
            samples(&text, "supportctl_lease_epoch"),
            [format!("supportctl_lease_epoch {}", i64::MAX)]
        );
        assert_eq!(
            samples(&text, "supportctl_config_valid"),
            ["supportctl_config_valid 0"]
        );
    }

    #[test]
    fn metrics_are_shared_between_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<Metrics>();
        let metrics = Arc::new(Metrics::new());
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..1000 {
                        metrics.reconciled(ReconcileResult::NoChange, Duration::ZERO);
                    }
                });
            }
        });
        let text = metrics.encode();
        assert!(
            text.lines()
                .any(|l| l == "supportctl_reconciles_total{result=\"no_change\"} 4000"),
            "{text}"
        );
    }

    /// The exposition passes Prometheus's own parser and linter: `promtool
    /// check metrics` exits 0 and prints no problem.
    #[test]
    fn promtool_accepts_the_exposition() {
        let Some(promtool) = super::promtool::or_skip() else {
            return;
        };
        for text in [Metrics::new().encode(), recorded().encode()] {
            if let Err(problem) = super::promtool::check_metrics(&promtool, &text) {
                panic!("{problem}\non:\n{text}");
            }
        }
    }
}
