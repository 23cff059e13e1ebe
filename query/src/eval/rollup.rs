//! Range functions over all windows of one series at once (the range
//! query's rollup): state carried from one window to the next makes each
//! window O(1) where the result stays what Prometheus computes window by
//! window.
//!
//! * `rate`/`increase`/`delta`: the positions of the series' decreases are
//!   found once; a window without one needs only its ends (with one, the
//!   in-order correction loop runs as in Prometheus).
//! * `sum_over_time`/`avg_over_time`: over integer values whose absolute
//!   sum stays within 2^53, Prometheus's Kahan sum never rounds and equals
//!   the exact sum, kept here as a running `i128`; other windows are
//!   summed from scratch, in order, as Prometheus does.
//! * `min_over_time`/`max_over_time`: a monotonic deque of candidates
//!   (the earliest of equal values first, as the in-order scan picks it);
//!   series with NaNs are scanned per window.
//! * `deriv`/`predict_linear`: over integer values, exact running sums of
//!   `t`, `t²`, `v` and `t·v` (`i128`, milliseconds from the series' first
//!   sample) give the least-squares line with one rounding per quotient.
//!   Prometheus's Kahan sums round each term and its covariance cancels,
//!   so where its error bound could exceed 1e-7 of the result the window
//!   is computed as Prometheus does: results equal Prometheus's within
//!   1e-7 relative (the test scripts allow 1e-6). Constant windows give
//!   exactly Prometheus's `(0, value)`.
//! * `count`, `present`, `first`, `last`, `ts_of_first`, `ts_of_last`,
//!   `irate`, `idelta`: O(1) per window anyway; the kernel only saves the
//!   per-window dispatch.

use std::collections::VecDeque;

use engine::RunSummary;
use engine::summary::{
    FLOAT_SUM_LIMIT, FloatSum, kahan_extend, kahan_step, two_sum_exact, two_sum_step,
};

use super::functions::call::RangeFunction;
use super::functions::range::{self as fr, Window};
use super::functions::smoothing::{self, LineFit};
use super::functions::start as fs;
use super::selector::Span;
use super::value::Point;
use crate::promql::ast::RangeMode;

/// A range function evaluated series by series with [`Kernel::run`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kernel {
    /// `rate` (`counter`, `per_second`), `increase` (`counter`), `delta`.
    Rate {
        counter: bool,
        per_second: bool,
    },
    /// `irate` (`per_second`) and `idelta`.
    Instant {
        per_second: bool,
    },
    Count,
    Present,
    First,
    Last,
    TsOfFirst,
    TsOfLast,
    Sum,
    Avg,
    Min,
    Max,
    Deriv,
    PredictLinear,
}

impl Kernel {
    /// The kernel of a function over a normal range selector or subquery
    /// (`anchored`/`smoothed` windows go window by window).
    pub fn for_function(f: RangeFunction, mode: RangeMode) -> Option<Kernel> {
        use RangeFunction as F;
        if mode != RangeMode::Normal {
            return None;
        }
        Some(match f {
            F::Rate => Kernel::Rate {
                counter: true,
                per_second: true,
            },
            F::Increase => Kernel::Rate {
                counter: true,
                per_second: false,
            },
            F::Delta => Kernel::Rate {
                counter: false,
                per_second: false,
            },
            F::Irate => Kernel::Instant { per_second: true },
            F::Idelta => Kernel::Instant { per_second: false },
            F::CountOverTime => Kernel::Count,
            F::PresentOverTime => Kernel::Present,
            F::FirstOverTime => Kernel::First,
            F::LastOverTime => Kernel::Last,
            F::TsOfFirstOverTime => Kernel::TsOfFirst,
            F::TsOfLastOverTime => Kernel::TsOfLast,
            F::SumOverTime => Kernel::Sum,
            F::AvgOverTime => Kernel::Avg,
            F::MinOverTime => Kernel::Min,
            F::MaxOverTime => Kernel::Max,
            F::Deriv => Kernel::Deriv,
            F::PredictLinear => Kernel::PredictLinear,
            _ => return None,
        })
    }

    /// Appends the function's value at every span of `pts` (spans in step
    /// order, neither end moving back) to `out`. `param(step)`: the scalar
    /// argument at a step (`predict_linear`'s horizon in seconds).
    pub fn run(
        self,
        pts: &[Point],
        spans: &[Span],
        param: &dyn Fn(usize) -> f64,
        out: &mut Vec<Point>,
    ) {
        let window = |sp: &Span| Window::new(&pts[sp.a..sp.b], sp.range_start, sp.range_end);
        let mut each = |f: &dyn Fn(&Span) -> Option<f64>| {
            for sp in spans {
                if let Some(v) = f(sp) {
                    out.push(Point::new(sp.t, v));
                }
            }
        };
        match self {
            Kernel::Rate {
                counter,
                per_second,
            } => rates(pts, spans, counter, per_second, out),
            Kernel::Instant { per_second } => each(&|sp| {
                let w = window(sp);
                if per_second {
                    fr::irate(&w)
                } else {
                    fr::idelta(&w)
                }
            }),
            Kernel::Count => each(&|sp| Some((sp.b - sp.a) as f64)),
            Kernel::Present => each(&|_| Some(1.0)),
            Kernel::First => each(&|sp| Some(pts[sp.a].v)),
            Kernel::Last => each(&|sp| Some(pts[sp.b - 1].v)),
            Kernel::TsOfFirst => each(&|sp| Some(pts[sp.a].t as f64 / 1000.0)),
            Kernel::TsOfLast => each(&|sp| Some(pts[sp.b - 1].t as f64 / 1000.0)),
            Kernel::Sum | Kernel::Avg => sums(pts, spans, self == Kernel::Avg, out),
            Kernel::Min | Kernel::Max => extremes(pts, spans, self == Kernel::Max, out),
            Kernel::Deriv | Kernel::PredictLinear => {
                regressions(pts, spans, self == Kernel::PredictLinear, param, out)
            }
        }
    }
}

impl Kernel {
    /// Whether the kernel reads samples' start timestamps (`rate`,
    /// `increase`, `irate`; see [`Kernel::run_starts`]).
    pub fn reads_starts(self) -> bool {
        matches!(
            self,
            Kernel::Rate { counter: true, .. } | Kernel::Instant { per_second: true }
        )
    }

    /// [`Kernel::run`] for a kernel that [`Kernel::reads_starts`], over
    /// samples with their start timestamps (`starts[k]` of `pts[k]`, 0 when
    /// unknown), window by window. Returns in how many windows a start
    /// overlapped the sample before it (Prometheus warns of each).
    pub fn run_starts(
        self,
        pts: &[Point],
        starts: &[i64],
        spans: &[Span],
        out: &mut Vec<Point>,
    ) -> usize {
        let mut overlaps = 0;
        for sp in spans {
            let w = Window::new(&pts[sp.a..sp.b], sp.range_start, sp.range_end);
            let st = &starts[sp.a..sp.b];
            let v = match self {
                Kernel::Rate { per_second, .. } => {
                    let r = fs::rate(&w, st, per_second);
                    overlaps += usize::from(r.overlap);
                    r.value
                }
                Kernel::Instant { .. } => fs::irate(&w, st),
                _ => unreachable!("{self:?} reads no start timestamps"),
            };
            if let Some(v) = v {
                out.push(Point::new(sp.t, v));
            }
        }
        overlaps
    }
}

/// `rate`, `increase`, `delta`: Prometheus's extrapolation on each window,
/// told whether the window holds a counter decrease.
fn rates(pts: &[Point], spans: &[Span], counter: bool, per_second: bool, out: &mut Vec<Point>) {
    match (counter, per_second) {
        (true, true) => rates_batched::<true, true>(pts, spans, out),
        (true, false) => rates_batched::<true, false>(pts, spans, out),
        (false, true) => rates_batched::<false, true>(pts, spans, out),
        (false, false) => rates_batched::<false, false>(pts, spans, out),
    }
}

