//! Forecasting and anomaly detection over one series of `(ms, value)`
//! samples, independent of PromQL and storage: Silt's seasonal forecaster
//! ([`Model`]), its prediction intervals, time to threshold and anomaly
//! bands. The PromQL functions (`silt_forecast`, ...) in
//! `eval::functions::forecast` and the backtest in `benches/` call it.
//!
//! The method, in short (details and measured accuracy in
//! `docs/forecasting.md`): samples are averaged onto a grid aligned to
//! the epoch (at most [`FitOptions::max_cells`] cells); a Theil–Sen trend
//! over medians of whole days (or weeks) that must hold in both halves of
//! the data; daily and weekly profiles as per-phase medians, kept when
//! the data spans two cycles, alternate cycles agree and the component is
//! strong enough; a clipped exponential level on the remainder, tuned per
//! horizon; prediction intervals from quantiles of in-sample forecast
//! errors at that horizon.

pub mod grid;
pub mod linear;
pub mod model;
pub mod predict;
pub mod robust;

pub use model::{
    ANOMALY_SIGMAS, Band, FitOptions, Forecast, MIN_CELLS, MIN_SAMPLES, Model, Seasonality,
    check_coverage,
};
pub use predict::{Direction, Exhaustion, Fitted, ModelKind, exhaustion};

/// Why a forecast cannot be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ForecastError {
    #[error("series too short to fit: {have} finite samples, need at least {need}")]
    TooFewSamples { have: usize, need: usize },
    #[error(
        "series too short to fit: it spans {cells} grid cells of {}s, need at least {need}",
        *step_ms as f64 / 1000.0
    )]
    TooShort {
        cells: usize,
        step_ms: i64,
        need: usize,
    },
    #[error("coverage must lie strictly between 0 and 1, got {0}")]
    InvalidCoverage(f64),
}

#[cfg(test)]
mod tests;
