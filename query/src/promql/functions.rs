//! The PromQL function table: every function Prometheus 3 knows (its
//! `promql/parser/functions.go` at the snapshot the conformance scripts
//! come from), with argument types and arity that the parser checks.
//! Experimental functions are always enabled in Silt.

use super::ast::Function;
use super::ast::ValueType::{self, Matrix, Scalar, String, Vector};

const fn f(
    name: &'static str,
    arg_types: &'static [ValueType],
    variadic: i32,
    return_type: ValueType,
    experimental: bool,
) -> Function {
    Function {
        name,
        arg_types,
        variadic,
        return_type,
        experimental,
    }
}

/// All functions, sorted by name.
pub static FUNCTIONS: &[Function] = &[
    f("abs", &[Vector], 0, Vector, false),
    f("absent", &[Vector], 0, Vector, false),
    f("absent_over_time", &[Matrix], 0, Vector, false),
    f("acos", &[Vector], 0, Vector, false),
    f("acosh", &[Vector], 0, Vector, false),
    f("asin", &[Vector], 0, Vector, false),
    f("asinh", &[Vector], 0, Vector, false),
    f("atan", &[Vector], 0, Vector, false),
    f("atanh", &[Vector], 0, Vector, false),
    f("avg_over_time", &[Matrix], 0, Vector, false),
    f("ceil", &[Vector], 0, Vector, false),
    f("changes", &[Matrix], 0, Vector, false),
    f("clamp", &[Vector, Scalar, Scalar], 0, Vector, false),
    f("clamp_max", &[Vector, Scalar], 0, Vector, false),
    f("clamp_min", &[Vector, Scalar], 0, Vector, false),
    f("cos", &[Vector], 0, Vector, false),
    f("cosh", &[Vector], 0, Vector, false),
    f("count_over_time", &[Matrix], 0, Vector, false),
    f("day_of_month", &[Vector], 1, Vector, false),
    f("day_of_week", &[Vector], 1, Vector, false),
    f("day_of_year", &[Vector], 1, Vector, false),
    f("days_in_month", &[Vector], 1, Vector, false),
    f("deg", &[Vector], 0, Vector, false),
    f("delta", &[Matrix], 0, Vector, false),
    f("deriv", &[Matrix], 0, Vector, false),
    f(
        "double_exponential_smoothing",
        &[Matrix, Scalar, Scalar],
        0,
        Vector,
        true,
    ),
    f("end", &[], 0, Scalar, true),
    f("exp", &[Vector], 0, Vector, false),
    f("first_over_time", &[Matrix], 0, Vector, false),
    f("floor", &[Vector], 0, Vector, false),
    f("histogram_avg", &[Vector], 0, Vector, false),
    f("histogram_count", &[Vector], 0, Vector, false),
    f(
        "histogram_fraction",
        &[Scalar, Scalar, Vector],
        0,
        Vector,
        false,
    ),
    f("histogram_quantile", &[Scalar, Vector], 0, Vector, false),
    f(
        "histogram_quantiles",
        &[Vector, String, Scalar, Scalar],
        9,
        Vector,
        true,
    ),
    f("histogram_stddev", &[Vector], 0, Vector, false),
    f("histogram_stdvar", &[Vector], 0, Vector, false),
    f("histogram_sum", &[Vector], 0, Vector, false),
    f("hour", &[Vector], 1, Vector, false),
    f("idelta", &[Matrix], 0, Vector, false),
    f("increase", &[Matrix], 0, Vector, false),
    f("info", &[Vector, Vector], 1, Vector, true),
    f("irate", &[Matrix], 0, Vector, false),
    f(
        "label_join",
        &[Vector, String, String, String],
        -1,
        Vector,
        false,
    ),
    f(
        "label_replace",
        &[Vector, String, String, String, String],
        0,
        Vector,
        false,
    ),
    f("last_over_time", &[Matrix], 0, Vector, false),
    f("ln", &[Vector], 0, Vector, false),
    f("log10", &[Vector], 0, Vector, false),
    f("log2", &[Vector], 0, Vector, false),
    f("mad_over_time", &[Matrix], 0, Vector, true),
    f("max_of", &[Scalar, Scalar], 0, Scalar, true),
    f("max_over_time", &[Matrix], 0, Vector, false),
    f("min_of", &[Scalar, Scalar], 0, Scalar, true),
    f("min_over_time", &[Matrix], 0, Vector, false),
    f("minute", &[Vector], 1, Vector, false),
    f("month", &[Vector], 1, Vector, false),
    f("pi", &[], 0, Scalar, false),
    f("predict_linear", &[Matrix, Scalar], 0, Vector, false),
    f("present_over_time", &[Matrix], 0, Vector, false),
    f("quantile_over_time", &[Scalar, Matrix], 0, Vector, false),
    f("rad", &[Vector], 0, Vector, false),
    f("range", &[], 0, Scalar, true),
    f("rate", &[Matrix], 0, Vector, false),
    f("resets", &[Matrix], 0, Vector, false),
    f("round", &[Vector, Scalar], 1, Vector, false),
    f("scalar", &[Vector], 0, Scalar, false),
    f("sgn", &[Vector], 0, Vector, false),
    // Silt's forecasting extensions (never Prometheus names).
    f("silt_anomaly_lower", &[Matrix], 0, Vector, false),
    f("silt_anomaly_score", &[Matrix], 0, Vector, false),
    f("silt_anomaly_upper", &[Matrix], 0, Vector, false),
    f("silt_forecast", &[Matrix, Scalar], 0, Vector, false),
    f(
        "silt_forecast_lower",
        &[Matrix, Scalar, Scalar],
        0,
        Vector,
        false,
    ),
    f(
        "silt_forecast_upper",
        &[Matrix, Scalar, Scalar],
        0,
        Vector,
        false,
    ),
    f(
        "silt_time_to_threshold",
        &[Matrix, Scalar],
        0,
        Vector,
        false,
    ),
    f("sin", &[Vector], 0, Vector, false),
    f("sinh", &[Vector], 0, Vector, false),
    f("sort", &[Vector], 0, Vector, false),
    f("sort_by_label", &[Vector, String], -1, Vector, true),
    f("sort_by_label_desc", &[Vector, String], -1, Vector, true),
    f("sort_desc", &[Vector], 0, Vector, false),
    f("sqrt", &[Vector], 0, Vector, false),
    f("start", &[], 0, Scalar, true),
    f("start_timestamp", &[Vector], 0, Vector, true),
    f("stddev_over_time", &[Matrix], 0, Vector, false),
    f("stdvar_over_time", &[Matrix], 0, Vector, false),
    f("step", &[], 0, Scalar, true),
    f("sum_over_time", &[Matrix], 0, Vector, false),
    f("tan", &[Vector], 0, Vector, false),
    f("tanh", &[Vector], 0, Vector, false),
    f("time", &[], 0, Scalar, false),
    f("timestamp", &[Vector], 0, Vector, false),
    f("ts_of_first_over_time", &[Matrix], 0, Vector, true),
    f("ts_of_last_over_time", &[Matrix], 0, Vector, true),
    f("ts_of_max_over_time", &[Matrix], 0, Vector, true),
    f("ts_of_min_over_time", &[Matrix], 0, Vector, true),
    f("vector", &[Scalar], 0, Vector, false),
    f("year", &[Vector], 1, Vector, false),
];