/// Windows per batch of [`rates_batched`].
const BATCH: usize = 64;

/// The inputs of [`super::functions::range::extrapolated_rate_known`] for a
/// batch of windows, one array per quantity, so that its divisions run
/// two at a time (vectorised) instead of one after the other.
struct RateBatch {
    /// Window start to first sample, last sample to window end and first
    /// to last sample, in ms.
    to_start: [f64; BATCH],
    to_end: [f64; BATCH],
    sampled: [f64; BATCH],
    /// Samples minus one.
    intervals: [f64; BATCH],
    /// Last minus first value, with counter corrections.
    delta: [f64; BATCH],
    first: [f64; BATCH],
    t: [i64; BATCH],
    len: usize,
}

fn rates_batched<const COUNTER: bool, const RATE: bool>(
    pts: &[Point],
    spans: &[Span],
    out: &mut Vec<Point>,
) {
    let Some(sp0) = spans.first() else {
        return;
    };
    // Every window of a range argument has the same length.
    let range_seconds = fr::range_seconds(sp0.range_start, sp0.range_end);
    // Index `r` of every sample below its predecessor (NaNs compare false,
    // as in the correction loop). Usually none.
    let mut resets: Vec<usize> = Vec::new();
    if COUNTER {
        let mut prev = pts.first().map_or(0.0, |p| p.v);
        for (r, p) in pts.iter().enumerate().skip(1) {
            if p.v < prev {
                resets.push(r);
            }
            prev = p.v;
        }
    }
    if spans.len() < BATCH / 4 {
        // Few windows (an instant query): not worth a batch's setup.
        let mut k = 0;
        for sp in spans {
            while k < resets.len() && resets[k] <= sp.a {
                k += 1;
            }
            let has_decrease = k < resets.len() && resets[k] < sp.b;
            let w = Window::new(&pts[sp.a..sp.b], sp.range_start, sp.range_end);
            if let Some(v) = fr::extrapolated_rate_known(&w, COUNTER, RATE, has_decrease) {
                out.push(Point::new(sp.t, v));
            }
        }
        return;
    }
    let mut b = RateBatch {
        to_start: [0.0; BATCH],
        to_end: [0.0; BATCH],
        sampled: [0.0; BATCH],
        intervals: [0.0; BATCH],
        delta: [0.0; BATCH],
        first: [0.0; BATCH],
        t: [0; BATCH],
        len: 0,
    };
    let mut k = 0;
    for sp in spans {
        let n = sp.b - sp.a;
        if n < 2 {
            continue;
        }
        let (first, last) = (pts[sp.a], pts[sp.b - 1]);
        let mut delta = last.v - first.v;
        if COUNTER {
            // The pair (r - 1, r) lies in the window when a < r < b.
            while k < resets.len() && resets[k] <= sp.a {
                k += 1;
            }
            if k < resets.len() && resets[k] < sp.b {
                for v in fr::before_decreases(&pts[sp.a..sp.b]) {
                    delta += v;
                }
            }
        }
        let i = b.len;
        b.to_start[i] = (first.t - sp.range_start) as f64;
        b.to_end[i] = (sp.range_end - last.t) as f64;
        b.sampled[i] = (last.t - first.t) as f64;
        b.intervals[i] = (n - 1) as f64;
        b.delta[i] = delta;
        b.first[i] = first.v;
        b.t[i] = sp.t;
        b.len += 1;
        if b.len == BATCH {
            flush_rates::<COUNTER, RATE>(&mut b, range_seconds, out);
        }
    }
    flush_rates::<COUNTER, RATE>(&mut b, range_seconds, out);
}

/// Prometheus's `extrapolatedRate` on a batch, operation for operation as
/// [`super::functions::range::extrapolated_rate_known`] (same roundings),
/// without branches so the loop vectorises.
fn flush_rates<const COUNTER: bool, const RATE: bool>(
    b: &mut RateBatch,
    range_seconds: f64,
    out: &mut Vec<Point>,
) {
    let len = b.len;
    let mut res = [0.0f64; BATCH];
    // reason: seven arrays indexed in step; this form vectorises
    #[allow(clippy::needless_range_loop)]
    for i in 0..len {
        let sampled = b.sampled[i] / 1000.0;
        let average = sampled / b.intervals[i];
        let threshold = average * 1.1;
        let half = average / 2.0;
        let to_start = b.to_start[i] / 1000.0;
        let mut to_start = if to_start >= threshold {
            half
        } else {
            to_start
        };
        if COUNTER {
            let (delta, first) = (b.delta[i], b.first[i]);
            let zero = sampled * (first / delta);
            let to_zero = if delta > 0.0 && first >= 0.0 {
                zero
            } else {
                to_start
            };
            to_start = if to_zero < to_start {
                to_zero
            } else {
                to_start
            };
        }
        let to_end = b.to_end[i] / 1000.0;
        let to_end = if to_end >= threshold { half } else { to_end };
        let extended = (sampled + to_start + to_end) / sampled;
        let mut factor = if sampled != 0.0 { extended } else { 1.0 };
        if RATE {
            factor /= range_seconds;
        }
        res[i] = b.delta[i] * factor;
    }
    out.extend((0..len).map(|i| Point::new(b.t[i], res[i])));
    b.len = 0;
}

/// 1.5 × 2^52: adding and subtracting it rounds any |v| < 2^51 to an
/// integer.
const ROUND: f64 = 6_755_399_441_055_744.0;
/// Integers below this magnitude (2^51) are handled exactly; the page
/// summaries' integer sums ([`RunSummary::int_sum`]) take the same ones.
const INT_LIMIT: f64 = engine::summary::INT_LIMIT;
/// Largest magnitude of every partial sum at which a float sum of
/// integers is still exact.
const EXACT_SUM: i128 = 1 << 53;

/// The value as an integer when it is one of magnitude below 2^51 (never
/// for NaN or ±Inf).
#[inline]
fn as_int(v: f64) -> Option<i64> {
    (v.abs() < INT_LIMIT && (v + ROUND) - ROUND == v).then_some(v as i64)
}

/// `sum_over_time` / `avg_over_time`.
fn sums(pts: &[Point], spans: &[Span], avg: bool, out: &mut Vec<Point>) {
    // The window [lo, hi): exact sum and absolute sum of its integer
    // values, and how many values are not such integers.
    let (mut lo, mut hi) = (0usize, 0usize);
    let (mut sum, mut abs, mut bad) = (0i128, 0i128, 0usize);
    // Windows summed in order, [`LANES`] at a time: (index in `out`, span).
    let mut pending: Vec<(usize, Span)> = Vec::new();
    // Whether every value is finite, once a window needs the Kahan loop.
    let mut finite = None;
    for sp in spans {
        if sp.b - hi >= 2 * SUM_CHUNK {
            // A long way to go (an instant query's window): whole chunks.
            let end = hi + (sp.b - hi) / SUM_CHUNK * SUM_CHUNK;
            for c in pts[hi..end].chunks_exact(SUM_CHUNK) {
                match chunk_sums(c) {
                    Some((s, a)) => {
                        sum += s;
                        abs += a;
                    }
                    None => {
                        for p in c {
                            match as_int(p.v) {
                                Some(x) => {
                                    sum += x as i128;
                                    abs += (x as i128).abs();
                                }
                                None => bad += 1,
                            }
                        }
                    }
                }
            }
            hi = end;
        }
        while hi < sp.b {
            match as_int(pts[hi].v) {
                Some(x) => {
                    sum += x as i128;
                    abs += (x as i128).abs();
                }
                None => bad += 1,
            }
            hi += 1;
        }
        while lo < sp.a {
            match as_int(pts[lo].v) {
                Some(x) => {
                    sum -= x as i128;
                    abs -= (x as i128).abs();
                }
                None => bad -= 1,
            }
            lo += 1;
        }
        if bad == 0 && abs <= EXACT_SUM {
            // What the Kahan loops give when no partial sum rounds: the
            // compensation stays +0 and is added at the end.
            let s = sum as f64;
            let v = if avg {
                let count = (sp.b - sp.a) as f64;
                s / count + 0.0 / count
            } else {
                s + 0.0
            };
            out.push(Point::new(sp.t, v));
        } else {
            // A placeholder, filled in when its batch is summed.
            pending.push((out.len(), *sp));
            out.push(Point::new(sp.t, f64::NAN));
            if pending.len() == LANES {
                kahan_batch(pts, &pending, avg, &mut finite, out);
                pending.clear();
            }
        }
    }
    kahan_batch(pts, &pending, avg, &mut finite, out);
}

