//! Alertmanager's YAML configuration: `global`, the `route` tree,
//! `receivers`, `inhibit_rules`, `time_intervals` (and the deprecated
//! `mute_time_intervals`) and `templates`, validated like
//! `amtool check-config`. Unknown keys are rejected everywhere.
//!
//! Silt extensions on a route (inherited by child routes unless set):
//! * `repeat_intervals: [1h, 4h, 24h]` — growing repeat intervals: the
//!   first repeat of an unchanged group waits the first value, the second
//!   the second, and the last value repeats for ever. A notification caused
//!   by a change (first, new alerts, resolutions) restarts the sequence.
//!   Setting `repeat_interval` on a route means `repeat_intervals: [it]`.
//! * `escalate: [{after: 3, receiver: oncall-lead}]` — once a group has
//!   had `after` notifications without being resolved, each further
//!   notification also goes to `receiver` (which is told about the
//!   resolution too). `escalate: []` on a child turns escalation off.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Visitor};

use crate::duration::ConfigDuration;
use crate::matchers::{MatchType, Matcher, MatcherList, matchers_string, valid_label_name};
use crate::receivers::{GlobalConfig, ReceiverConfig};
use crate::timeinterval::TimeInterval;
use crate::types::LabelSet;

pub const DEFAULT_GROUP_WAIT: Duration = Duration::from_secs(30);
pub const DEFAULT_GROUP_INTERVAL: Duration = Duration::from_secs(300);
pub const DEFAULT_REPEAT_INTERVAL: Duration = Duration::from_secs(4 * 3600);
pub const DEFAULT_RESOLVE_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{origin}:{line}:{column}: {message}")]
    Yaml {
        origin: String,
        line: usize,
        column: usize,
        message: String,
    },
    /// A semantic error; `location` is `:line` of the name it is about
    /// when that name can be found in the text.
    #[error("{origin}{location}: {message}")]
    Invalid {
        origin: String,
        location: String,
        message: String,
    },
}

/// A parsed and validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub global: Global,
    pub route: RouteConfig,
    pub receivers: Vec<ReceiverConfig>,
    pub inhibit_rules: Vec<InhibitRule>,
    /// `time_intervals` and `mute_time_intervals` by name.
    pub time_intervals: BTreeMap<String, Vec<TimeInterval>>,
    /// Template file globs, relative to [`Config::base_dir`].
    pub templates: Vec<String>,
    /// The directory of the configuration file ("." for parsed text).
    pub base_dir: PathBuf,
    /// The configuration text as given (`/api/v2/status` shows it redacted).
    pub original: String,
}

/// The `global:` section.
#[derive(Debug, Clone)]
pub struct Global {
    /// `resolve_timeout` (default 5m): alerts without `endsAt` resolve this
    /// long after they were last received.
    pub resolve_timeout: Duration,
    /// The receiver-related fields.
    pub receivers: GlobalConfig,
}

impl Default for Global {
    fn default() -> Self {
        Global {
            resolve_timeout: DEFAULT_RESOLVE_TIMEOUT,
            receivers: GlobalConfig::default(),
        }
    }
}

/// `group_by`, with `['...']` meaning every label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupBy {
    All,
    Labels(BTreeSet<String>),
}

/// One `escalate:` step of a route (Silt extension).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Escalation {
    /// Notifications without resolution before the group also goes to
    /// `receiver` (≥ 1).
    pub after: u32,
    pub receiver: String,
}

/// A `route:` node as written (before inheritance).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    #[serde(default)]
    pub receiver: Option<String>,
    #[serde(default)]
    pub group_by: Option<Vec<String>>,
    #[serde(default, rename = "continue")]
    pub continue_: bool,
    #[serde(default)]
    pub matchers: MatcherList,
    #[serde(default, rename = "match")]
    pub match_eq: BTreeMap<String, String>,
    #[serde(default)]
    pub match_re: BTreeMap<String, String>,
    #[serde(default)]
    pub labels: LabelSet,
    #[serde(default)]
    pub group_wait: Option<ConfigDuration>,
    #[serde(default)]
    pub group_interval: Option<ConfigDuration>,
    #[serde(default)]
    pub repeat_interval: Option<ConfigDuration>,
    #[serde(default)]
    pub repeat_intervals: Option<Vec<ConfigDuration>>,
    #[serde(default)]
    pub escalate: Option<Vec<Escalation>>,
    #[serde(default)]
    pub mute_time_intervals: Vec<String>,
    #[serde(default)]
    pub active_time_intervals: Vec<String>,
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
}

