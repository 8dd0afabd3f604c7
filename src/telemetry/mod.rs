//! What `supportctl watch --listen ADDR` tells the outside: metrics in the
//! Prometheus text format, and health for an orchestrator's probes.
//!
//! [`Metrics`] is what the watcher records into (from its loop and its lease
//! thread, through a shared `Arc`); [`Server`] serves it at `/metrics` beside
//! `/healthz` and `/readyz`, which it answers by asking a [`Probe`] the
//! watcher implements. Nothing here reads the state, the config set or the
//! clock, and no label carries anything from them: every label value is one
//! of a fixed few. Only this module names prometheus-client.

pub mod http;
pub mod metrics;

pub use http::{
    DEFAULT_PORT, Endpoints, Handler, Probe, Request, Response, Server, parse_listen,
    parse_listen_on,
};
pub use metrics::{Metrics, ReconcileResult};