/// Values [`chunk_sums`] adds at once.
const SUM_CHUNK: usize = 16;

/// Below this magnitude, sums of [`SUM_CHUNK`] integers stay below 2^53:
/// every partial float sum is exact.
const CHUNK_INT_LIMIT: f64 = (1u64 << 49) as f64;

/// The exact sum and absolute sum of a chunk whose values are all
/// integers below [`CHUNK_INT_LIMIT`] in magnitude (else `None`), in
/// float operations without branches, which vectorise. Four partial sums
/// side by side, not one chain: every partial sum of such integers is
/// exact, so the order of the additions cannot change the result, and
/// independent chains do not wait on each other's additions.
#[inline]
fn chunk_sums(c: &[Point]) -> Option<(i128, i128)> {
    const L: usize = 4;
    const _: () = assert!(SUM_CHUNK.is_multiple_of(L));
    let mut ok = true;
    let (mut sum, mut abs) = ([0.0f64; L], [0.0f64; L]);
    for q in c.chunks_exact(L) {
        for l in 0..L {
            let v = q[l].v;
            ok &= v.abs() < CHUNK_INT_LIMIT && (v + ROUND) - ROUND == v;
            sum[l] += v;
            abs[l] += v.abs();
        }
    }
    // The exactness argument above counts on at most this many values.
    debug_assert_eq!(c.len(), SUM_CHUNK);
    // Below 2^53 in magnitude when `ok`: `as i64` converts in hardware,
    // where a float-to-`i128` conversion is a library call.
    let total = |x: [f64; L]| ((x[0] + x[1]) + (x[2] + x[3])) as i64 as i128;
    ok.then(|| (total(sum), total(abs)))
}

/// Windows summed side by side by [`kahan_lanes`].
const LANES: usize = 4;

/// Fills in the values of up to [`LANES`] windows (`(index in out,
/// span)`), each summed in order as Prometheus does. `finite`: whether
/// every value of `pts` is finite, if known (found out here if not).
fn kahan_batch(
    pts: &[Point],
    batch: &[(usize, Span)],
    avg: bool,
    finite: &mut Option<bool>,
    out: &mut [Point],
) {
    let Some(&(_, last)) = batch.last() else {
        return;
    };
    let all_finite = *finite.get_or_insert_with(|| all_finite(pts));
    let sums = if batch.len() == 1 {
        // One window (an instant query's): one chain, not four copies.
        let wins = [(last.a, last.b)];
        let [v] = if avg {
            kahan_lanes::<true, 1>(pts, &wins, all_finite)
        } else {
            kahan_lanes::<false, 1>(pts, &wins, all_finite)
        };
        [v; LANES]
    } else {
        // Unused lanes repeat the last window.
        let mut wins = [(last.a, last.b); LANES];
        for (w, (_, sp)) in wins.iter_mut().zip(batch) {
            *w = (sp.a, sp.b);
        }
        if avg {
            kahan_lanes::<true, LANES>(pts, &wins, all_finite)
        } else {
            kahan_lanes::<false, LANES>(pts, &wins, all_finite)
        }
    };
    for (&(i, sp), v) in batch.iter().zip(sums) {
        let v = v.or_else(|| {
            // An overflowing average: Prometheus's incremental mean.
            fr::avg_over_time(&Window::new(&pts[sp.a..sp.b], sp.range_start, sp.range_end))
        });
        out[i].v = v.unwrap_or(f64::NAN);
    }
}

/// Kahan sums of `N` non-empty windows `pts[a..b]` at once: each
/// window's additions happen in its own order, exactly as in
/// [`super::functions::range::sum_over_time`] (from 0) and
/// [`super::functions::range::avg_over_time`] (from the first value,
/// `None` where the sum overflows and Prometheus switches to an
/// incremental mean); the lanes only interleave independent chains.
///
/// Over finite values, each lane [`two_sum_step`]s first and, where that
/// was not exact everywhere (see [`engine::summary::kahan_extend`]: an
/// overflow, or a tie at the largest magnitudes), again as Prometheus
/// adds ([`kahan_step`]); windows with a NaN or an infinity, which the
/// first pass would always fail on, go the second way at once.
/// `all_finite`: every value of `pts` is known to be finite.
fn kahan_lanes<const AVG: bool, const N: usize>(
    pts: &[Point],
    wins: &[(usize, usize); N],
    all_finite: bool,
) -> [Option<f64>; N] {
    let mut start = [0.0f64; N];
    let lanes: [&[Point]; N] = std::array::from_fn(|l| {
        let (a, b) = wins[l];
        if AVG {
            start[l] = pts[a].v;
            &pts[a + 1..b]
        } else {
            &pts[a..b]
        }
    });
    let (mut sum, mut c, mut overflow) = (start, [0.0f64; N], [false; N]);
    let windows_finite = || {
        let lo = wins.iter().map(|w| w.0).min().unwrap_or(0);
        let hi = wins.iter().map(|w| w.1).max().unwrap_or(0);
        self::all_finite(&pts[lo..hi])
    };
    if all_finite || windows_finite() {
        interleave(&lanes, |l, v| two_sum_step(v, &mut sum[l], &mut c[l]));
        for l in 0..N {
            if !two_sum_exact(sum[l], c[l]) {
                (sum[l], c[l]) = (start[l], 0.0);
                for p in lanes[l] {
                    kahan_step(p.v, &mut sum[l], &mut c[l], &mut overflow[l]);
                }
            }
        }
    } else {
        interleave(&lanes, |l, v| {
            kahan_step(v, &mut sum[l], &mut c[l], &mut overflow[l]);
        });
    }
    std::array::from_fn(|l| {
        if AVG {
            let count = (wins[l].1 - wins[l].0) as f64;
            (!overflow[l]).then(|| sum[l] / count + c[l] / count)
        } else if sum[l].is_infinite() {
            Some(sum[l])
        } else {
            Some(sum[l] + c[l])
        }
    })
}

/// Is every value finite? (Without stopping early, which vectorises.)
fn all_finite(pts: &[Point]) -> bool {
    pts.iter().fold(true, |ok, p| ok & p.v.is_finite())
}

/// `step(lane, value)` on the values of each lane in order, the lanes'
/// turns interleaved (so that their chains of dependent additions
/// overlap).
#[inline(always)]
fn interleave<const N: usize>(lanes: &[&[Point]; N], mut step: impl FnMut(usize, f64)) {
    let common = lanes.iter().map(|s| s.len()).min().unwrap_or(0);
    // Slices of one length: no bounds check in the loop (which takes
    // about a third of its time).
    let heads: [&[Point]; N] = std::array::from_fn(|l| &lanes[l][..common]);
    #[allow(clippy::needless_range_loop)] // a column of the lanes at a time
    for j in 0..common {
        for l in 0..N {
            step(l, heads[l][j].v);
        }
    }
    for (l, lane) in lanes.iter().enumerate() {
        for p in &lane[common..] {
            step(l, p.v);
        }
    }
}