/// The function called `name` (case-sensitive, as in Prometheus).
pub fn lookup(name: &str) -> Option<&'static Function> {
    FUNCTIONS
        .binary_search_by(|f| f.name.cmp(name))
        .ok()
        .and_then(|i| FUNCTIONS.get(i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_complete() {
        assert!(FUNCTIONS.windows(2).all(|w| w[0].name < w[1].name));
        assert_eq!(FUNCTIONS.len(), 97);
        for f in FUNCTIONS {
            assert_eq!(lookup(f.name).map(|g| g.name), Some(f.name));
        }
        assert!(lookup("nope").is_none());
        assert!(lookup("RATE").is_none(), "names are case-sensitive");
    }

    #[test]
    fn signatures_match_prometheus() {
        let rate = lookup("rate").unwrap();
        assert_eq!(
            (rate.arg_types, rate.variadic, rate.return_type),
            (&[Matrix][..], 0, Vector)
        );
        let join = lookup("label_join").unwrap();
        assert_eq!(join.variadic, -1);
        assert_eq!(join.arg_types, &[Vector, String, String, String]);
        let round = lookup("round").unwrap();
        assert_eq!((round.arg_types.len(), round.variadic), (2, 1));
        let hq = lookup("histogram_quantiles").unwrap();
        assert_eq!((hq.variadic, hq.experimental), (9, true));
        assert_eq!(lookup("pi").unwrap().return_type, Scalar);
        assert!(lookup("info").unwrap().experimental);
        assert!(!lookup("time").unwrap().experimental);
    }
}
