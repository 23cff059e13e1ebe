//! The routes of the other crates: the remote-write receiver (`ingest`),
//! the Prometheus HTTP API (`query`) and SQL (`sql`), configured from
//! [`Config`].

use std::sync::Arc;

use axum::Router;
use engine::Db;
use prometheus_client::registry::Registry;
use query::api::ConfigStatus;

use crate::config::Config;

/// The ingest and query routes for an open database, and the
/// configuration their status endpoints show (for reloads to update).
/// Their metrics go into `registry` (each crate prefixes its own names).
pub fn api_router(
    db: &Arc<Db>,
    cfg: &Config,
    registry: &mut Registry,
) -> anyhow::Result<(Router, Arc<ConfigStatus>)> {
    let ingest = ingest::Ingest::new(db.clone(), cfg.ingest_limits(), registry);
    let opts = cfg.api_options()?;
    let config = opts.status.config.clone();
    let api = query::api::Api::new(db.clone(), opts);
    let sql = sql::api::SqlApi::new(db.clone(), cfg.sql_options());
    let router = Router::new()
        .merge(ingest::routes(ingest))
        .merge(query::api::routes(api))
        .merge(sql::api::routes(sql));
    Ok((router, config))
}