/// One window's value, fed its samples a slice at a time in time order
/// (stale markers are skipped here), for kernels that need no more than
/// one pass: `count`, `present`, `first`, `last`, `min`, `max`, `sum` and
/// `avg` over time, `rate`, `increase`, `delta`, `irate` and `idelta`, and
/// `deriv` and `predict_linear` as Prometheus computes them
/// ([`LineFit`]). The result is bit for bit what [`Kernel::run`] gives on
/// the whole window (Prometheus's own for the line, which the kernel's
/// exact sums match within 1e-7), except that a sum taking runs' float
/// sums ([`RunSummary::float_sum`]) may round differently, within the
/// compensated sum's error bound. An instant query folds its series'
/// stored samples with it where they lie, without gathering them first.
///
/// Sums add the values as exact integers (below 2^51, absolute sum at most
/// 2^53) while they are ones. At the first value that is not, the running
/// sum is exactly what Prometheus's Kahan loop holds at that point (no
/// addition so far rounded, so its compensation is still zero), and the
/// Kahan loop goes on from there.
pub(crate) struct WindowFold {
    kernel: Kernel,
    /// Values folded.
    n: usize,
    first: Point,
    last: Point,
    /// The sample before `last` (`irate`/`idelta`).
    prev: Point,
    /// `min`/`max`: the value chosen so far.
    best: f64,
    /// Sums: still exact integers.
    exact: bool,
    isum: i128,
    iabs: i128,
    /// Sums past the exact phase: Kahan's sum and compensation, and
    /// whether the sum overflowed.
    sum: f64,
    c: f64,
    overflow: bool,
    /// `deriv`/`predict_linear`: the fit, and `predict_linear`'s horizon
    /// in seconds.
    line: LineFit,
    horizon: f64,
    /// Rates: the window's edges `(start, end]`, and of each sample below
    /// its predecessor (counters only), the predecessor's value, in order.
    edges: (i64, i64),
    corrections: Vec<f64>,
}

impl WindowFold {
    /// A fold for `kernel`, if it is one that folds knowing nothing of its
    /// window (the `*_over_time` kernels but the timestamps', `irate` and
    /// `idelta`: rates and lines need [`WindowFold::for_window`]).
    pub fn new(kernel: Kernel) -> Option<WindowFold> {
        use Kernel as K;
        matches!(
            kernel,
            K::Count
                | K::Present
                | K::First
                | K::Last
                | K::Min
                | K::Max
                | K::Sum
                | K::Avg
                | K::Instant { .. }
        )
        .then(|| WindowFold::empty(kernel))
    }

    /// A fold for `kernel`, if it is one that folds, of the window `sp`
    /// (its samples are what the fold is fed; a rate extrapolates to its
    /// edges), with `param` the scalar argument (`predict_linear`'s
    /// horizon in seconds from the step's time `sp.t`).
    pub fn for_window(kernel: Kernel, sp: &Span, param: f64) -> Option<WindowFold> {
        match kernel {
            Kernel::Deriv => Some(WindowFold::empty(kernel)),
            Kernel::PredictLinear => Some(WindowFold {
                line: LineFit::new(Some(sp.t)),
                horizon: param,
                ..WindowFold::empty(kernel)
            }),
            Kernel::Rate { .. } => Some(WindowFold {
                edges: (sp.range_start, sp.range_end),
                ..WindowFold::empty(kernel)
            }),
            _ => WindowFold::new(kernel),
        }
    }

    fn empty(kernel: Kernel) -> WindowFold {
        WindowFold {
            kernel,
            n: 0,
            first: Point::new(0, 0.0),
            last: Point::new(0, 0.0),
            prev: Point::new(0, 0.0),
            best: 0.0,
            exact: true,
            isum: 0,
            iabs: 0,
            sum: 0.0,
            c: 0.0,
            overflow: false,
            // `deriv`'s x is from the window's first sample.
            line: LineFit::new(None),
            horizon: 0.0,
            edges: (0, 0),
            corrections: Vec::new(),
        }
    }

    /// Whether the kernel needs every value: no summary answers for them.
    fn needs_every_value(&self) -> bool {
        matches!(self.kernel, Kernel::Deriv | Kernel::PredictLinear)
    }

    /// Folds the next samples, summarised by `summary` (a whole run of a
    /// decoded page, or a chunk of one): where the summary answers for
    /// them, in O(1). `deriv`/`predict_linear` take every value, and a
    /// counter's rate those of a run with a reset (`summary.decreases`).
    pub fn add_summarized(&mut self, pts: &[Point], summary: &RunSummary) {
        let Some(first) = pts.first() else {
            return;
        };
        if summary.stale || self.needs_every_value() {
            return self.add(pts);
        }
        match self.kernel {
            Kernel::Min | Kernel::Max => {
                let Some((min, max)) = summary.extremes else {
                    return self.add(pts);
                };
                let v = if self.kernel == Kernel::Max { max } else { min };
                // The run's choice among its values, then as one more value
                // after the ones before (a NaN chosen so far gives way).
                let better = if self.kernel == Kernel::Max {
                    v > self.best
                } else {
                    v < self.best
                };
                if self.n == 0 || better || self.best.is_nan() {
                    self.best = v;
                }
            }
            Kernel::Sum | Kernel::Avg => match (summary.int_sum, summary.float_sum) {
                (Some((s, a)), _) if self.exact && self.iabs + a <= EXACT_SUM => {
                    self.isum += s;
                    self.iabs += a;
                }
                (_, Some(f)) if self.takes_float_sum(&f) => self.add_float_sum(&f),
                _ => return self.add(pts),
            },
            // A run without a reset needs its ends alone.
            Kernel::Rate { counter: true, .. } if summary.decreases => return self.add(pts),
            Kernel::Rate { counter: true, .. } => self.correct_joint(first.v),
            _ => {}
        }
        self.take_ends(pts);
    }

    /// Whether a run's float sum `f` may stand for its values: neither
    /// this sum nor any of its partial sums with the run's values can
    /// overflow, so the window's average stays a sum over its count.
    fn takes_float_sum(&self, f: &FloatSum) -> bool {
        let so_far = if self.exact {
            self.iabs as f64
        } else {
            self.sum.abs()
        };
        !self.overflow && so_far + f.abs < FLOAT_SUM_LIMIT
    }

    /// Adds a run's compensated sum as one value and its compensation to
    /// the window's: the result differs from adding the run's values one
    /// by one only by rounding, within the compensated sum's error bound
    /// (about a unit in the last place of the sum, plus nε² times the sum
    /// of magnitudes).
    fn add_float_sum(&mut self, f: &FloatSum) {
        if self.exact {
            // An average's first value added to zero is that value, so
            // going on from an empty window's zero is starting from it.
            self.leave_exact();
        }
        kahan_step(f.sum, &mut self.sum, &mut self.c, &mut self.overflow);
        self.c += f.c;
    }

    /// Folds the next samples (later than every sample folded so far).
    pub fn add(&mut self, pts: &[Point]) {
        // A piece at a time, so that the check for stale markers brings
        // it into the cache for the fold.
        for piece in pts.chunks(FOLD_PIECE) {
            if any_stale(piece) {
                for run in piece.split(|p| engine::is_stale_nan(p.v)) {
                    self.add_run(run);
                }
            } else {
                self.add_run(piece);
            }
        }
    }

    fn add_run(&mut self, pts: &[Point]) {
        let Some(first) = pts.first() else {
            return;
        };
        match self.kernel {
            Kernel::Min | Kernel::Max => {
                let max = self.kernel == Kernel::Max;
                let mut rest = pts;
                if self.n == 0 {
                    self.best = first.v;
                    rest = &pts[1..];
                }
                // As `min_over_time`/`max_over_time` choose, NaNs included.
                for p in rest {
                    let better = if max {
                        p.v > self.best
                    } else {
                        p.v < self.best
                    };
                    if better || self.best.is_nan() {
                        self.best = p.v;
                    }
                }
            }
            Kernel::Sum | Kernel::Avg => self.sum_run(pts),
            Kernel::Deriv | Kernel::PredictLinear => self.line.extend(pts),
            Kernel::Rate { counter: true, .. } => {
                self.correct_joint(first.v);
                if fr::has_decrease(pts) {
                    self.corrections.extend(fr::before_decreases(pts));
                }
            }
            _ => {}
        }
        self.take_ends(pts);
    }

