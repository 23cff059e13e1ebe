//! Generates the rule file of the rules benchmark: what a fleet's administrators write for
//! node_exporter data, scoped many ways.
//!
//! One set of [`TEMPLATES`] (recording rules for CPU, memory, network, disk, filesystem and
//! request-latency histograms; alerting rules with thresholds, `for`, `predict_linear`,
//! `absent`, set and vector-matching operators, templated annotations) is instantiated per
//! *scope*: the whole fleet, each region, each cluster, each team × environment, each
//! availability zone × role (a regex on `instance`), each environment × role, each team ×
//! cluster, and finally single hosts. Each scope becomes one group of all templates (a team's
//! rule group), every group with the same interval, until the requested number of rules is
//! reached. Scopes come from the workload's own label values, so every selector matches data.
//!
//! Recorded series never collide: record names carry the scope kind, aggregations keep the
//! scope's labels, and scopes defined by a regex add the dimension as a rule label. Alerts
//! carry a `scope` label for the same reason.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::workload::Workload;

/// One rule template. In `expr`, `$SEL` is the scope's selector (matchers without braces),
/// `$BY` its aggregation labels, `$RSEL` the selector of series recorded in the scope (its
/// aggregation labels and rule labels, exact), `$K` the scope kind (record name prefix).
#[derive(Debug, Clone, Copy)]
pub struct Template {
    /// Record name suffix (after the kind) or alert name.
    pub id: &'static str,
    pub expr: &'static str,
    /// `Some((for seconds, severity))` for alerting rules.
    pub alert: Option<(u64, &'static str)>,
    /// Alert summary annotation (a Go template).
    pub summary: &'static str,
}

const fn rec(id: &'static str, expr: &'static str) -> Template {
    Template {
        id,
        expr,
        alert: None,
        summary: "",
    }
}

const fn alert(
    id: &'static str,
    for_secs: u64,
    severity: &'static str,
    expr: &'static str,
    summary: &'static str,
) -> Template {
    Template {
        id,
        expr,
        alert: Some((for_secs, severity)),
        summary,
    }
}

/// The rules of one scope, in evaluation order (later rules read earlier ones' output).
pub const TEMPLATES: &[Template] = &[
    rec(
        "_instance:node_cpu_utilisation:rate5m",
        r#"1 - avg by ($BY, instance) (rate(node_cpu_seconds_total{$SEL,mode="idle"}[5m]))"#,
    ),
    rec(
        "_mode:node_cpu_seconds:rate5m",
        r#"sum by ($BY, mode) (rate(node_cpu_seconds_total{$SEL,mode!="idle"}[5m]))"#,
    ),
    rec(
        "_instance:node_memory_utilisation:ratio",
        r#"1 - node_memory_MemAvailable_bytes{$SEL} / node_memory_MemTotal_bytes{$SEL}"#,
    ),
    rec(
        "_instance:node_load1_per_cpu:ratio",
        r#"node_load1{$SEL} / on (instance) group_left count by (instance) (node_cpu_seconds_total{$SEL,mode="idle"})"#,
    ),
    rec(
        "_instance:node_network_receive_bytes_excluding_lo:rate5m",
        r#"sum by ($BY, instance) (rate(node_network_receive_bytes_total{$SEL,device!~"lo|veth.+|docker.+"}[5m]))"#,
    ),
    rec(
        "_instance:node_network_transmit_bytes_excluding_lo:rate5m",
        r#"sum by ($BY, instance) (rate(node_network_transmit_bytes_total{$SEL,device!~"lo|veth.+|docker.+"}[5m]))"#,
    ),
    rec(
        "_instance_device:node_disk_io_time_seconds:rate5m",
        r#"rate(node_disk_io_time_seconds_total{$SEL,device=~"nvme.+|sd.+"}[5m])"#,
    ),
    rec(
        "_instance_device:node_disk_bytes:irate5m",
        r#"irate(node_disk_read_bytes_total{$SEL}[5m]) + irate(node_disk_written_bytes_total{$SEL}[5m])"#,
    ),
    rec(
        "_mountpoint:node_filesystem_avail:ratio",
        r#"node_filesystem_avail_bytes{$SEL,fstype!~"tmpfs|vfat",mountpoint=~"/|/var/lib/.+"} / node_filesystem_size_bytes{$SEL,fstype!~"tmpfs|vfat",mountpoint=~"/|/var/lib/.+"}"#,
    ),
    rec(
        "_handler:http_request_duration_seconds:p99_5m",
        r#"histogram_quantile(0.99, sum by ($BY, handler, le) (rate(http_request_duration_seconds_bucket{$SEL}[5m])))"#,
    ),
    rec(
        "_instance:http_request_duration_seconds:p50_5m",
        r#"histogram_quantile(0.5, sum by ($BY, instance, le) (rate(http_request_duration_seconds_bucket{$SEL,handler="/api/v1/query"}[5m])))"#,
    ),
    rec(
        "_handler:http_requests:rate5m",
        r#"sum by ($BY, handler) (rate(http_request_duration_seconds_count{$SEL}[5m]))"#,
    ),
    rec(
        ":http_request_duration_seconds:mean5m",
        r#"sum by ($BY) (rate(http_request_duration_seconds_sum{$SEL}[5m])) / sum by ($BY) (rate(http_request_duration_seconds_count{$SEL}[5m]))"#,
    ),
    rec(
        "_instance:node_load15:avg_over_time10m",
        r#"avg_over_time(node_load15{$SEL}[10m])"#,
    ),
    rec(
        "_instance:node_memory_Active_bytes:max_over_time10m",
        r#"max_over_time(node_memory_Active_bytes{$SEL}[10m])"#,
    ),
    rec(":up:count", r#"count by ($BY) (up{$SEL} == 1)"#),
    rec(
        ":node_cpus:count",
        r#"count by ($BY) (node_cpu_seconds_total{$SEL,mode="idle"})"#,
    ),
    rec(
        ":node_context_switches:rate5m",
        r#"sum by ($BY) (rate(node_context_switches_total{$SEL}[5m]))"#,
    ),
    rec(
        "_instance:node_hwmon_temp_celsius:max",
        r#"max by ($BY, instance) (node_hwmon_temp_celsius{$SEL})"#,
    ),
    rec(
        ":node_memory_used_bytes:sum",
        r#"sum by ($BY) (node_memory_MemTotal_bytes{$SEL} - node_memory_MemAvailable_bytes{$SEL})"#,
    ),
    rec(
        ":node_netstat_Tcp_CurrEstab:p90",
        r#"quantile by ($BY) (0.9, node_netstat_Tcp_CurrEstab{$SEL})"#,
    ),
    rec(
        "_instance:node_filefd_allocated:deriv10m",
        r#"deriv(node_filefd_allocated{$SEL}[10m])"#,
    ),
    rec(
        "_instance:node_network_errors:increase5m",
        r#"sum by ($BY, instance) (increase(node_network_receive_errs_total{$SEL}[5m]) + increase(node_network_transmit_errs_total{$SEL}[5m]))"#,
    ),
    rec(
        "_instance:node_cpu_utilisation:top3",
        r#"topk by ($BY) (3, $K_instance:node_cpu_utilisation:rate5m{$RSEL})"#,
    ),
    rec(
        "_instance:node_uname_info:kernel",
        r#"label_replace(node_uname_info{$SEL}, "kernel", "$1", "release", "([0-9]+\\.[0-9]+).*")"#,
    ),
    rec(
        "_mountpoint:node_filesystem_avail_bytes:min",
        r#"min by ($BY, mountpoint) (node_filesystem_avail_bytes{$SEL,fstype!="vfat"})"#,
    ),
    alert(
        "HostHighCpuLoad",
        120,
        "warning",
        r#"1 - avg by ($BY, instance) (rate(node_cpu_seconds_total{$SEL,mode="idle"}[5m])) > 0.8"#,
        "CPU load is {{ $value | humanizePercentage }} on {{ $labels.instance }}",
    ),
    alert(
        "HostCpuSaturated",
        60,
        "critical",
        r#"$K_instance:node_cpu_utilisation:rate5m{$RSEL} > 0.85"#,
        "CPU of {{ $labels.instance }} saturated ({{ $value | humanizePercentage }})",
    ),
    alert(
        "HostOutOfMemory",
        120,
        "warning",
        r#"node_memory_MemAvailable_bytes{$SEL} / node_memory_MemTotal_bytes{$SEL} < 0.2"#,
        "{{ $labels.instance }} has {{ $value | humanizePercentage }} memory left",
    ),
    alert(
        "HostDiskWillFillIn24Hours",
        180,
        "warning",
        r#"predict_linear(node_filesystem_avail_bytes{$SEL,fstype!~"tmpfs|vfat"}[10m], 86400) < 0 and node_filesystem_avail_bytes{$SEL,fstype!~"tmpfs|vfat"} / node_filesystem_size_bytes{$SEL,fstype!~"tmpfs|vfat"} < 0.4"#,
        "{{ $labels.mountpoint }} on {{ $labels.instance }} fills up within a day",
    ),
    alert(
        "HostDown",
        60,
        "critical",
        r#"up{$SEL} == 0"#,
        "{{ $labels.instance }} is down",
    ),
    alert(
        "HighRequestLatency",
        60,
        "warning",
        r#"histogram_quantile(0.99, sum by ($BY, instance, le) (rate(http_request_duration_seconds_bucket{$SEL}[5m]))) > 4.5"#,
        "p99 latency {{ $value | humanizeDuration }} on {{ $labels.instance }}",
    ),
    alert(
        "HostNetworkReceiveErrors",
        120,
        "warning",
        r#"rate(node_network_receive_errs_total{$SEL}[2m]) / rate(node_network_receive_packets_total{$SEL}[2m]) > 0.01"#,
        "{{ $labels.device }} on {{ $labels.instance }}: {{ printf \"%.2f\" $value }} receive errors per packet",
    ),
    alert(
        "HostHighLoad",
        120,
        "warning",
        r#"node_load5{$SEL} / on (instance) group_left count by (instance) (node_cpu_seconds_total{$SEL,mode="idle"}) > 0.75"#,
        "load per CPU {{ $value | humanize }} on {{ $labels.instance }}",
    ),
    alert(
        "HostClockSkew",
        60,
        "warning",
        r#"abs(node_time_seconds{$SEL} - timestamp(node_time_seconds{$SEL})) > 0.05"#,
        "clock of {{ $labels.instance }} is off by {{ $value | humanize }} s",
    ),
    alert(
        "TooFewHostsUp",
        0,
        "critical",
        r#"count by ($BY) (up{$SEL} == 1) < 3"#,
        "only {{ $value }} hosts up",
    ),
    alert(
        "HostHighTemperature",
        60,
        "warning",
        r#"max_over_time(node_hwmon_temp_celsius{$SEL}[5m]) > 64"#,
        "{{ $labels.sensor }} of {{ $labels.instance }} at {{ $value }} °C",
    ),
    alert(
        "HostContextSwitching",
        120,
        "info",
        r#"rate(node_context_switches_total{$SEL}[5m]) / on (instance) group_left count by (instance) (node_cpu_seconds_total{$SEL,mode="idle"}) > 25000"#,
        "{{ $value | humanize }} context switches per CPU per second on {{ $labels.instance }}",
    ),
    alert(
        "HostHighIoWait",
        60,
        "warning",
        r#"avg by ($BY, instance) (rate(node_cpu_seconds_total{$SEL,mode="iowait"}[5m])) > 0.04"#,
        "iowait {{ $value | humanizePercentage }} on {{ $labels.instance }}",
    ),
    alert(
        "HostSwapUsage",
        120,
        "warning",
        r#"(1 - node_memory_SwapFree_bytes{$SEL} / node_memory_SwapTotal_bytes{$SEL}) * 100 > 50"#,
        "swap {{ $value | humanize }} % used on {{ $labels.instance }}",
    ),
    alert(
        "NodeExporterAbsent",
        0,
        "critical",
        r#"absent(up{$SEL})"#,
        "no node_exporter target in scope",
    ),
    alert(
        "HostRebooted",
        0,
        "info",
        r#"changes(node_boot_time_seconds{$SEL}[10m]) > 0"#,
        "{{ $labels.instance }} rebooted",
    ),
    alert(
        "HostFilesystemFilesLow",
        180,
        "warning",
        r#"node_filesystem_files_free{$SEL,mountpoint="/"} / node_filesystem_files{$SEL,mountpoint="/"} < 0.77"#,
        "{{ $labels.instance }} has {{ $value | humanizePercentage }} inodes free on /",
    ),
];

/// A set of hosts the rules of one group cover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// `fleet`, `region`, `cluster`, ...: the record name prefix.
    pub kind: &'static str,
    /// Group name.
    pub name: String,
    /// Matchers selecting the scope's raw series, without braces.
    pub sel: String,
    /// Labels aggregations keep (present on every raw series of the scope).
    pub by: Vec<&'static str>,
    /// Rule labels added to recording and alerting rules: the scope's label values and the
    /// dimensions defined by a regex.
    pub rule_labels: Vec<(String, String)>,
    /// Exact matchers selecting the scope's recorded series (its rule labels).
    pub rsel: String,
    pub hosts: usize,
}

/// One generated rule.
#[derive(Debug, Clone)]
pub struct GenRule {
    /// Index into [`TEMPLATES`].
    pub template: usize,
    /// Record name or alert name.
    pub name: String,
    pub expr: String,
    pub alert: bool,
    pub for_secs: u64,
    pub labels: Vec<(String, String)>,
    pub annotations: Vec<(String, String)>,
    /// For recording rules: a selector of exactly the series this rule writes.
    pub output_selector: String,
}

#[derive(Debug, Clone)]
pub struct GenGroup {
    pub scope: Scope,
    pub rules: Vec<GenRule>,
}

/// The generated rule set.
#[derive(Debug, Clone)]
pub struct RuleSet {
    pub interval_secs: u64,
    pub groups: Vec<GenGroup>,
}

impl RuleSet {
    /// Every `n`-th group (the first included): a smaller set covering every kind.
    pub fn every_nth_group(&self, n: usize) -> RuleSet {
        RuleSet {
            interval_secs: self.interval_secs,
            groups: self.groups.iter().step_by(n.max(1)).cloned().collect(),
        }
    }

