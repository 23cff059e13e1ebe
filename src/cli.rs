//! Command-line interface: `silt [serve] [FLAGS]` and `silt print-config`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{Config, DurabilityMode};
use crate::duration::HumanDuration;

/// Silt: a time-series metrics database with a Prometheus-compatible API.
///
/// Without a subcommand Silt runs the server (`silt serve`). It needs no
/// configuration: it listens on 127.0.0.1:9300, keeps data in ./silt-data,
/// keeps 15 days, and stores its own metrics (job="silt") every 15 s.
#[derive(Debug, Parser)]
#[command(name = "silt", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve(ServeArgs),
    /// Print the effective configuration (defaults, config file and flags
    /// merged) as YAML and exit.
    PrintConfig(ServeArgs),
    /// Validate files without starting the server (exit status 1 on an
    /// error), like `promtool check rules` and `amtool check-config`.
    #[command(subcommand)]
    Check(CheckCommand),
    /// Run unit tests (exit status 1 on a failure), like `promtool test`.
    #[command(subcommand)]
    Test(TestCommand),
    /// Scheduled reports on a running server (docs/reports.md).
    #[command(subcommand)]
    Report(ReportCommand),
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Run a report now on the server and print the run: its outputs'
    /// URLs and deliveries (exit status 1 when the run failed).
    Run {
        /// The report's name (`reports:` in the configuration).
        #[arg(value_name = "NAME")]
        name: String,
        /// The server's base URL.
        #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:9300")]
        url: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TestCommand {
    /// Rule unit tests in promtool's format (`promtool test rules`).
    Rules {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum CheckCommand {
    /// Prometheus rule files (recording and alerting rules).
    Rules {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Alertmanager-format configuration files for the built-in
    /// Alertmanager (`alerting.config_file`).
    Config {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
}

/// Settings of the server. Flags override the config file, which overrides
/// the built-in defaults (see `silt print-config`).
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// Address to serve HTTP on [default: 127.0.0.1:9300].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Data directory (WAL, blocks, snapshots) [default: ./silt-data].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Delete data older than this, e.g. 15d, 12h, 2w, 1y; 0 keeps
    /// everything [default: 15d].
    #[arg(long, value_name = "DURATION")]
    pub retention: Option<HumanDuration>,
    /// When a write is acknowledged: sync = after fsync (group commit);
    /// async = at once, fsync every durability.interval of the config
    /// [default: sync].
    #[arg(long, value_enum, value_name = "MODE")]
    pub durability: Option<DurabilityMode>,
    /// Log level or tracing filter, e.g. info, debug, "info,engine=debug"
    /// [default: info; RUST_LOG wins if set].
    #[arg(long, value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// YAML config file for everything else (durability interval, ingest
    /// limits, max future, query limits, self-scrape interval, log level).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Longest a PromQL query may run before it is stopped (503)
    /// [default: 2m].
    #[arg(long = "query.timeout", value_name = "DURATION")]
    pub query_timeout: Option<HumanDuration>,
    /// Most samples one query may hold in memory at once (more: 422)
    /// [default: 50000000].
    #[arg(long = "query.max-samples", value_name = "N")]
    pub query_max_samples: Option<usize>,
    /// How far back an instant selector looks for a sample [default: 5m].
    #[arg(long = "query.lookback-delta", value_name = "DURATION")]
    pub query_lookback_delta: Option<HumanDuration>,
    /// Drop the metric names functions drop when the query ends, not at
    /// once (Prometheus's promql-delayed-name-removal feature).
    #[arg(long = "query.delayed-name-removal")]
    pub query_delayed_name_removal: bool,
    /// Queries evaluated at once; others wait, then get 503 [default: 20].
    #[arg(long = "query.max-concurrency", value_name = "N")]
    pub query_max_concurrency: Option<usize>,
}

impl ServeArgs {
    /// The effective configuration: defaults, then the config file, then flags.
    pub fn resolve(&self) -> anyhow::Result<Config> {
        let mut cfg = Config::load(self.config.as_deref())?;
        if let Some(listen) = self.listen {
            cfg.listen = listen;
        }
        if let Some(dir) = &self.data_dir {
            cfg.data_dir = dir.clone();
        }
        if let Some(r) = self.retention {
            cfg.retention = r;
        }
        if let Some(d) = self.durability {
            cfg.durability.mode = d;
        }
        if let Some(level) = &self.log_level {
            cfg.log.level = level.clone();
        }
        if let Some(t) = self.query_timeout {
            cfg.query.timeout = t;
        }
        if let Some(n) = self.query_max_samples {
            cfg.query.max_samples = n;
        }
        if let Some(d) = self.query_lookback_delta {
            cfg.query.lookback_delta = d;
        }
        if self.query_delayed_name_removal {
            cfg.query.delayed_name_removal = true;
        }
        if let Some(n) = self.query_max_concurrency {
            cfg.query.max_concurrency = n;
        }
        cfg.validate()?;
        Ok(cfg)
    }
}

impl Cli {
    /// Which command to run, with `serve` as the default.
    pub fn into_command(self) -> Command {
        self.command.unwrap_or(Command::Serve(self.serve))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;
    use std::time::Duration;

    fn parse(args: &[&str]) -> Command {
        Cli::try_parse_from(std::iter::once("silt").chain(args.iter().copied()))
            .unwrap()
            .into_command()
    }

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn serve_is_the_default() {
        let Command::Serve(args) = parse(&["--listen", "127.0.0.1:1234", "--retention", "0"])
        else {
            panic!("expected serve")
        };
        let cfg = args.resolve().unwrap();
        assert_eq!(cfg.listen.port(), 1234);
        assert_eq!(cfg.retention(), None);
        let Command::Serve(args) =
            parse(&["serve", "--data-dir", "/tmp/x", "--durability", "async"])
        else {
            panic!("expected serve")
        };
        let cfg = args.resolve().unwrap();
        assert_eq!(cfg.data_dir, PathBuf::from("/tmp/x"));
        assert!(matches!(cfg.durability(), engine::Durability::Async { .. }));
    }

    #[test]
    fn flags_override_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("silt.yml");
        std::fs::write(
            &file,
            "retention: 30d\nlisten: 127.0.0.1:7000\nself_scrape:\n  interval: 5s\n",
        )
        .unwrap();
        let file = file.to_str().unwrap();
        let Command::Serve(args) = parse(&["--config", file, "--retention", "2d"]) else {
            panic!("expected serve")
        };
        let cfg = args.resolve().unwrap();
        assert_eq!(cfg.retention(), Some(Duration::from_secs(2 * 86_400)));
        assert_eq!(cfg.listen.port(), 7000);
        assert_eq!(cfg.self_scrape_interval(), Some(Duration::from_secs(5)));
    }

    #[test]
    fn query_flags_use_prometheus_names() {
        let Command::Serve(args) = parse(&[
            "--query.timeout",
            "30s",
            "--query.max-samples",
            "1000",
            "--query.lookback-delta",
            "1m",
            "--query.max-concurrency",
            "4",
            "--query.delayed-name-removal",
        ]) else {
            panic!("expected serve")
        };
        let cfg = args.resolve().unwrap();
        assert!(cfg.query.delayed_name_removal);
        assert_eq!(cfg.query.timeout.0, Duration::from_secs(30));
        assert_eq!(cfg.query.max_samples, 1000);
        assert_eq!(cfg.query.lookback_delta.0, Duration::from_secs(60));
        assert_eq!(cfg.query.max_concurrency, 4);
        let Command::Serve(args) = parse(&["--query.max-concurrency", "0"]) else {
            panic!("expected serve")
        };
        assert!(args.resolve().is_err(), "validated after the flags");
    }

    #[test]
    fn bad_flags_are_rejected() {
        let bad = |args: &[&str]| {
            Cli::try_parse_from(std::iter::once("silt").chain(args.iter().copied())).is_err()
        };
        assert!(bad(&["--retention", "forever"]));
        assert!(bad(&["--listen", "nowhere"]));
        assert!(bad(&["--durability", "maybe"]));
        assert!(bad(&["--no-such-flag"]));
    }

    #[test]
    fn missing_config_file_is_an_error() {
        let args = ServeArgs {
            config: Some(PathBuf::from("/nonexistent/silt.yml")),
            ..ServeArgs::default()
        };
        let err = format!("{:#}", args.resolve().unwrap_err());
        assert!(err.contains("/nonexistent/silt.yml"), "{err}");
    }
}
