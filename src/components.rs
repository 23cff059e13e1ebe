//! The routes of the other crates: the remote-write receiver (`ingest`),
//! the Prometheus HTTP API (`query`) and SQL (`sql`), configured from
//! [`Config`].

use std::sync::Arc;

use axum::Router;
use engine::Db;
use prometheus_client::registry::Registry;
use query::api::ConfigStatus;

use crate::config::Config;

/// The ingest and query routes for an open database. Their metrics go into
/// `registry` (each crate prefixes its own names). The status endpoints
/// show the configuration in `config` (which reloads update).
pub fn api_router(
    db: &Arc<Db>,
    cfg: &Config,
    config: Arc<ConfigStatus>,
    registry: &mut Registry,
) -> anyhow::Result<Router> {
    let ingest = ingest::Ingest::new(db.clone(), cfg.ingest_limits(), registry);
    let mut opts = cfg.api_options()?;
    opts.status.config = config;
    let api = query::api::Api::new(db.clone(), opts);
    let sql = sql::api::SqlApi::new(db.clone(), cfg.sql_options());
    Ok(Router::new()
        .merge(ingest::routes(ingest))
        .merge(query::api::routes(api))
        .merge(sql::api::routes(sql)))
}