    /// Sums a run of values; `self.n` still counts the values before it.
    fn sum_run(&mut self, pts: &[Point]) {
        let mut done = 0;
        while done < pts.len() {
            let rest = &pts[done..];
            if !self.exact {
                // Past the exact phase for good: the Kahan loop alone, its
                // state in registers (a day of `node_load1` is 5,760 values).
                let (mut sum, mut c, mut overflow) = (self.sum, self.c, self.overflow);
                kahan_extend(rest, |p| p.v, &mut sum, &mut c, &mut overflow);
                (self.sum, self.c, self.overflow) = (sum, c, overflow);
                return;
            }
            // Exact chunks at once; a chunk that is not (a fraction, a
            // large value) value by value, then chunks again while exact.
            let take = if rest.len() >= SUM_CHUNK {
                match chunk_sums(&rest[..SUM_CHUNK]) {
                    Some((s, a)) if self.iabs + a <= EXACT_SUM => {
                        self.isum += s;
                        self.iabs += a;
                        done += SUM_CHUNK;
                        continue;
                    }
                    _ => SUM_CHUNK,
                }
            } else {
                rest.len()
            };
            for (k, p) in rest[..take].iter().enumerate() {
                self.sum_one(p.v, self.n + done + k == 0);
            }
            done += take;
        }
    }

    /// Sums one value; `first`: the window's first.
    #[inline]
    fn sum_one(&mut self, v: f64, first: bool) {
        if self.exact {
            if let Some(x) = as_int(v)
                && self.iabs + i128::from(x).abs() <= EXACT_SUM
            {
                self.isum += i128::from(x);
                self.iabs += i128::from(x).abs();
                return;
            }
            self.leave_exact();
            if self.kernel == Kernel::Avg && first {
                // An average's loop starts from its first value.
                self.sum = v;
                return;
            }
        }
        kahan_step(v, &mut self.sum, &mut self.c, &mut self.overflow);
    }

    /// Ends the exact phase: the Kahan loop goes on from the exact sum.
    fn leave_exact(&mut self) {
        self.exact = false;
        self.sum = self.isum as f64;
        self.c = 0.0;
    }

    /// Notes the ends of the next slice (not empty).
    fn take_ends(&mut self, pts: &[Point]) {
        if self.n == 0 {
            self.first = pts[0];
        }
        self.prev = match pts {
            [.., prev, _] => *prev,
            _ => self.last,
        };
        self.last = pts[pts.len() - 1];
        self.n += pts.len();
    }

    /// A counter's correction for the pair across the joint of the
    /// samples folded so far and the next slice, starting at `next`.
    fn correct_joint(&mut self, next: f64) {
        if self.n > 0 && next < self.last.v {
            self.corrections.push(self.last.v);
        }
    }

    /// `rate`/`increase`/`delta` as [`fr::extrapolated_rate_known`]
    /// computes it: the corrections added in order after the change.
    fn rate(&self, counter: bool, per_second: bool) -> Option<f64> {
        let mut result = self.last.v - self.first.v;
        for &c in &self.corrections {
            result += c;
        }
        let ends = fr::WindowEnds {
            first: self.first,
            last: self.last,
            len: self.n,
            start_ms: self.edges.0,
            end_ms: self.edges.1,
        };
        fr::extrapolate_ends(&ends, result, counter, per_second, None)
    }

    /// The window's value: `Some(None)` where the function gives none (an
    /// empty window, or one sample for the kernels that need two), `None`
    /// where the whole window is needed (an average whose sum overflowed,
    /// which Prometheus then computes as an incremental mean).
    pub fn value(&self) -> Option<Option<f64>> {
        use Kernel as K;
        let needs_two = matches!(
            self.kernel,
            K::Rate { .. } | K::Instant { .. } | K::Deriv | K::PredictLinear
        );
        if self.n == 0 || self.n < 2 && needs_two {
            return Some(None);
        }
        let count = self.n as f64;
        Some(Some(match self.kernel {
            Kernel::Count => count,
            Kernel::Present => 1.0,
            Kernel::First => self.first.v,
            Kernel::Last => self.last.v,
            Kernel::Min | Kernel::Max => self.best,
            Kernel::Sum if self.exact => self.isum as f64 + 0.0,
            Kernel::Avg if self.exact => self.isum as f64 / count + 0.0 / count,
            Kernel::Sum if self.sum.is_infinite() => self.sum,
            Kernel::Sum => self.sum + self.c,
            Kernel::Avg if self.overflow => return None,
            Kernel::Avg => self.sum / count + self.c / count,
            Kernel::Rate {
                counter,
                per_second,
            } => return Some(self.rate(counter, per_second)),
            Kernel::Instant { per_second } => {
                return Some(fr::instant_value(&[self.prev, self.last], per_second));
            }
            Kernel::Deriv => self.line.result().0,
            Kernel::PredictLinear => {
                let (slope, intercept) = self.line.result();
                slope * self.horizon + intercept
            }
            _ => return None,
        }))
    }
}

/// Samples [`WindowFold::add`] checks and folds at a time (16 KiB).
const FOLD_PIECE: usize = 1024;

/// Whether any of `pts` is a stale marker: a check without early exit
/// over 64 values at a time, which vectorises.
pub(crate) fn any_stale(pts: &[Point]) -> bool {
    pts.chunks(64)
        .any(|c| c.iter().fold(false, |a, p| a | engine::is_stale_nan(p.v)))
}

/// `max_over_time` (`max`) / `min_over_time`.
fn extremes(pts: &[Point], spans: &[Span], max: bool, out: &mut Vec<Point>) {
    if pts.iter().any(|p| p.v.is_nan()) {
        for sp in spans {
            let w = Window::new(&pts[sp.a..sp.b], sp.range_start, sp.range_end);
            let v = if max {
                fr::max_over_time(&w)
            } else {
                fr::min_over_time(&w)
            };
            if let Some(v) = v {
                out.push(Point::new(sp.t, v));
            }
        }
        return;
    }
    // Candidates in index order, values strictly decreasing (max): a new
    // value drops the smaller ones before it; equal earlier ones stay in
    // front, as the in-order scan keeps the first of equal values.
    let beaten = |old: f64, new: f64| if max { old < new } else { old > new };
    let mut dq: VecDeque<usize> = VecDeque::new();
    let mut hi = 0usize;
    for sp in spans {
        while hi < sp.b {
            let v = pts[hi].v;
            while dq.back().is_some_and(|&j| beaten(pts[j].v, v)) {
                dq.pop_back();
            }
            dq.push_back(hi);
            hi += 1;
        }
        while dq.front().is_some_and(|&j| j < sp.a) {
            dq.pop_front();
        }
        // The window's last sample is always a candidate.
        if let Some(&j) = dq.front() {
            out.push(Point::new(sp.t, pts[j].v));
        }
    }
}

/// Exact running sums of a window for the least-squares line; `x` is the
/// sample time in ms from the series' first sample.
#[derive(Default)]
struct Regression {
    x: i128,
    xx: i128,
    y: i128,
    xy: i128,
    /// Values in the window that are not integers below 2^51.
    bad: usize,
}

impl Regression {
    #[inline]
    fn add(&mut self, x: i64, v: f64, sign: i128) {
        match as_int(v) {
            Some(y) => {
                let (x, y) = (x as i128, y as i128);
                self.x += sign * x;
                self.xx += sign * x * x;
                self.y += sign * y;
                self.xy += sign * x * y;
            }
            None if sign > 0 => self.bad += 1,
            None => self.bad -= 1,
        }
    }