impl RouteConfig {
    /// `match`, `match_re` and `matchers` combined and sorted as
    /// Alertmanager sorts them (name, value, type).
    pub fn all_matchers(&self) -> Result<Vec<Matcher>, String> {
        let mut ms = Vec::new();
        for (k, v) in &self.match_eq {
            ms.push(Matcher::new(MatchType::Equal, k, v).map_err(|e| e.to_string())?);
        }
        for (k, v) in &self.match_re {
            ms.push(Matcher::new(MatchType::Regexp, k, v).map_err(|e| e.to_string())?);
        }
        ms.extend(self.matchers.0.iter().cloned());
        ms.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        Ok(ms)
    }
}

/// An inhibition rule (C.3).
#[derive(Debug, Clone)]
pub struct InhibitRule {
    pub name: Option<String>,
    pub source_matchers: Vec<Matcher>,
    pub target_matchers: Vec<Matcher>,
    pub equal: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInhibitRule {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    source_matchers: MatcherList,
    #[serde(default)]
    target_matchers: MatcherList,
    #[serde(default)]
    source_match: BTreeMap<String, String>,
    #[serde(default)]
    source_match_re: BTreeMap<String, String>,
    #[serde(default)]
    target_match: BTreeMap<String, String>,
    #[serde(default)]
    target_match_re: BTreeMap<String, String>,
    #[serde(default)]
    equal: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTimeIntervals {
    #[serde(default)]
    name: String,
    #[serde(default)]
    time_intervals: Vec<TimeInterval>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    global: Option<serde_yaml::Mapping>,
    #[serde(default)]
    route: Option<RouteConfig>,
    #[serde(default)]
    receivers: Vec<ReceiverConfig>,
    #[serde(default)]
    inhibit_rules: Vec<RawInhibitRule>,
    #[serde(default)]
    time_intervals: Vec<RawTimeIntervals>,
    #[serde(default)]
    mute_time_intervals: Vec<RawTimeIntervals>,
    #[serde(default)]
    templates: Vec<String>,
}

/// The field names a `Deserialize` struct declares, found by asking it to
/// deserialize from a deserializer that only records them.
fn struct_fields<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    struct Probe<'a>(&'a mut &'static [&'static str]);
    #[derive(Debug)]
    struct Stop;
    impl std::fmt::Display for Stop {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("probe")
        }
    }
    impl std::error::Error for Stop {}
    impl de::Error for Stop {
        fn custom<M: std::fmt::Display>(_: M) -> Self {
            Stop
        }
    }
    impl<'de> de::Deserializer<'de> for Probe<'_> {
        type Error = Stop;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
            Err(Stop)
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Stop> {
            *self.0 = fields;
            Err(Stop)
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(Probe(&mut fields));
    fields
}

