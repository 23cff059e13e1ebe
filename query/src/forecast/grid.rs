//! Resampling onto a regular grid: samples are averaged into cells of a
//! "nice" width (one that divides a day), aligned to the Unix epoch so
//! that a cell's phase within the day and the week is absolute.

use engine::Sample;

/// Cell widths the grid may use, in ms; each divides one day.
const NICE_STEPS_MS: [i64; 18] = [
    1_000, 2_000, 5_000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000, 900_000,
    1_800_000, 3_600_000, 7_200_000, 10_800_000, 21_600_000, 43_200_000, 86_400_000,
];

/// One day and one week in ms.
pub const DAY_MS: i64 = 86_400_000;
pub const WEEK_MS: i64 = 7 * DAY_MS;

/// The smallest nice cell width of at least `min_ms` (whole days beyond
/// one day).
pub fn nice_step(min_ms: i64) -> i64 {
    NICE_STEPS_MS
        .iter()
        .copied()
        .find(|&s| s >= min_ms)
        .unwrap_or_else(|| ((min_ms + DAY_MS - 1) / DAY_MS).max(1) * DAY_MS)
}

/// The median spacing between consecutive finite samples (0 with fewer
/// than two), from at most about 1,000 evenly spread pairs.
pub fn median_interval(samples: &[Sample], buf: &mut Vec<i64>) -> i64 {
    buf.clear();
    let stride = (samples.len() / 1024).max(1);
    for i in (0..samples.len()).step_by(stride) {
        if !samples[i].v.is_finite() {
            continue;
        }
        if let Some(b) = samples[i + 1..].iter().take(64).find(|s| s.v.is_finite()) {
            buf.push(b.t - samples[i].t);
        }
    }
    if buf.is_empty() {
        return 0;
    }
    let mid = buf.len() / 2;
    *buf.select_nth_unstable(mid).1
}

/// A series on a regular grid: `values[i]` is the mean of the finite
/// samples in cell `first_cell + i`, i.e. in
/// `[(first_cell + i) * step_ms, (first_cell + i + 1) * step_ms)`; NaN
/// where the cell holds none.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    pub step_ms: i64,
    pub first_cell: i64,
    pub values: Vec<f64>,
    /// Mean time of the samples after the start of their cell: a cell's
    /// value stands for the time `cell * step_ms + offset_ms`.
    pub offset_ms: f64,
}

/// The cell holding time `t_ms` for cells of `step_ms`.
pub fn cell_of(t_ms: i64, step_ms: i64) -> i64 {
    t_ms.div_euclid(step_ms)
}

impl Grid {
    /// Averages the finite samples (sorted by time) into cells of
    /// `step_ms`. Empty when no sample is finite.
    pub fn resample(samples: &[Sample], step_ms: i64) -> Grid {
        let mut finite = samples.iter().filter(|s| s.v.is_finite());
        let Some(first) = finite.next() else {
            return Grid {
                step_ms,
                first_cell: 0,
                values: Vec::new(),
                offset_ms: step_ms as f64 / 2.0,
            };
        };
        let first_cell = cell_of(first.t, step_ms);
        let last_t = samples
            .iter()
            .rev()
            .find(|s| s.v.is_finite())
            .map_or(first.t, |s| s.t);
        let n = (cell_of(last_t, step_ms) - first_cell + 1) as usize;
        let mut sums = vec![0.0; n];
        let mut counts = vec![0u32; n];
        let (mut offset_sum, mut total) = (0.0, 0u64);
        for s in samples.iter().filter(|s| s.v.is_finite()) {
            offset_sum += s.t.rem_euclid(step_ms) as f64;
            total += 1;
            let i = (cell_of(s.t, step_ms) - first_cell) as usize;
            if let (Some(sum), Some(c)) = (sums.get_mut(i), counts.get_mut(i)) {
                *sum += s.v;
                *c += 1;
            }
        }
        let values = sums
            .iter()
            .zip(&counts)
            .map(|(&s, &c)| if c == 0 { f64::NAN } else { s / c as f64 })
            .collect();
        Grid {
            step_ms,
            first_cell,
            values,
            offset_ms: offset_sum / total.max(1) as f64,
        }
    }

    /// The time cell `i` (relative to `first_cell`) stands for, in ms.
    pub fn cell_time_ms(&self, i: i64) -> f64 {
        ((self.first_cell + i) * self.step_ms) as f64 + self.offset_ms
    }
}

/// Fills NaN gaps by linear interpolation between the nearest values on
/// each side (the nearest value at the ends). All-NaN input stays NaN.
pub fn fill_gaps(values: &mut [f64]) {
    let Some(first) = values.iter().position(|v| !v.is_nan()) else {
        return;
    };
    let first_v = values[first];
    values[..first].fill(first_v);
    let mut last = first;
    for i in first + 1..values.len() {
        if values[i].is_nan() {
            continue;
        }
        if i > last + 1 {
            let (a, b) = (values[last], values[i]);
            let span = (i - last) as f64;
            for (k, v) in values[last + 1..i].iter_mut().enumerate() {
                *v = a + (b - a) * (k + 1) as f64 / span;
            }
        }
        last = i;
    }
    let last_v = values[last];
    values[last + 1..].fill(last_v);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(t: i64, v: f64) -> Sample {
        Sample { t, v }
    }

    #[test]
    fn nice_steps_divide_a_day() {
        for s in NICE_STEPS_MS {
            assert_eq!(DAY_MS % s, 0);
        }
        assert_eq!(nice_step(0), 1_000);
        assert_eq!(nice_step(147_000), 300_000);
        assert_eq!(nice_step(300_000), 300_000);
        assert_eq!(nice_step(3 * DAY_MS / 2), 2 * DAY_MS);
    }

    #[test]
    fn resample_averages_and_marks_gaps() {
        let samples = [
            s(59_000, 1.0),
            s(61_000, 2.0),
            s(119_000, 4.0),
            s(130_000, f64::NAN),
            s(250_000, 9.0),
        ];
        let g = Grid::resample(&samples, 60_000);
        assert_eq!(g.first_cell, 0);
        assert_eq!(g.values.len(), 5);
        assert_eq!(g.values[0], 1.0);
        assert_eq!(g.values[1], 3.0);
        assert!(g.values[2].is_nan() && g.values[3].is_nan());
        assert_eq!(g.values[4], 9.0);
        assert_eq!(
            g.offset_ms,
            (59_000.0 + 1_000.0 + 59_000.0 + 10_000.0) / 4.0
        );
        assert_eq!(g.cell_time_ms(1), 60_000.0 + g.offset_ms);
        assert!(
            Grid::resample(&[s(0, f64::INFINITY)], 1000)
                .values
                .is_empty()
        );
    }

    #[test]
    fn gaps_interpolate() {
        let mut v = [f64::NAN, 1.0, f64::NAN, f64::NAN, 4.0, f64::NAN];
        fill_gaps(&mut v);
        assert_eq!(v, [1.0, 1.0, 2.0, 3.0, 4.0, 4.0]);
        let mut mi = vec![0; 0];
        assert_eq!(
            median_interval(&[s(0, 1.0), s(10, 1.0), s(30, 1.0), s(40, 1.0)], &mut mi),
            10
        );
    }
}
