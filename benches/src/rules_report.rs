//! The rules part of `docs/benchmarks.md`: per evaluation round, Silt's and Prometheus' sum
//! of group durations, CPU, slowest group and missed iterations, against the target (at most
//! half of Prometheus' time, within the interval); whether both did the same work; and
//! where the time goes per rule template.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::report::group_digits;
use crate::rules::{RulesRun, Window};
use crate::server::System;

/// Silt's target: at most this fraction of Prometheus' evaluation time per round.
pub const TARGET_RATIO: f64 = 0.5;

fn secs(x: f64) -> String {
    if x < 0.001 {
        format!("{:.3} ms", x * 1000.0)
    } else if x < 0.1 {
        format!("{:.1} ms", x * 1000.0)
    } else {
        format!("{x:.2} s")
    }
}

fn cell(w: Option<&Window>, f: impl Fn(&Window) -> Option<String>) -> String {
    w.and_then(f).unwrap_or_else(|| "–".into())
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    let r = a? / b?;
    r.is_finite().then_some(r)
}

/// The rules section: the latest run per (series, rules), largest first.
pub fn render(runs: &[RulesRun]) -> String {
    let mut latest: BTreeMap<(u64, u64), &RulesRun> = BTreeMap::new();
    for r in runs {
        let e = latest.entry((r.rules, r.series)).or_insert(r);
        if r.started_unix >= e.started_unix {
            *e = r;
        }
    }
    let mut o = String::new();
    if latest.is_empty() {
        return o;
    }
    let _ = writeln!(o, "## Rule evaluation\n");
    let _ = writeln!(
        o,
        "Silt and Prometheus evaluate the same generated rule file over the same live data \
         (`silt-bench rules`). Each system is measured alone while the other only ingests; \
         a round is one evaluation interval, figures are medians over the measured rounds \
         (min–max in brackets). Evaluation time = the sum of the wall durations of all group \
         iterations in the round (`*_rule_group_duration_seconds`; groups run concurrently, so \
         time a group waits for a core counts too); server CPU = user + system seconds of the \
         server process in the round (`/proc/<pid>/stat`). Target: Silt ≤ {TARGET_RATIO}× \
         Prometheus, and every group within its interval.\n"
    );
    for r in latest.values().rev() {
        render_run(&mut o, r);
    }
    o
}