    /// The exact fit of `n` samples: `deriv`'s slope per second (`h`
    /// `None`), or `predict_linear`'s value `h` seconds after the
    /// evaluation time (`h` `Some`). `x0`: where Prometheus's x starts
    /// (the window's first sample for `deriv`, the evaluation time for
    /// `predict_linear`), in ms from the origin.
    ///
    /// `None` when a product overflows, or when Prometheus's own rounding
    /// (its sums of `x·v` and `x` times the sum of `v` cancel in the
    /// covariance) could move its answer by more than [`FIT_TOLERANCE`]:
    /// the caller then computes the window as Prometheus does. So the
    /// result is within that of Prometheus's, or computed the same way.
    fn fit(&self, n: usize, x0: i64, h: Option<f64>) -> Option<f64> {
        let nn = n as i128;
        let num = nn
            .checked_mul(self.xy)?
            .checked_sub(self.x.checked_mul(self.y)?)?;
        let den = nn
            .checked_mul(self.xx)?
            .checked_sub(self.x.checked_mul(self.x)?)?;
        if den <= 0 {
            return None;
        }
        let slope = num as f64 / den as f64 * 1000.0;
        // Prometheus's sums (x in seconds from x0) and the error bound of
        // its covariance (8 units in the last place of each term).
        let d = x0 as i128;
        let sum_x = self.x.checked_sub(nn.checked_mul(d)?)? as f64 / 1e3;
        let sum_xy = self.xy.checked_sub(d.checked_mul(self.y)?)? as f64 / 1e3;
        let sum_y = self.y as f64;
        let nf = n as f64;
        let var_x = den as f64 / (nf * 1e6);
        let eps = 4.0 * f64::EPSILON;
        let slope_err = eps * (sum_xy.abs() + (sum_x * sum_y).abs() / nf) / var_x;
        match h {
            None => (slope_err <= FIT_TOLERANCE * slope.abs()).then_some(slope),
            Some(h) => {
                // x0 is the evaluation time: the mean x from it, in s.
                let mean_x = sum_x / nf;
                let intercept = sum_y / nf - slope * mean_x;
                let v = slope * h + intercept;
                let err = slope_err * (h - mean_x).abs() + eps * (sum_y / nf).abs();
                (err <= FIT_TOLERANCE * v.abs()).then_some(v)
            }
        }
    }
}

/// How far (relative) an exact fit may be from Prometheus's rounded one
/// by the error bound of its sums; a tenth of the test scripts' 1e-6
/// (the bound overestimates the error a few times).
const FIT_TOLERANCE: f64 = 1e-7;