impl Config {
    /// Reads and parses a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Config::parse(&text, &path.display().to_string())
    }

    /// Parses configuration text; `origin` (a file name) prefixes errors
    /// and, when it has a parent directory, anchors template globs.
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            origin: origin.to_string(),
            location: locate(text, &message).map_or_else(String::new, |l| format!(":{l}")),
            message,
        };
        let raw: RawConfig = serde_yaml::from_str(text).map_err(|e| {
            let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
            ConfigError::Yaml {
                origin: origin.to_string(),
                line,
                column,
                message: e.to_string(),
            }
        })?;

        let global = parse_global(raw.global).map_err(|m| invalid(format!("global: {m}")))?;

        let mut names = HashSet::new();
        for r in &raw.receivers {
            if r.name.is_empty() {
                return Err(invalid("missing name in receiver".into()));
            }
            if !names.insert(r.name.clone()) {
                return Err(invalid(format!(
                    "notification config name {:?} is not unique",
                    r.name
                )));
            }
        }

        let mut time_intervals = BTreeMap::new();
        for (raw_list, what) in [
            (&raw.mute_time_intervals, "mute time interval"),
            (&raw.time_intervals, "time interval"),
        ] {
            for ti in raw_list {
                if ti.name.is_empty() {
                    return Err(invalid(format!("missing name in {what}")));
                }
                if time_intervals
                    .insert(ti.name.clone(), ti.time_intervals.clone())
                    .is_some()
                {
                    return Err(invalid(format!("{what} {:?} is not unique", ti.name)));
                }
            }
        }

        let route = raw
            .route
            .ok_or_else(|| invalid("no routes provided".into()))?;
        if route.receiver.as_deref().unwrap_or("").is_empty() {
            return Err(invalid("root route must specify a default receiver".into()));
        }
        if !route.match_eq.is_empty() || !route.match_re.is_empty() || !route.matchers.0.is_empty()
        {
            return Err(invalid("root route must not have any matchers".into()));
        }
        if route.continue_ {
            return Err(invalid("cannot have continue in root route".into()));
        }
        if !route.mute_time_intervals.is_empty() {
            return Err(invalid(
                "root route must not have any mute time intervals".into(),
            ));
        }
        if !route.active_time_intervals.is_empty() {
            return Err(invalid(
                "root route must not have any active time intervals".into(),
            ));
        }
        check_route(&route, &names, &time_intervals).map_err(invalid)?;

        let mut inhibit_rules = Vec::new();
        for r in raw.inhibit_rules {
            inhibit_rules
                .push(build_inhibit_rule(r).map_err(|m| invalid(format!("inhibit rule: {m}")))?);
        }

        let base_dir = Path::new(origin)
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);

        Ok(Config {
            global,
            route,
            receivers: raw.receivers,
            inhibit_rules,
            time_intervals,
            templates: raw.templates,
            base_dir,
            original: text.to_string(),
        })
    }

    pub fn receiver(&self, name: &str) -> Option<&ReceiverConfig> {
        self.receivers.iter().find(|r| r.name == name)
    }
}

/// The 1-based line of the name a validation message quotes: its last
/// whole-word occurrence for "not unique" errors, else its first.
fn locate(text: &str, message: &str) -> Option<usize> {
    let start = message.find('"')? + 1;
    let len = message[start..].find('"')?;
    let name = &message[start..start + len];
    if name.is_empty() {
        return None;
    }
    let is_word = |c: char| c.is_alphanumeric() || c == '_' || c == '-' || c == '.';
    let hits = text.lines().enumerate().filter(|(_, line)| {
        let code = line.split(" #").next().unwrap_or("");
        code.match_indices(name).any(|(i, _)| {
            let before = code[..i].chars().next_back();
            let after = code[i + name.len()..].chars().next();
            !before.is_some_and(is_word) && !after.is_some_and(is_word)
        })
    });
    let hit = if message.contains("not unique") {
        hits.last()
    } else {
        hits.into_iter().next()
    };
    hit.map(|(i, _)| i + 1)
}

fn parse_global(raw: Option<serde_yaml::Mapping>) -> Result<Global, String> {
    let mut global = Global::default();
    let Some(mut map) = raw else {
        return Ok(global);
    };
    if let Some(v) = map.remove("resolve_timeout") {
        let d: ConfigDuration = serde_yaml::from_value(v).map_err(|e| e.to_string())?;
        global.resolve_timeout = d.0;
    }
    let known = struct_fields::<GlobalConfig>();
    for key in map.keys() {
        let k = key.as_str().unwrap_or("");
        if !known.contains(&k) {
            return Err(format!("unknown field `{}`", k));
        }
    }
    global.receivers =
        serde_yaml::from_value(serde_yaml::Value::Mapping(map)).map_err(|e| e.to_string())?;
    Ok(global)
}

