//! Silt's scheduled reports: capacity planning, SLA / availability, alert
//! summary and trends, computed with PromQL over the engine (and the
//! built-in Alertmanager's alert history), rendered as HTML (inline CSS
//! and SVG charts, printable), CSV, JSON and Markdown, stored per run and
//! delivered to a folder, a webhook and by email.
//!
//! Entry points: [`config::parse`] / [`config::load`] /
//! [`config::from_values`] give validated [`ReportDef`]s;
//! [`Reports::new`] with [`Sources`] (the engine, the alert history) and
//! [`Options`] (run store folder, external URL, SMTP defaults, the
//! [`OwnerNotifier`]) then [`Reports::start`] runs the schedule;
//! [`Reports::run_now`] runs one on demand; [`routes`] is the HTTP API.
//! [`kinds::compute`] computes a [`Document`] without storing anything.
//!
//! Module map: `config` (YAML, validation), `cron` (schedules), `kinds`
//! (one module per kind, PromQL helpers), `doc` (the document model),
//! `render` (formats; `svg` draws the charts), `store` (run records on
//! disk), `deliver` (folder, webhook, email), `service` (scheduler and
//! runs), `api` (HTTP), `client` (the CLI's client of the API).

pub mod api;
pub mod client;
pub mod config;
pub mod cron;
pub mod deliver;
pub mod doc;
pub mod error;
pub mod kinds;
pub mod render;
pub mod service;
pub mod store;

pub use api::routes;
pub use config::{Format, Kind, ReportDef};
pub use cron::{CronError, Schedule};
pub use doc::Document;
pub use error::{ConfigError, ReportError, RunError};
pub use kinds::{Sources, compute};
pub use service::{AlertmanagerNotifier, Options, OwnerNotifier, ReportInfo, Reports, check_email};
pub use store::{DeliveryOutcome, OutputFile, RunRecord, RunStatus, Store, Trigger};