/// `deriv` and `predict_linear` (`predict`, horizon `param(step)`).
fn regressions(
    pts: &[Point],
    spans: &[Span],
    predict: bool,
    param: &dyn Fn(usize) -> f64,
    out: &mut Vec<Point>,
) {
    let per_window = |sp: &Span| {
        let w = Window::new(&pts[sp.a..sp.b], sp.range_start, sp.range_end);
        if predict {
            smoothing::predict_linear(&w, sp.t, param(sp.step))
        } else {
            smoothing::deriv(&w)
        }
    };
    let (Some(first), Some(last)) = (pts.first(), pts.last()) else {
        return;
    };
    let origin = first.t;
    // Bounds that keep every running sum within i128 (products of the
    // final formula are checked).
    let exact = last.t - origin < 1 << 40 && pts.len() < 1 << 20;
    let mut r = Regression::default();
    let (mut lo, mut hi) = (0usize, 0usize);
    // Index of the latest sample (below `hi`) that differs from its
    // predecessor: a window starting at or after it is constant.
    let mut last_change = 0usize;
    for sp in spans {
        let n = sp.b - sp.a;
        if n < 2 {
            continue;
        }
        let v = if exact {
            while hi < sp.b {
                r.add(pts[hi].t - origin, pts[hi].v, 1);
                if hi > 0 && pts[hi].v != pts[hi - 1].v {
                    last_change = hi;
                }
                hi += 1;
            }
            while lo < sp.a {
                r.add(pts[lo].t - origin, pts[lo].v, -1);
                lo += 1;
            }
            if last_change <= sp.a && pts[sp.a].v.is_finite() {
                // Prometheus's constant case (any finite value, integer
                // or not): slope 0, the value itself.
                let y = pts[sp.a].v;
                Some(if predict {
                    0.0 * param(sp.step) + y
                } else {
                    0.0
                })
            } else if r.bad > 0 {
                per_window(sp)
            } else {
                let fit = if predict {
                    r.fit(n, sp.t - origin, Some(param(sp.step)))
                } else {
                    r.fit(n, pts[sp.a].t - origin, None)
                };
                fit.or_else(|| per_window(sp))
            }
        } else {
            per_window(sp)
        };
        if let Some(v) = v {
            out.push(Point::new(sp.t, v));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::functions::call::RangeFunction;
    use proptest::prelude::*;

    /// The windows of a grid over `pts`: `(t - range, t]` at each step.
    fn spans(pts: &[Point], start: i64, end: i64, step: i64, range: i64) -> Vec<Span> {
        let mut out = Vec::new();
        let mut t = start;
        let mut s = 0;
        while t <= end {
            let a = pts.partition_point(|p| p.t <= t - range);
            let b = pts.partition_point(|p| p.t <= t);
            if a < b {
                out.push(Span {
                    step: s,
                    t,
                    a,
                    b,
                    range_start: t - range,
                    range_end: t,
                });
            }
            t += step;
            s += 1;
        }
        out
    }

    /// The kernel's output and the per-window function's, for comparison.
    fn both(f: RangeFunction, pts: &[Point], spans: &[Span], h: f64) -> (Vec<Point>, Vec<Point>) {
        let k = Kernel::for_function(f, RangeMode::Normal).expect("kernel");
        let mut fast = Vec::new();
        k.run(pts, spans, &|_| h, &mut fast);
        let mut slow = Vec::new();
        for sp in spans {
            let w = Window::new(&pts[sp.a..sp.b], sp.range_start, sp.range_end);
            let v = f
                .eval(&w, RangeMode::Normal, sp.t, &[h], &mut Vec::new())
                .expect("evaluates");
            if let Some(v) = v {
                slow.push(Point::new(sp.t, v));
            }
        }
        (fast, slow)
    }

    /// Bit for bit, except that any NaN equals any NaN: which operand's
    /// NaN an addition of two NaNs returns is the compiler's choice.
    fn same_value(a: f64, b: f64) -> bool {
        a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
    }

    fn same_point(a: &Point, b: &Point) -> bool {
        a.t == b.t && same_value(a.v, b.v)
    }

    fn series(values: &[f64], jitter: &[i64]) -> Vec<Point> {
        values
            .iter()
            .enumerate()
            .map(|(i, &v)| Point::new(i as i64 * 15_000 + jitter[i % jitter.len()], v))
            .collect()
    }

    fn value() -> impl Strategy<Value = f64> {
        prop_oneof![
            (0i64..1000).prop_map(|i| i as f64),
            (-(1i64 << 40)..(1i64 << 40)).prop_map(|i| i as f64),
            (0i64..100_000).prop_map(|i| i as f64 / 100.0),
            Just(-0.0),
            Just(0.0),
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(1e300),
            Just(9.0e15),
            // Sums that overflow, and one that rounds to a tie at the
            // largest magnitudes (`3·2^970 - MAX`), where TwoSum alone
            // would not be exact.
            Just(f64::MAX),
            Just(-f64::MAX),
            Just(3.0 * 2f64.powi(970)),
        ]
    }

    /// The chunk path itself, which the kernel property test cannot tell
    /// from its per-value fallback: exact sums at the magnitude limit, and
    /// no answer for a fraction or a value at the limit.
    #[test]
    fn chunk_sums_are_exact_or_refused() {
        let chunk = |f: &dyn Fn(usize) -> f64| -> Vec<Point> {
            (0..SUM_CHUNK).map(|i| Point::new(i as i64, f(i))).collect()
        };
        let top = (1i64 << 49) - 1;
        let signs = |i: usize| if i.is_multiple_of(3) { -1 } else { 1 };
        let c = chunk(&|i| (signs(i) * (top - i as i64)) as f64);
        let want_sum: i128 = (0..SUM_CHUNK)
            .map(|i| i128::from(signs(i) * (top - i as i64)))
            .sum();
        let want_abs: i128 = (0..SUM_CHUNK).map(|i| i128::from(top - i as i64)).sum();
        assert_eq!(chunk_sums(&c), Some((want_sum, want_abs)));
        assert_eq!(chunk_sums(&chunk(&|_| 0.0)), Some((0, 0)));
        assert_eq!(
            chunk_sums(&chunk(&|i| if i == 7 { 0.5 } else { 1.0 })),
            None
        );
        assert_eq!(
            chunk_sums(&chunk(&|i| if i == 15 { CHUNK_INT_LIMIT } else { 1.0 })),
            None
        );
        assert_eq!(
            chunk_sums(&chunk(&|i| if i == 0 { f64::NAN } else { 1.0 })),
            None
        );
    }

    proptest! {
        /// Every kernel but the regressions gives the per-window
        /// functions' results bit for bit (NaNs aside).
        #[test]
        fn kernels_match_window_functions_bit_for_bit(
            values in prop_oneof![
                prop::collection::vec(value(), 1..120),
                // Runs of integers (summed a chunk at a time) and long
                // windows (an instant query's).
                prop::collection::vec(
                    prop_oneof![
                        8 => (-(1i64 << 40)..(1i64 << 40)).prop_map(|i| i as f64),
                        1 => value(),
                    ],
                    1..200,
                ),
            ],
            jitter in prop::collection::vec(-5i64..5, 1..4),
            range in prop_oneof![1i64..20, 40i64..200],
            step in prop_oneof![1i64..12, 200i64..400],
            start in -3i64..10,
        ) {
            let pts = series(&values, &jitter);
            let sp = spans(&pts, start * 15_000, 200 * 15_000, step * 7_500, range * 15_000);
            for f in [
                RangeFunction::Rate, RangeFunction::Increase, RangeFunction::Delta,
                RangeFunction::Irate, RangeFunction::Idelta, RangeFunction::CountOverTime,
                RangeFunction::PresentOverTime, RangeFunction::FirstOverTime,
                RangeFunction::LastOverTime, RangeFunction::TsOfFirstOverTime,
                RangeFunction::TsOfLastOverTime, RangeFunction::SumOverTime,
                RangeFunction::AvgOverTime, RangeFunction::MinOverTime,
                RangeFunction::MaxOverTime,
            ] {
                let (fast, slow) = both(f, &pts, &sp, 0.0);
                prop_assert!(
                    fast.len() == slow.len() && fast.iter().zip(&slow).all(|(a, b)| same_point(a, b)),
                    "{:?}: {:?} vs {:?}", f, fast, slow
                );
            }
        }

        /// A window folded a slice at a time, stale markers and all, some
        /// slices through their summaries, gives the kernel's value on the
        /// whole window without the markers wherever the slices are cut:
        /// bit for bit, except that a sum over non-integers taken partly
        /// from runs' float sums may differ by its rounding. `deriv` and
        /// `predict_linear` give Prometheus's value (the per-window
        /// function's) bit for bit.
        #[test]
        fn window_folds_match_the_kernels(
            values in prop_oneof![
                prop::collection::vec(value(), 0..120),
                prop::collection::vec(
                    prop_oneof![
                        8 => (-(1i64 << 40)..(1i64 << 40)).prop_map(|i| i as f64),
                        1 => (-(1i64 << 50)..(1i64 << 50)).prop_map(|i| i as f64),
                        1 => Just(f64::from_bits(engine::STALE_NAN)),
                        1 => value(),
                        2 => -1e6f64..1e6,
                        1 => prop_oneof![Just(1e16), Just(-1e16), Just(0.1)],
                    ],
                    0..300,
                ),
            ],
            cuts in prop::collection::vec(0usize..300, 0..6),
            summarized in prop::collection::vec(any::<bool>(), 7),
        ) {
            let pts = series(&values, &[0]);
            let kept: Vec<Point> =
                pts.iter().copied().filter(|p| !engine::is_stale_nan(p.v)).collect();
            let window = |pts: &[Point]| {
                (!pts.is_empty()).then_some(Span {
                    step: 0,
                    t: 300 * 15_000,
                    a: 0,
                    b: pts.len(),
                    range_start: -1,
                    range_end: 300 * 15_000,
                })
            };
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(pts.len())).collect();
            cuts.sort_unstable();
            for f in [
                RangeFunction::CountOverTime, RangeFunction::PresentOverTime,
                RangeFunction::FirstOverTime, RangeFunction::LastOverTime,
                RangeFunction::SumOverTime, RangeFunction::AvgOverTime,
                RangeFunction::MinOverTime, RangeFunction::MaxOverTime,
                RangeFunction::Deriv, RangeFunction::PredictLinear,
                RangeFunction::Rate, RangeFunction::Increase, RangeFunction::Delta,
                RangeFunction::Irate, RangeFunction::Idelta,
            ] {
                let k = Kernel::for_function(f, RangeMode::Normal).expect("kernel");
                let mut whole = Vec::new();
                let (t, horizon) = (300 * 15_000, 1234.5);
                if matches!(k, Kernel::Deriv | Kernel::PredictLinear) {
                    let w = Window::new(&kept, -1, t);
                    let v = if k == Kernel::Deriv {
                        smoothing::deriv(&w)
                    } else {
                        smoothing::predict_linear(&w, t, horizon)
                    };
                    whole.extend(v.map(|v| Point::new(t, v)));
                } else {
                    k.run(&kept, window(&kept).as_slice(), &|_| 0.0, &mut whole);
                }
                let edges = Span { step: 0, t, a: 0, b: 0, range_start: -1, range_end: t };
                let mut fold = WindowFold::for_window(k, &edges, horizon).expect("folds");
                let mut from = 0;
                for (&c, &whole) in cuts.iter().chain([&pts.len()]).zip(&summarized) {
                    let piece = &pts[from..c];
                    if whole && !piece.is_empty() {
                        fold.add_summarized(piece, &RunSummary::of(piece));
                    } else {
                        fold.add(piece);
                    }
                    from = c;
                }
                let Some(folded) = fold.value() else {
                    // Only an overflowing average asks for its whole window.
                    prop_assert_eq!(f, RangeFunction::AvgOverTime);
                    prop_assert!(kept.iter().any(|p| p.v.is_infinite() || p.v.abs() > 1e300));
                    continue;
                };
                let expected = whole.first().map(|p| p.v);
                // Twice the compensated sum's error bound (ε|sum| +
                // nε²Σ|v|, each with room), and the mean's divisions.
                let n = kept.len() as f64;
                let abs: f64 = kept.iter().map(|p| p.v.abs()).sum();
                let eps = f64::EPSILON;
                let tolerance = |want: f64| match f {
                    RangeFunction::AvgOverTime => 6.0 * eps * want.abs() + 4.0 * eps * eps * abs,
                    _ => 3.0 * eps * want.abs() + 4.0 * n * eps * eps * abs,
                };
                let sums = matches!(f, RangeFunction::SumOverTime | RangeFunction::AvgOverTime);
                let same = match (folded, expected) {
                    (Some(a), Some(b)) => {
                        same_value(a, b)
                            || sums && a.is_finite() && b.is_finite() && (a - b).abs() <= tolerance(b)
                    }
                    (a, b) => a.is_none() && b.is_none(),
                };
                prop_assert!(same, "{:?} over {:?} cut at {:?}: {:?} vs {:?}", f, values, cuts, folded, expected);
            }
        }

        /// The regressions agree with Prometheus's Kahan-summed ones within
        /// the fit tolerance.
        #[test]
        fn regressions_match_within_tolerance(
            values in prop::collection::vec(prop_oneof![
                (0i64..1000).prop_map(|i| i as f64),
                (0i64..(1i64 << 36)).prop_map(|i| i as f64),
                Just(5.0),
                (0i64..1000).prop_map(|i| i as f64 / 10.0),
            ], 1..120),
            jitter in prop::collection::vec(-5i64..5, 1..4),
            range in 1i64..40,
            step in 1i64..12,
            h in -4000.0f64..4000.0,
        ) {
            let pts = series(&values, &jitter);
            let sp = spans(&pts, 0, 130 * 15_000, step * 7_500, range * 15_000);
            for f in [RangeFunction::Deriv, RangeFunction::PredictLinear] {
                let (fast, slow) = both(f, &pts, &sp, h);
                prop_assert_eq!(fast.len(), slow.len());
                for (a, b) in fast.iter().zip(&slow) {
                    prop_assert_eq!(a.t, b.t);
                    let tol = 2.0 * FIT_TOLERANCE * a.v.abs().max(b.v.abs());
                    prop_assert!((a.v - b.v).abs() <= tol, "{:?}: {} vs {}", f, a.v, b.v);
                }
            }
        }
    }

    /// The kernels that need two samples give nothing for one, however
    /// many slices came before empty.
    #[test]
    fn folds_of_one_sample_give_nothing() {
        let edges = Span {
            step: 0,
            t: 60_000,
            a: 0,
            b: 0,
            range_start: 0,
            range_end: 60_000,
        };
        for f in [
            RangeFunction::Rate,
            RangeFunction::Increase,
            RangeFunction::Delta,
            RangeFunction::Irate,
            RangeFunction::Idelta,
            RangeFunction::Deriv,
            RangeFunction::PredictLinear,
        ] {
            let k = Kernel::for_function(f, RangeMode::Normal).expect("kernel");
            let mut fold = WindowFold::for_window(k, &edges, 60.0).expect("folds");
            fold.add(&[]);
            fold.add(&[Point::new(15_000, 5.0)]);
            assert_eq!(fold.value(), Some(None), "{f:?}");
            fold.add(&[Point::new(30_000, 7.0)]);
            assert!(fold.value().flatten().is_some(), "{f:?} of two samples");
        }
    }

    /// A whole run's float sum stands for its values. (The run handed
    /// over is not the one summarised, to tell which the fold used.)
    #[test]
    fn folded_sums_take_a_runs_float_sum() {
        let values = |v: f64| series(&[v; 100], &[0]);
        let summary = RunSummary::of(&values(0.5));
        for (k, want) in [(Kernel::Sum, 50.0), (Kernel::Avg, 0.5)] {
            let mut fold = WindowFold::new(k).expect("folds");
            fold.add(&series(&[1.0, 2.5], &[0]));
            fold.add_summarized(&values(0.25), &summary);
            let got = fold.value().flatten().expect("a value");
            let want = if k == Kernel::Sum {
                want + 3.5
            } else {
                (want * 100.0 + 3.5) / 102.0
            };
            assert_eq!(got, want, "{k:?}");
        }
    }

    /// A run's compensation is added with its sum: across runs that
    /// cancel, the window's sum is the one Prometheus's one-by-one
    /// compensated sum gives (a float sum alone would be 0 or 2 here).
    #[test]
    fn folded_float_sums_keep_their_compensation() {
        let pts = series(&[1e16, 1.0, -1e16], &[0]);
        for (k, want) in [(Kernel::Sum, 1.0), (Kernel::Avg, 1.0 / 3.0)] {
            let mut whole = Vec::new();
            let window = [Span {
                step: 0,
                t: 3 * 15_000,
                a: 0,
                b: 3,
                range_start: -1,
                range_end: 3 * 15_000,
            }];
            k.run(&pts, &window, &|_| 0.0, &mut whole);
            assert_eq!(whole[0].v, want, "{k:?}, one by one");
            let mut fold = WindowFold::new(k).expect("folds");
            for piece in [&pts[..2], &pts[2..]] {
                let summary = RunSummary::of(piece);
                assert!(summary.int_sum.is_none() && summary.float_sum.is_some());
                fold.add_summarized(piece, &summary);
            }
            assert_eq!(fold.value().flatten(), Some(want), "{k:?}, from run sums");
        }
    }

    /// A float sum is taken only while the fold's sum and the run's
    /// magnitudes stay below the limit, so that no partial sum either way
    /// can overflow; never once the sum has overflowed.
    #[test]
    fn folds_take_float_sums_only_below_the_limit() {
        let limit = engine::summary::FLOAT_SUM_LIMIT;
        let run = |abs: f64| FloatSum {
            sum: 1.0,
            c: 0.0,
            abs,
        };
        for k in [Kernel::Sum, Kernel::Avg] {
            let mut fold = WindowFold::new(k).expect("folds");
            // Still exact (the integers' magnitudes count, but are far
            // below the limit).
            fold.add(&series(&[3.0], &[0]));
            assert!(fold.takes_float_sum(&run(limit / 2.0)));
            assert!(!fold.takes_float_sum(&run(limit)));
            // Past the exact phase: the sum's magnitude counts.
            fold.add(&series(&[-limit / 2.0], &[0]));
            assert!(fold.takes_float_sum(&run(limit / 4.0)));
            assert!(!fold.takes_float_sum(&run(limit / 2.0)));
            let mut fold = WindowFold::new(k).expect("folds");
            fold.add(&series(&[f64::MAX, f64::MAX], &[0]));
            assert!(!fold.takes_float_sum(&run(1.0)), "{k:?} after an overflow");
        }
    }

    #[test]
    fn folded_extremes_keep_the_first_of_equal_zeros() {
        for (k, values) in [
            (Kernel::Max, [0.0, -0.0, -0.0]),
            (Kernel::Max, [-0.0, 0.0, 0.0]),
            (Kernel::Min, [0.0, -0.0, -0.0]),
            (Kernel::Min, [-0.0, 0.0, 0.0]),
        ] {
            let pts = series(&values, &[0]);
            let mut fold = WindowFold::new(k).expect("folds");
            fold.add(&pts[..1]);
            fold.add_summarized(&pts[1..], &RunSummary::of(&pts[1..]));
            let got = fold.value().flatten().expect("a value");
            assert_eq!(got.to_bits(), values[0].to_bits(), "{k:?} over {values:?}");
        }
    }

    #[test]
    fn constant_windows_are_exact() {
        // Integers, fractions, and a run of infinities (NaN, as in
        // Prometheus) between changing values.
        let mut values = vec![7.0; 50];
        values.extend([79_837_593.6; 40]);
        values.extend([f64::INFINITY; 30]);
        values.extend((0..20).map(|i| i as f64 * 0.5));
        let pts = series(&values, &[0, 3, -2]);
        let sp = spans(&pts, 0, 140 * 15_000, 15_000, 300_000);
        for f in [RangeFunction::Deriv, RangeFunction::PredictLinear] {
            let (fast, slow) = both(f, &pts, &sp, 3600.0);
            assert_eq!(fast.len(), slow.len(), "{f:?}");
            for (a, b) in fast.iter().zip(&slow) {
                assert!(same_point(a, b), "{f:?}: {a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn rate_sees_resets_only_inside_the_window() {
        // A reset between samples 3 and 4 (index 4 is below index 3).
        let pts = series(&[1.0, 5.0, 9.0, 12.0, 2.0, 6.0, 9.0, 15.0], &[0]);
        let sp = spans(&pts, 0, 8 * 15_000, 15_000, 45_000);
        let (fast, slow) = both(RangeFunction::Increase, &pts, &sp, 0.0);
        assert_eq!(fast, slow);
        assert!(!fast.is_empty());
    }
}