fn check_route(
    r: &RouteConfig,
    receivers: &HashSet<String>,
    intervals: &BTreeMap<String, Vec<TimeInterval>>,
) -> Result<(), String> {
    if let Some(rcv) = &r.receiver
        && !rcv.is_empty()
        && !receivers.contains(rcv)
    {
        return Err(format!("undefined receiver {rcv:?} used in route"));
    }
    for name in r.mute_time_intervals.iter().chain(&r.active_time_intervals) {
        if !intervals.contains_key(name) {
            return Err(format!("undefined time interval {name:?} used in route"));
        }
    }
    for k in r.labels.keys() {
        if !valid_label_name(k) {
            return Err(format!("invalid label name {k:?} in route labels"));
        }
    }
    for k in r.match_eq.keys().chain(r.match_re.keys()) {
        if !valid_label_name(k) {
            return Err(format!("invalid label name {k:?}"));
        }
    }
    r.all_matchers()?;
    if let Some(gb) = &r.group_by {
        let mut seen = HashSet::new();
        for l in gb {
            if l == "..." {
                if gb.len() > 1 {
                    return Err(
                        "cannot have wildcard group_by (`...`) and other labels at the same time"
                            .into(),
                    );
                }
            } else if !valid_label_name(l) {
                return Err(format!("invalid label name {l:?} in group_by list"));
            }
            if !seen.insert(l) {
                return Err(format!("duplicated label {l:?} in group_by"));
            }
        }
    }
    if r.group_interval.is_some_and(|d| d.0.is_zero()) {
        return Err("group_interval cannot be zero".into());
    }
    if r.repeat_interval.is_some_and(|d| d.0.is_zero()) {
        return Err("repeat_interval cannot be zero".into());
    }
    if let Some(ris) = &r.repeat_intervals {
        if ris.is_empty() {
            return Err("repeat_intervals cannot be empty".into());
        }
        if ris.iter().any(|d| d.0.is_zero()) {
            return Err("repeat_intervals cannot contain zero".into());
        }
    }
    for e in r.escalate.iter().flatten() {
        if e.after == 0 {
            return Err("escalate: after must be at least 1".into());
        }
        if !receivers.contains(&e.receiver) {
            return Err(format!(
                "undefined receiver {:?} used in escalate",
                e.receiver
            ));
        }
    }
    for child in &r.routes {
        check_route(child, receivers, intervals)?;
    }
    Ok(())
}

fn equal_matchers(
    eq: &BTreeMap<String, String>,
    re: &BTreeMap<String, String>,
    list: MatcherList,
) -> Result<Vec<Matcher>, String> {
    let mut out = Vec::new();
    for (k, v) in eq {
        out.push(Matcher::new(MatchType::Equal, k, v).map_err(|e| e.to_string())?);
    }
    for (k, v) in re {
        out.push(Matcher::new(MatchType::Regexp, k, v).map_err(|e| e.to_string())?);
    }
    out.extend(list.0);
    Ok(out)
}

fn build_inhibit_rule(r: RawInhibitRule) -> Result<InhibitRule, String> {
    for l in &r.equal {
        if !valid_label_name(l) {
            return Err(format!("invalid label name {l:?} in equal list"));
        }
    }
    Ok(InhibitRule {
        name: r.name,
        source_matchers: equal_matchers(&r.source_match, &r.source_match_re, r.source_matchers)?,
        target_matchers: equal_matchers(&r.target_match, &r.target_match_re, r.target_matchers)?,
        equal: r.equal,
    })
}

/// A route's effective options after inheritance.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteOpts {
    pub receiver: String,
    pub group_by: GroupBy,
    pub group_wait: Duration,
    pub group_interval: Duration,
    /// Never empty; `[repeat_interval]` unless `repeat_intervals` is set.
    pub repeat_intervals: Vec<Duration>,
    pub mute_time_intervals: Vec<String>,
    pub active_time_intervals: Vec<String>,
    pub labels: LabelSet,
    pub escalate: Vec<Escalation>,
}

impl RouteOpts {
    /// The wait before the repeat that follows `repeats` consecutive
    /// repeat notifications.
    pub fn repeat_interval(&self, repeats: u32) -> Duration {
        let i = (repeats as usize).min(self.repeat_intervals.len().saturating_sub(1));
        self.repeat_intervals
            .get(i)
            .copied()
            .unwrap_or(DEFAULT_REPEAT_INTERVAL)
    }
}

