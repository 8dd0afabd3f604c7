//! supportctl: manage who may open Oracle Cloud support requests, as code.
//!
//! The crate is a pipeline (see ARCHITECTURE.md): [`config`] reads files into
//! a raw config with source places, [`check`] turns it into a [`model::Model`]
//! or diagnostics, [`plan`] diffs it against the [`state`], and [`engine`]
//! runs that use case — load, check, plan, guard, apply, one watcher step —
//! for [`cli`], which parses flags and prints. Only `config` names the YAML
//! crate, only `state` names SQLite, only [`events`] names the file watcher
//! and signal crates; only [`telemetry`] names the metrics crate and serves
//! HTTP, for the watcher's endpoints and the [`web`] view; only `cli`
//! prints.

pub mod access;
pub mod check;
pub mod cli;
pub mod config;
pub mod diag;
pub mod engine;
pub mod events;
pub mod files;
pub mod hex;
pub mod model;
pub mod plan;
pub mod render;
pub mod report;
pub mod state;
pub mod status;
pub mod telemetry;
pub mod web;