    pub fn rules(&self) -> usize {
        self.groups.iter().map(|g| g.rules.len()).sum()
    }

    pub fn alerting(&self) -> usize {
        self.groups
            .iter()
            .flat_map(|g| &g.rules)
            .filter(|r| r.alert)
            .count()
    }

    /// The longest `for` of any alerting rule, seconds.
    pub fn max_for_secs(&self) -> u64 {
        self.groups
            .iter()
            .flat_map(|g| &g.rules)
            .map(|r| r.for_secs)
            .max()
            .unwrap_or(0)
    }

    /// Rule groups per scope kind, in generation order.
    pub fn groups_per_kind(&self) -> Vec<(&'static str, usize)> {
        let mut out: Vec<(&'static str, usize)> = Vec::new();
        for g in &self.groups {
            match out.last_mut() {
                Some((k, n)) if *k == g.scope.kind => *n += 1,
                _ => out.push((g.scope.kind, 1)),
            }
        }
        out
    }

    /// The rule file, in Prometheus' format.
    pub fn to_yaml(&self) -> String {
        let q = |s: &str| serde_json::to_string(s).expect("strings serialise");
        let mut o = String::from("groups:\n");
        for g in &self.groups {
            let _ = writeln!(o, "  - name: {}", q(&g.scope.name));
            let _ = writeln!(o, "    interval: {}s", self.interval_secs);
            o.push_str("    rules:\n");
            for r in &g.rules {
                if r.alert {
                    let _ = writeln!(o, "      - alert: {}", r.name);
                    let _ = writeln!(o, "        expr: {}", q(&r.expr));
                    if r.for_secs > 0 {
                        let _ = writeln!(o, "        for: {}s", r.for_secs);
                    }
                } else {
                    let _ = writeln!(o, "      - record: {}", r.name);
                    let _ = writeln!(o, "        expr: {}", q(&r.expr));
                }
                if !r.labels.is_empty() {
                    o.push_str("        labels:\n");
                    for (k, v) in &r.labels {
                        let _ = writeln!(o, "          {k}: {}", q(v));
                    }
                }
                if !r.annotations.is_empty() {
                    o.push_str("        annotations:\n");
                    for (k, v) in &r.annotations {
                        let _ = writeln!(o, "          {k}: {}", q(v));
                    }
                }
            }
        }
        o
    }
}

/// Labels every series of each host carries (taken from the host's first series).
fn host_labels(w: &Workload) -> Vec<BTreeMap<String, String>> {
    let mut out = vec![BTreeMap::new(); w.hosts.len()];
    let mut seen = vec![false; w.hosts.len()];
    for (i, s) in w.series.iter().enumerate() {
        let h = s.host as usize;
        if !seen[h] {
            seen[h] = true;
            out[h] = w
                .labels(i)
                .into_iter()
                .filter(|(k, _)| {
                    matches!(
                        k.as_str(),
                        "job"
                            | "instance"
                            | "env"
                            | "region"
                            | "availability_zone"
                            | "cluster"
                            | "team"
                    )
                })
                .collect();
        }
    }
    out
}

/// The host's role: the `instance` up to the first `-`.
fn role(l: &BTreeMap<String, String>) -> String {
    l.get("instance")
        .and_then(|i| i.split_once('-'))
        .map_or_else(String::new, |(r, _)| r.to_string())
}

/// Every scope of the workload, kind by kind (coarse to fine), each kind sorted.
pub fn scopes(w: &Workload) -> Vec<Scope> {
    let hosts = host_labels(w);
    // Per kind, a host's scope: its exact labels and, for regex kinds, its role.
    type ScopeKey = (Vec<(&'static str, String)>, Option<String>);
    type KeyFn = fn(&BTreeMap<String, String>) -> ScopeKey;
    let kinds: [(&'static str, KeyFn); 8] = [
        ("fleet", |l| (vec![("job", get_s(l, "job"))], None)),
        ("region", |l| (vec![("region", get_s(l, "region"))], None)),
        ("cluster", |l| {
            (vec![("cluster", get_s(l, "cluster"))], None)
        }),
        ("team_env", |l| {
            (
                vec![("team", get_s(l, "team")), ("env", get_s(l, "env"))],
                None,
            )
        }),
        ("zone_role", |l| {
            (
                vec![("availability_zone", get_s(l, "availability_zone"))],
                Some(role(l)),
            )
        }),
        ("env_role", |l| {
            (vec![("env", get_s(l, "env"))], Some(role(l)))
        }),
        ("team_cluster", |l| {
            (
                vec![("team", get_s(l, "team")), ("cluster", get_s(l, "cluster"))],
                None,
            )
        }),
        ("host", |l| (vec![("instance", get_s(l, "instance"))], None)),
    ];
    let mut out = Vec::new();
    for (kind, key) in kinds {
        let mut found: BTreeMap<ScopeKey, usize> = BTreeMap::new();
        for l in &hosts {
            *found.entry(key(l)).or_default() += 1;
        }
        for ((exact, role), n) in found {
            let mut sel: Vec<String> = exact.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
            let mut name = format!("{kind}:");
            name.push_str(
                &exact
                    .iter()
                    .map(|(_, v)| v.as_str())
                    .collect::<Vec<_>>()
                    .join(":"),
            );
            // The scope's values become rule labels too (as teams label their rules), so
            // that no two rules share name and labels (promtool's duplicate-rule lint).
            let mut rule_labels: Vec<(String, String)> = exact
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect();
            if let Some(r) = &role {
                sel.push(format!("instance=~\"{r}-.*\""));
                name.push(':');
                name.push_str(r);
                rule_labels.push(("role".to_string(), r.clone()));
            }
            rule_labels.sort();
            let rsel: Vec<String> = rule_labels
                .iter()
                .map(|(k, v)| format!("{k}={v:?}"))
                .collect();
            out.push(Scope {
                kind,
                name,
                sel: sel.join(","),
                by: exact.iter().map(|(k, _)| *k).collect(),
                rule_labels,
                rsel: rsel.join(","),
                hosts: n,
            });
        }
    }
    out
}

fn get_s(l: &BTreeMap<String, String>, k: &str) -> String {
    l.get(k).cloned().unwrap_or_default()
}

/// Instantiate template `t` for `scope`; `max_for` caps `for` (seconds).
pub fn instantiate(t: usize, scope: &Scope, max_for: u64) -> GenRule {
    let tpl = &TEMPLATES[t];
    let fill = |s: &str| {
        s.replace("$RSEL", &scope.rsel)
            .replace("$SEL", &scope.sel)
            .replace("$BY", &scope.by.join(", "))
            .replace("$K", scope.kind)
    };
    let expr = fill(tpl.expr);
    let mut labels = scope.rule_labels.clone();
    match tpl.alert {
        None => {
            let name = format!("{}{}", scope.kind, tpl.id);
            GenRule {
                template: t,
                output_selector: format!("{name}{{{}}}", scope.rsel),
                name,
                expr,
                alert: false,
                for_secs: 0,
                labels,
                annotations: Vec::new(),
            }
        }
        Some((for_secs, severity)) => {
            labels.push(("scope".into(), scope.kind.into()));
            labels.push(("severity".into(), severity.into()));
            labels.sort();
            GenRule {
                template: t,
                name: tpl.id.to_string(),
                expr,
                alert: true,
                for_secs: for_secs.min(max_for),
                labels,
                annotations: vec![
                    ("summary".into(), tpl.summary.to_string()),
                    (
                        "runbook_url".into(),
                        format!(
                            "https://runbooks.example.com/{}?group={}",
                            tpl.id,
                            scope.name.replace(':', "/")
                        ),
                    ),
                ],
                output_selector: String::new(),
            }
        }
    }
}

/// Why no rule set could be generated.
#[derive(Debug, thiserror::Error)]
pub enum GenError {
    #[error(
        "{wanted} rules need {groups} groups of {per_group}, but the workload has only {scopes} scopes; use more series"
    )]
    TooFewScopes {
        wanted: usize,
        groups: usize,
        per_group: usize,
        scopes: usize,
    },
}

/// `rules` rules in groups of all templates, one group per scope in [`scopes`] order (the
/// last group may be cut short).
pub fn generate(
    w: &Workload,
    rules: usize,
    interval_secs: u64,
    max_for: u64,
) -> Result<RuleSet, GenError> {
    let per_group = TEMPLATES.len();
    let all = scopes(w);
    let groups = rules.div_ceil(per_group);
    if groups > all.len() {
        return Err(GenError::TooFewScopes {
            wanted: rules,
            groups,
            per_group,
            scopes: all.len(),
        });
    }
    let mut out = Vec::with_capacity(groups);
    let mut left = rules;
    for scope in all.into_iter().take(groups) {
        let n = left.min(per_group);
        left -= n;
        let rules = (0..n).map(|t| instantiate(t, &scope, max_for)).collect();
        out.push(GenGroup { scope, rules });
    }
    Ok(RuleSet {
        interval_secs,
        groups: out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::Spec;

    fn workload(series: usize) -> Workload {
        Workload::new(Spec {
            series,
            duration_ms: 60_000,
            end_ms: 1_700_000_000_000,
            seed: 1,
        })
    }

    #[test]
    fn scopes_cover_the_fleet_once_per_kind() {
        let w = workload(20_000);
        let s = scopes(&w);
        for kind in [
            "fleet",
            "region",
            "cluster",
            "team_env",
            "zone_role",
            "env_role",
            "team_cluster",
            "host",
        ] {
            let hosts: usize = s.iter().filter(|x| x.kind == kind).map(|x| x.hosts).sum();
            assert_eq!(hosts, w.hosts.len(), "{kind}");
        }
        let fleet = &s[0];
        assert_eq!(fleet.sel, r#"job="node""#);
        let zr = s.iter().find(|x| x.kind == "zone_role").unwrap();
        assert!(zr.sel.contains("instance=~"), "{}", zr.sel);
        assert!(zr.rsel.contains("role="), "{}", zr.rsel);
        assert!(!zr.rsel.contains("instance"), "{}", zr.rsel);
        // Group names are unique.
        let mut names: Vec<&str> = s.iter().map(|x| x.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), s.len());
    }

    #[test]
    fn generates_the_requested_number_of_rules() {
        let w = workload(20_000);
        let rs = generate(&w, 1_000, 15, 180).unwrap();
        assert_eq!(rs.rules(), 1_000);
        assert_eq!(rs.groups.len(), 1_000usize.div_ceil(TEMPLATES.len()));
        assert!(
            rs.alerting() > 300 && rs.alerting() < 500,
            "{}",
            rs.alerting()
        );
        assert_eq!(rs.max_for_secs(), 180);
        assert_eq!(generate(&w, 1_000, 15, 30).unwrap().max_for_secs(), 30);
        let sub = rs.every_nth_group(5);
        assert_eq!(sub.groups.len(), rs.groups.len().div_ceil(5));
        assert_eq!(sub.groups[1].scope, rs.groups[5].scope);
        assert!(matches!(
            generate(&w, 1_000_000, 15, 180),
            Err(GenError::TooFewScopes { .. })
        ));
        // No placeholder survives.
        for g in &rs.groups {
            for r in &g.rules {
                assert!(
                    !r.expr.contains("$SEL") && !r.expr.contains("$BY"),
                    "{}",
                    r.expr
                );
                assert!(!r.expr.contains("$K") && !r.expr.contains("$RSEL"));
            }
        }
    }

    #[test]
    fn recorded_series_of_different_groups_cannot_collide() {
        let w = workload(20_000);
        let rs = generate(&w, 10_000.min(scopes(&w).len() * TEMPLATES.len()), 15, 180).unwrap();
        let mut sels: Vec<&str> = rs
            .groups
            .iter()
            .flat_map(|g| &g.rules)
            .filter(|r| !r.alert)
            .map(|r| r.output_selector.as_str())
            .collect();
        let n = sels.len();
        sels.sort_unstable();
        sels.dedup();
        assert_eq!(sels.len(), n);
    }

    #[test]
    fn yaml_is_a_prometheus_rule_file() {
        let w = workload(2_000);
        let rs = generate(&w, 60, 15, 180).unwrap();
        let y = rs.to_yaml();
        assert!(y.starts_with("groups:\n  - name: \"fleet:node\"\n    interval: 15s\n"));
        assert!(y.contains("      - record: fleet_instance:node_cpu_utilisation:rate5m\n"));
        assert!(y.contains("      - alert: HostHighCpuLoad\n        expr: "));
        assert!(y.contains("        for: 120s\n"));
        // The regex's backslash survives YAML quoting as PromQL's escaped backslash.
        assert!(y.contains(r#"\"([0-9]+\\\\.[0-9]+).*\""#), "{y}");
    }
}