/// A node of the compiled routing tree.
#[derive(Debug, Clone)]
pub struct Route {
    /// Unique per tree (children numbered before their parent).
    pub idx: usize,
    /// `{}/{team="x"}`: the chain of matcher sets from the root.
    pub key: String,
    pub matchers: Vec<Matcher>,
    pub continue_: bool,
    pub opts: RouteOpts,
    pub routes: Vec<Route>,
}

impl Route {
    /// Compiles a validated `route:` tree.
    pub fn build(root: &RouteConfig) -> Route {
        let defaults = RouteOpts {
            receiver: String::new(),
            group_by: GroupBy::Labels(BTreeSet::new()),
            group_wait: DEFAULT_GROUP_WAIT,
            group_interval: DEFAULT_GROUP_INTERVAL,
            repeat_intervals: vec![DEFAULT_REPEAT_INTERVAL],
            mute_time_intervals: Vec::new(),
            active_time_intervals: Vec::new(),
            labels: LabelSet::new(),
            escalate: Vec::new(),
        };
        let mut counter = 0;
        build_node(root, &defaults, None, &mut counter)
    }

    /// The routes an alert goes to: depth-first, stopping at the first
    /// matching child unless it has `continue`; the node itself if no child
    /// matches. Empty if this node does not match.
    pub fn matching(&self, labels: &LabelSet) -> Vec<&Route> {
        let mut out = Vec::new();
        self.collect(labels, &mut out);
        out
    }

    fn collect<'a>(&'a self, labels: &LabelSet, out: &mut Vec<&'a Route>) -> bool {
        if !crate::matchers::matches_all(&self.matchers, labels) {
            return false;
        }
        let before = out.len();
        for child in &self.routes {
            if child.collect(labels, out) && !child.continue_ {
                break;
            }
        }
        if out.len() == before {
            out.push(self);
        }
        true
    }

    pub fn walk<'a>(&'a self, f: &mut impl FnMut(&'a Route)) {
        f(self);
        for c in &self.routes {
            c.walk(f);
        }
    }

    /// The group labels of an alert on this route (only labels it has).
    pub fn group_labels(&self, labels: &LabelSet) -> LabelSet {
        match &self.opts.group_by {
            GroupBy::All => labels.clone(),
            GroupBy::Labels(names) => labels
                .iter()
                .filter(|(k, _)| names.contains(*k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }
}

fn build_node(
    cr: &RouteConfig,
    parent: &RouteOpts,
    parent_key: Option<&str>,
    counter: &mut usize,
) -> Route {
    let mut opts = parent.clone();
    if !cr.labels.is_empty() {
        opts.labels
            .extend(cr.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    if let Some(r) = cr.receiver.as_ref().filter(|r| !r.is_empty()) {
        opts.receiver = r.clone();
    }
    if let Some(gb) = &cr.group_by {
        opts.group_by = if gb.len() == 1 && gb[0] == "..." {
            GroupBy::All
        } else {
            GroupBy::Labels(gb.iter().cloned().collect())
        };
    }
    if let Some(d) = cr.group_wait {
        opts.group_wait = d.0;
    }
    if let Some(d) = cr.group_interval {
        opts.group_interval = d.0;
    }
    if let Some(ris) = &cr.repeat_intervals {
        opts.repeat_intervals = ris.iter().map(|d| d.0).collect();
    } else if let Some(d) = cr.repeat_interval {
        opts.repeat_intervals = vec![d.0];
    }
    if let Some(e) = &cr.escalate {
        opts.escalate = e.clone();
    }
    opts.mute_time_intervals = cr.mute_time_intervals.clone();
    opts.active_time_intervals = cr.active_time_intervals.clone();
    // Validated by `check_route`, so this cannot fail here.
    let matchers = cr.all_matchers().unwrap_or_default();
    let own = matchers_string(&matchers);
    let key = match parent_key {
        Some(p) => format!("{p}/{own}"),
        None => own,
    };
    let routes = cr
        .routes
        .iter()
        .map(|c| build_node(c, &opts, Some(&key), counter))
        .collect();
    let idx = *counter;
    *counter += 1;
    Route {
        idx,
        key,
        matchers,
        continue_: cr.continue_,
        opts,
        routes,
    }
}

#[cfg(test)]
mod tests;