fn render_run(o: &mut String, r: &RulesRun) {
    let silt = r.alone(System::Silt);
    let prom = r.alone(System::Prometheus);
    let _ = writeln!(
        o,
        "### {} rules ({} alerting) in {} groups, every {} s, over {} series ({} hosts) — run {}\n",
        group_digits(r.rules),
        group_digits(r.alerting_rules),
        r.groups,
        r.interval_secs,
        group_digits(r.series),
        r.hosts,
        crate::results::utc_timestamp(r.started_unix)
    );
    if let Some(e) = &r.error {
        let _ = writeln!(o, "**The run stopped early:** {}\n", e.replace('\n', " "));
    }
    let nproc = r.machine.as_ref().map_or(2, |m| m.nproc);
    let rounds = |w: Option<&Window>| w.map_or(0, |w| w.rounds.len());
    let _ = writeln!(
        o,
        "| per round (Silt {} rounds, Prometheus {}) | Silt | Prometheus | Silt / Prometheus | target | status |",
        rounds(silt),
        rounds(prom)
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|");
    let with_range = |w: &Window, med: Option<f64>, f: fn(&crate::rules_probe::Round) -> f64| {
        let m = med?;
        let (lo, hi) = w.range(f)?;
        Some(format!("{} ({}–{})", secs(m), secs(lo), secs(hi)))
    };
    let g = ratio(
        silt.and_then(Window::group_secs),
        prom.and_then(Window::group_secs),
    );
    let status = match g {
        None => "not measured".to_string(),
        Some(x) if x <= TARGET_RATIO => "**met**".into(),
        Some(x) => format!("missed: {:.2}× to go", x / TARGET_RATIO),
    };
    let fr = |x: Option<f64>| x.map_or("–".into(), |x| format!("{x:.2}×"));
    let _ = writeln!(
        o,
        "| evaluation time (sum of group durations) | {} | {} | {} | ≤ {TARGET_RATIO}× | {status} |",
        cell(silt, |w| with_range(w, w.group_secs(), |r| r.group_secs)),
        cell(prom, |w| with_range(w, w.group_secs(), |r| r.group_secs)),
        fr(g)
    );
    let _ = writeln!(
        o,
        "| server CPU | {} | {} | {} | – | – |",
        cell(silt, |w| with_range(w, w.cpu_secs(), |r| r.cpu_secs)),
        cell(prom, |w| with_range(w, w.cpu_secs(), |r| r.cpu_secs)),
        fr(ratio(
            silt.and_then(Window::cpu_secs),
            prom.and_then(Window::cpu_secs)
        ))
    );
    let _ = writeln!(
        o,
        "| slowest group | {} | {} | {} | < {} s | – |",
        cell(silt, |w| w.slowest_group_secs().map(secs)),
        cell(prom, |w| w.slowest_group_secs().map(secs)),
        fr(ratio(
            silt.and_then(Window::slowest_group_secs),
            prom.and_then(Window::slowest_group_secs)
        )),
        r.interval_secs
    );
    let _ = writeln!(
        o,
        "| mean rule evaluation | {} | {} | {} | – | – |",
        cell(silt, |w| w.mean_rule_secs().map(secs)),
        cell(prom, |w| w.mean_rule_secs().map(secs)),
        fr(ratio(
            silt.and_then(Window::mean_rule_secs),
            prom.and_then(Window::mean_rule_secs)
        ))
    );
    let fits = |w: &Window| {
        let cpu = w.cpu_secs()?;
        let ok = w.missed() == 0 && cpu < r.interval_secs * nproc as f64;
        Some(if ok {
            "yes".to_string()
        } else {
            format!("**no** ({} missed)", w.missed())
        })
    };
    let _ = writeln!(
        o,
        "| within the interval (no missed iteration, CPU < {} s × {nproc} cores) | {} | {} | – | yes | {} |",
        r.interval_secs,
        cell(silt, fits),
        cell(prom, fits),
        match silt.and_then(fits) {
            Some(s) if s == "yes" => "**met**",
            Some(_) => "missed",
            None => "not measured",
        }
    );
    let _ = writeln!(
        o,
        "| evaluation failures / unhealthy rules | {} | {} | – | 0 | – |",
        cell(silt, |w| Some(format!(
            "{} / {}",
            w.failures(),
            w.unhealthy_rules.unwrap_or(0)
        ))),
        cell(prom, |w| Some(format!(
            "{} / {}",
            w.failures(),
            w.unhealthy_rules.unwrap_or(0)
        )))
    );
    let mib = |w: &Window| {
        w.rss_bytes
            .map(|b| format!("{:.0} MiB", b as f64 / 1048576.0))
    };
    let _ = writeln!(
        o,
        "| RSS after the rounds | {} | {} | {} | – | – |",
        cell(silt, mib),
        cell(prom, mib),
        fr(ratio(
            silt.and_then(|w| w.rss_bytes).map(|b| b as f64),
            prom.and_then(|w| w.rss_bytes).map(|b| b as f64)
        ))
    );
    let _ = writeln!(
        o,
        "| other processes' CPU (noise) | {} | {} | – | – | – |",
        cell(silt, |w| w.other_cpu_secs().map(secs)),
        cell(prom, |w| w.other_cpu_secs().map(secs))
    );
    let _ = writeln!(o);

    // Both at once.
    let (ts, tp) = (r.together(System::Silt), r.together(System::Prometheus));
    if ts.is_some() || tp.is_some() {
        let one = |w: Option<&Window>| {
            w.map_or("–".into(), |w| {
                format!(
                    "evaluation {}, CPU {}, slowest group {}, {} missed",
                    w.group_secs().map_or("–".into(), secs),
                    w.cpu_secs().map_or("–".into(), secs),
                    w.slowest_group_secs().map_or("–".into(), secs),
                    w.missed()
                )
            })
        };
        let _ = writeln!(
            o,
            "Comparison phase: both evaluate every {}th group ({} rules in {} groups) at once on \
             the same cores, starting at the same moment ({} rounds): Silt {}; Prometheus {}.\n",
            (r.groups as f64 / r.check_groups.max(1) as f64).ceil() as u64,
            group_digits(r.check_rules),
            r.check_groups,
            ts.map_or(0, |w| w.rounds.len()),
            one(ts),
            one(tp)
        );
    }

    // Equal work.
    if let Some(c) = &r.recording_check {
        let _ = writeln!(
            o,
            "Same results, recording rules: {} rules sampled ({} with output in both), their series \
             over the last {} s compared point by point: {} / {} series (Silt / Prometheus), {} of {} \
             points differ, {} series only in Silt, {} only in Prometheus — {}.{}",
            c.rules_checked,
            c.rules_with_data,
            c.range_secs,
            c.series_silt,
            c.series_prometheus,
            c.points_differing,
            c.points_compared + c.points_differing,
            c.series_only_silt,
            c.series_only_prometheus,
            if c.ok() {
                "**identical**"
            } else {
                "**they differ**"
            },
            if c.examples.is_empty() && c.errors.is_empty() {
                String::new()
            } else {
                format!(
                    " Examples: {}",
                    c.errors
                        .iter()
                        .chain(&c.examples)
                        .take(3)
                        .map(|e| format!("`{}`", e.replace('`', "'").replace('|', "\\|")))
                        .collect::<Vec<_>>()
                        .join("; ")
                )
            }
        );
        let _ = writeln!(o);
    }
    if let Some(c) = &r.alerts_check {
        let _ = writeln!(
            o,
            "Same results, alerts (`/api/v1/alerts`): Silt {} firing + {} pending, Prometheus {} + {}; \
             {} identical (labels, state, value, annotations), {} only in Silt, {} only in \
             Prometheus, {} with another state, {} another value, {} other annotations.{}",
            c.silt_firing,
            c.silt_pending,
            c.prometheus_firing,
            c.prometheus_pending,
            c.same,
            c.only_silt,
            c.only_prometheus,
            c.state_differs,
            c.value_differs,
            c.annotations_differ,
            if c.examples.is_empty() {
                String::new()
            } else {
                format!(
                    " Examples: {}",
                    c.examples
                        .iter()
                        .take(3)
                        .map(|e| format!("`{}`", e.replace('`', "'").replace('|', "\\|")))
                        .collect::<Vec<_>>()
                        .join("; ")
                )
            }
        );
        let _ = writeln!(o);
    }
    for w in silt.iter().chain(prom.iter()) {
        if !w.rule_errors.is_empty() {
            let _ = writeln!(
                o,
                "{} rule errors: {}\n",
                w.system.map_or("?", System::title),
                w.rule_errors
                    .iter()
                    .map(|e| format!("`{}`", e.replace('`', "'").replace('|', "\\|")))
                    .collect::<Vec<_>>()
                    .join("; ")
            );
        }
    }

    // Where the time goes.
    let mut t: Vec<_> = r.templates.iter().collect();
    t.sort_by(|a, b| {
        let total = |x: &crate::rules::TemplateTiming| x.silt_ms.unwrap_or(0.0) * x.rules as f64;
        total(b).total_cmp(&total(a))
    });
    if !t.is_empty() {
        let silt_total: f64 = t
            .iter()
            .map(|x| x.silt_ms.unwrap_or(0.0) * x.rules as f64)
            .sum();
        let _ = writeln!(
            o,
            "Where the time goes: per rule template, the mean of each rule's last evaluation \
             (`/api/v1/rules`, alone phase), sorted by Silt's share of the round.\n"
        );
        let _ = writeln!(
            o,
            "| template | type | rules | Silt | Prometheus | Silt / Prometheus | Silt's share |"
        );
        let _ = writeln!(o, "|---|---|---|---|---|---|---|");
        for x in t.iter().take(15) {
            let share = x.silt_ms.unwrap_or(0.0) * x.rules as f64 / silt_total.max(1e-12);
            let _ = writeln!(
                o,
                "| `{}` | {} | {} | {} | {} | {} | {:.1} % |",
                x.template,
                if x.alert { "alert" } else { "record" },
                x.rules,
                x.silt_ms.map_or("–".into(), |m| format!("{m:.2} ms")),
                x.prometheus_ms.map_or("–".into(), |m| format!("{m:.2} ms")),
                fr(ratio(x.silt_ms, x.prometheus_ms)),
                share * 100.0
            );
        }
        if t.len() > 15 {
            let _ = writeln!(o, "\n({} more templates in the raw results.)", t.len() - 15);
        }
        let _ = writeln!(o);
    }

    // Setup.
    let kinds: Vec<String> = r
        .groups_per_kind
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    let _ = writeln!(
        o,
        "Setup: node_exporter-like hosts (~160 series each) with {} min of history, then live \
         data sent {} s ahead of the clock to both servers every interval (the series stay \
         active; every sample a rule reads is stored before it runs). Rule groups of {} rules \
         (26 recording: CPU, memory, network, disk, filesystem, `histogram_quantile`, \
         `avg_over_time`/`max_over_time`/`deriv` over 10 m, `topk` over recorded series, \
         `label_replace`; 17 alerting with `for` up to {} s, `predict_linear`, `absent`, `and`, \
         `group_left`, templated annotations), one group per scope: {}. Both servers read the \
         file from the same path (same group hashes, so the same evaluation timestamps). \
         Silt runs with `self_scrape` off; Prometheus with an empty scrape config. Silt is \
         measured first, then unloads its rules (SIGHUP) before Prometheus loads them.",
        r.history_secs / 60,
        r.lead_secs,
        crate::rules_gen::TEMPLATES.len(),
        r.max_for_secs,
        kinds.join(", ")
    );
    if let Some(m) = &r.machine {
        let _ = writeln!(
            o,
            "Machine: {} CPUs ({}), {}; {}.",
            m.nproc,
            m.cpu_model,
            m.versions
                .iter()
                .map(|(k, v)| format!("{k} `{v}`"))
                .collect::<Vec<_>>()
                .join(", "),
            if r.nice != 0 {
                format!("harness and servers at nice {}", r.nice)
            } else {
                "default priority".into()
            }
        );
    }
    let _ = writeln!(o);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::TemplateTiming;
    use crate::rules_probe::Round;

    fn window(s: System, group: f64, cpu: f64) -> Window {
        Window {
            system: Some(s),
            phase: "alone".into(),
            rounds: (0..3)
                .map(|i| Round {
                    group_secs: group + i as f64 * 0.1,
                    cpu_secs: cpu,
                    rule_secs: group,
                    rule_evals: 100,
                    ..Default::default()
                })
                .collect(),
            unhealthy_rules: Some(0),
            ..Default::default()
        }
    }

    #[test]
    fn renders_the_latest_run_against_the_target() {
        let old = RulesRun {
            series: 100,
            rules: 10,
            started_unix: 1,
            ..Default::default()
        };
        let new = RulesRun {
            series: 100,
            rules: 10,
            hosts: 1,
            groups: 1,
            interval_secs: 15.0,
            started_unix: 2,
            alone: vec![
                window(System::Silt, 1.0, 1.5),
                window(System::Prometheus, 4.0, 5.0),
            ],
            templates: vec![TemplateTiming {
                template: "up:count".into(),
                rules: 3,
                silt_ms: Some(1.0),
                prometheus_ms: Some(4.0),
                ..Default::default()
            }],
            ..Default::default()
        };
        let md = render(&[new, old]);
        assert!(md.contains("## Rule evaluation"));
        assert_eq!(md.matches("### ").count(), 1, "{md}");
        assert!(md.contains("run 1970-01-01 00:00 UTC"));
        // 1.1 s against 4.1 s: met.
        assert!(md.contains("| 0.27× | ≤ 0.5× | **met** |"), "{md}");
        assert!(md.contains("| `up:count` | record | 3 | 1.00 ms | 4.00 ms | 0.25× | 100.0 % |"));
        assert!(render(&[]).is_empty());
    }
}
