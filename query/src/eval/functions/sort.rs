//! Orderings for `sort`, `sort_desc`, `sort_by_label` and
//! `sort_by_label_desc`. Each is a total order, so sorting untrusted data
//! never panics; where Prometheus's comparators are inconsistent (and its
//! output therefore depends on the sort algorithm) the notes say what Silt
//! does instead. Prometheus's value sorts are not stable; use a stable sort
//! with these for reproducible output.

use std::cmp::Ordering;

use engine::Labels;

/// `sort`: ascending by value, NaN last.
pub fn cmp_value_asc(a: f64, b: f64) -> Ordering {
    nan_last(a, b, a.partial_cmp(&b))
}

/// `sort_desc`: descending by value, NaN last.
pub fn cmp_value_desc(a: f64, b: f64) -> Ordering {
    nan_last(a, b, b.partial_cmp(&a))
}

fn nan_last(a: f64, b: f64, ordered: Option<Ordering>) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => ordered.unwrap_or(Ordering::Equal),
    }
}

/// `sort_by_label(v, names...)`: by each named label's value in natural
/// order (absent = `""`), then by the full label set.
pub fn cmp_by_labels(a: &Labels, b: &Labels, names: &[&str]) -> Ordering {
    for name in names {
        let (x, y) = (a.get(name).unwrap_or(""), b.get(name).unwrap_or(""));
        if x != y {
            return natural_cmp(x, y);
        }
    }
    a.cmp(b)
}

/// `sort_by_label_desc(v, names...)`: the reverse of [`cmp_by_labels`].
pub fn cmp_by_labels_desc(a: &Labels, b: &Labels, names: &[&str]) -> Ordering {
    cmp_by_labels(b, a, names)
}

/// Natural order as Prometheus's `natsort.Compare` (facette/natsort, 2018):
/// the strings split into runs of ASCII digits and runs of other
/// characters; two digit runs compare as numbers, anything else as bytes;
/// a string that is a prefix (in runs) of the other comes first.
///
/// Where natsort is inconsistent Silt stays total: runs that are equal as
/// numbers but differ in text (`"01"` vs `"1"`) fall back to byte order,
/// numbers of any length compare by value (natsort compares numbers over
/// 19 digits as text), and `""` sorts first (natsort calls it neither
/// smaller nor larger than anything).
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut x, mut y) = (Runs(a), Runs(b));
    loop {
        match (x.next(), y.next()) {
            (None, None) => return a.cmp(b),
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(p), Some(q)) => {
                let ord = if is_digits(p) && is_digits(q) {
                    cmp_numeric(p, q)
                } else {
                    p.cmp(q)
                };
                if ord != Ordering::Equal {
                    return ord;
                }
            }
        }
    }
}

fn is_digits(run: &str) -> bool {
    run.as_bytes().first().is_some_and(u8::is_ascii_digit)
}

/// Compares two digit runs by numeric value without overflow.
fn cmp_numeric(p: &str, q: &str) -> Ordering {
    let p = p.trim_start_matches('0');
    let q = q.trim_start_matches('0');
    p.len().cmp(&q.len()).then_with(|| p.cmp(q))
}

/// Iterator over maximal runs of ASCII digits / non-digits.
struct Runs<'a>(&'a str);

impl<'a> Iterator for Runs<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let first = *self.0.as_bytes().first()?;
        let digit = first.is_ascii_digit();
        let end = self
            .0
            .bytes()
            .position(|c| c.is_ascii_digit() != digit)
            .unwrap_or(self.0.len());
        // Digits are ASCII, so `end` is always a char boundary.
        let (run, rest) = self.0.split_at(end);
        self.0 = rest;
        Some(run)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_sorts_put_nan_last() {
        let mut v = [3.0, f64::NAN, 1.0, 2.0];
        v.sort_by(|a, b| cmp_value_asc(*a, *b));
        assert_eq!(&v[..3], &[1.0, 2.0, 3.0]);
        assert!(v[3].is_nan());
        v.sort_by(|a, b| cmp_value_desc(*a, *b));
        assert_eq!(&v[..3], &[3.0, 2.0, 1.0]);
        assert!(v[3].is_nan());
    }

    // functions.test "Tests for sort_by_label/sort_by_label_desc".
    #[test]
    fn natural_order_script_cases() {
        let mut cpus = ["10", "2", "100", "0", "21", "1", "12", "3", "20", "11"];
        cpus.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            cpus,
            ["0", "1", "2", "3", "10", "11", "12", "20", "21", "100"]
        );
        let mut instances = ["4m1000", "4m600", "4m5"];
        instances.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(instances, ["4m5", "4m600", "4m1000"]);
        let mut releases = ["1.111.3", "1.11.3", "1.2.3"];
        releases.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(releases, ["1.2.3", "1.11.3", "1.111.3"]);
    }

    #[test]
    fn natural_order_edge_cases() {
        assert_eq!(natural_cmp("a1", "a1b"), Ordering::Less);
        assert_eq!(natural_cmp("a", "1"), Ordering::Greater);
        assert_eq!(natural_cmp("-", "1"), Ordering::Less);
        assert_eq!(natural_cmp("", "x"), Ordering::Less);
        assert_eq!(natural_cmp("01", "1"), Ordering::Less);
        assert_eq!(natural_cmp("1", "01"), Ordering::Greater);
        assert_eq!(natural_cmp("x", "x"), Ordering::Equal);
        let huge = "123456789012345678901234567890";
        assert_eq!(natural_cmp("9", huge), Ordering::Less);
        assert_eq!(natural_cmp("é2", "é10"), Ordering::Less);
    }

    #[test]
    fn by_labels_then_full_set() {
        let l =
            |g: &str, i: &str, j: &str| Labels::new(&[("group", g), ("instance", i), ("job", j)]);
        let mut v = [
            l("production", "1", "api-server"),
            l("canary", "0", "app-server"),
            l("canary", "1", "api-server"),
            l("production", "0", "api-server"),
            l("canary", "0", "api-server"),
        ];
        v.sort_by(|a, b| cmp_by_labels(a, b, &["instance"]));
        let got: Vec<(&str, &str, &str)> = v
            .iter()
            .map(|x| {
                (
                    x.get("group").unwrap(),
                    x.get("instance").unwrap(),
                    x.get("job").unwrap(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("canary", "0", "api-server"),
                ("canary", "0", "app-server"),
                ("production", "0", "api-server"),
                ("canary", "1", "api-server"),
                ("production", "1", "api-server"),
            ]
        );
        v.sort_by(|a, b| cmp_by_labels_desc(a, b, &["instance"]));
        assert_eq!(v[0], l("production", "1", "api-server"));
        assert_eq!(v[4], l("canary", "0", "api-server"));
    }
}
