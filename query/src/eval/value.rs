//! Value types: what a query returns ([`Value`]) and what the evaluator
//! passes between nodes (a [`Series`] holds one point per evaluation step
//! at which it has a value).

use engine::{Label, Labels};

/// A point of a series: milliseconds and a float value (the engine's
/// sample type, compared bit-exactly so stale markers survive).
pub type Point = engine::Sample;

/// One element of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: Labels,
    pub t: i64,
    pub v: f64,
}

/// One series of a range vector (matrix), points sorted by time.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: Labels,
    pub points: Vec<Point>,
    /// Delayed name removal: the metric name (and `__type__`/`__unit__`)
    /// is dropped when evaluation ends.
    pub(crate) drop_name: bool,
}

impl Series {
    pub fn new(labels: Labels, points: Vec<Point>) -> Series {
        Series {
            labels,
            points,
            drop_name: false,
        }
    }
}

/// The result of a query.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `(t, v)`.
    Scalar(i64, f64),
    /// `(t, s)`.
    String(i64, String),
    /// An instant vector, in the order the evaluation produced it (which
    /// matters for `sort*`, `topk`, `bottomk`).
    Vector(Vec<Sample>),
    /// A range vector, series sorted by labels.
    Matrix(Vec<Series>),
}

impl Value {
    /// `scalar`, `string`, `vector` or `matrix`, as the API's `resultType`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Scalar(..) => "scalar",
            Value::String(..) => "string",
            Value::Vector(_) => "vector",
            Value::Matrix(_) => "matrix",
        }
    }
}

/// The labels Prometheus drops with the metric name.
pub(crate) fn is_metadata_label(name: &str) -> bool {
    name == engine::METRIC_NAME || name == "__type__" || name == "__unit__"
}

/// Whether `labels` has `__name__`, `__type__` or `__unit__`: a look at
/// its first few labels, sorted by name (`__unit__` sorts after the other
/// two and before every lowercase name).
#[inline]
pub(crate) fn has_metadata(labels: &Labels) -> bool {
    metadata(labels).next().is_some()
}

/// The labels of `labels` that are `__name__`, `__type__` or `__unit__`
/// (see [`has_metadata`]).
pub(crate) fn metadata(labels: &Labels) -> impl Iterator<Item = &Label> {
    labels
        .iter()
        .take_while(|l| l.name.as_str() <= "__unit__")
        .filter(|l| is_metadata_label(&l.name))
}

/// Whether `a` and `b` have the same `__name__`, `__type__` and `__unit__`
/// (absent ones too).
pub(crate) fn same_metadata(a: &Labels, b: &Labels) -> bool {
    metadata(a).eq(metadata(b))
}

/// `labels` without `__name__`, `__type__` and `__unit__`.
pub(crate) fn drop_metadata(labels: &Labels) -> Labels {
    let dropped = metadata(labels).count();
    if dropped == 0 {
        return labels.clone();
    }
    // Counted: collected straight into the shared slice, without a vector
    // first.
    Labels::from_sorted_counted(
        labels.len() - dropped,
        labels
            .iter()
            .filter(|l| !is_metadata_label(&l.name))
            .cloned(),
    )
}

/// Sets (or, for an empty value, deletes) one label.
pub(crate) fn set_label(labels: &Labels, name: &str, value: &str) -> Labels {
    let mut v: Vec<Label> = labels.iter().filter(|l| l.name != name).cloned().collect();
    if !value.is_empty() {
        let at = v.partition_point(|l| l.name.as_str() < name);
        v.insert(at, Label::new(name, value));
    }
    Labels::from_sorted(v)
}

/// Prometheus's `labels.String()`: `{__name__="x", a="b"}` with Go quoting.
pub(crate) fn labels_string(labels: &Labels) -> String {
    let mut s = String::from("{");
    for (i, l) in labels.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(&l.name);
        s.push('=');
        s.push_str(&crate::gofmt::quote(&l.value));
    }
    s.push('}');
    s
}

/// The value of one label, `""` when absent (Prometheus's `Get`).
pub(crate) fn get<'a>(labels: &'a Labels, name: &str) -> &'a str {
    labels.get(name).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_labels_are_found_among_the_first_names() {
        for (pairs, has) in [
            (&[("__name__", "m"), ("a", "1")][..], true),
            (&[("Zone", "z"), ("__unit__", "s")][..], true),
            (
                &[("A", "1"), ("B", "2"), ("__type__", "gauge"), ("a", "1")][..],
                true,
            ),
            (
                &[("Zone", "z"), ("__instance__", "x"), ("a", "1")][..],
                false,
            ),
            (
                &[("_", "x"), ("__", "y"), ("__unitz", "y"), ("a", "1")][..],
                false,
            ),
            (&[][..], false),
        ] {
            let l = Labels::new(pairs);
            assert_eq!(has_metadata(&l), has, "{l:?}");
            assert_eq!(
                has,
                l.iter().any(|x| is_metadata_label(&x.name)),
                "the same as looking at every name: {l:?}"
            );
        }
    }

    #[test]
    fn label_helpers() {
        let l = Labels::new(&[("__name__", "m"), ("a", "1"), ("b", "2"), ("__type__", "c")]);
        assert_eq!(drop_metadata(&l), Labels::new(&[("a", "1"), ("b", "2")]));
        assert_eq!(
            set_label(&l, "c", "3").get("c"),
            Some("3"),
            "set inserts in order"
        );
        assert_eq!(set_label(&l, "a", "").get("a"), None, "empty deletes");
        assert_eq!(
            labels_string(&Labels::new(&[("__name__", "m"), ("a", "x\"y")])),
            r#"{__name__="m", a="x\"y"}"#
        );
    }
}
