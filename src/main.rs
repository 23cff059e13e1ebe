//! `silt`: a time-series metrics database with a Prometheus-compatible API.
//! This binary wires the engine, the remote-write receiver and the query API
//! into one HTTP server (see `server.rs`); `silt --help` lists the flags.

mod admin;
mod alert_stack;
mod cli;
mod components;
mod config;
mod duration;
mod exposition;
mod metrics;
mod report_stack;
mod selfscrape;
mod server;

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use tracing_subscriber::EnvFilter;

use crate::cli::{CheckCommand, Cli, Command, ReportCommand, TestCommand};
use crate::config::{Config, ConfigSource};

#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc v3's `mi_option_e` (the sys crate
/// does not name it; `tests::purge_delay_option_is_where_we_think` checks).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// mimalloc (v3) keeps freed pages for a second before returning them to
/// the OS. Silt's churn (request buffers, block writes) then shows as
/// resident memory it no longer uses, about a sixth of the peak at 20 k
/// series; purging at once cost no measurable ingest rate (queries pay a
/// few percent in page faults). `MIMALLOC_PURGE_DELAY` (or its old name
/// `MIMALLOC_RESET_DELAY`) in the environment still decides.
fn tune_allocator() {
    if !purge_delay_in_env() {
        // SAFETY: setting an option is allowed at any time; mimalloc reads
        // this one whenever it considers purging.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
    }
}

fn purge_delay_in_env() -> bool {
    ["MIMALLOC_PURGE_DELAY", "MIMALLOC_RESET_DELAY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some())
}

fn main() -> ExitCode {
    tune_allocator();
    let cli = Cli::parse();
    match run(cli.into_command()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The logger may not be up yet (bad config), so print directly.
            eprintln!("silt: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::PrintConfig(args) => {
            print!("{}", args.resolve()?.to_yaml()?);
            Ok(())
        }
        Command::Check(check) => {
            if run_check(check)? {
                Ok(())
            } else {
                std::process::exit(1);
            }
        }
        Command::Report(ReportCommand::Run { name, url }) => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the runtime")?;
            rt.block_on(report_stack::run_remote(&url, &name))?;
            Ok(())
        }
        Command::Test(TestCommand::Rules { files }) => {
            let passed = alerting::unittest::run_files(
                &files,
                &mut std::io::stdout(),
                &mut std::io::stderr(),
            )
            .context("writing the report")?;
            if passed {
                Ok(())
            } else {
                std::process::exit(1);
            }
        }
        Command::Serve(args) => {
            let cfg = args.resolve()?;
            init_logging(&cfg)?;
            serve(cfg, std::sync::Arc::new(move || args.resolve()))
        }
    }
}

/// Runs a `silt check` command, printing like promtool / amtool; `false`
/// when a file has errors.
fn run_check(check: CheckCommand) -> anyhow::Result<bool> {
    match check {
        CheckCommand::Rules { files } => {
            let checks = alerting::check_files(&files);
            let code = alerting::report(&checks, &mut std::io::stdout(), &mut std::io::stderr())
                .context("writing the report")?;
            Ok(code == 0)
        }
        CheckCommand::Config { files } => {
            let mut ok = true;
            for f in &files {
                println!("Checking '{}'", f.display());
                match alertmanager::Config::load(f) {
                    Ok(cfg) => {
                        println!("  SUCCESS");
                        println!("Found:");
                        println!(" - global config");
                        println!(" - route");
                        println!(" - {} inhibit rules", cfg.inhibit_rules.len());
                        println!(" - {} receivers", cfg.receivers.len());
                        println!(" - {} templates", cfg.templates.len());
                    }
                    Err(e) => {
                        ok = false;
                        println!("  FAILED: {e}");
                    }
                }
                println!();
            }
            Ok(ok)
        }
    }
}

fn init_logging(cfg: &Config) -> anyhow::Result<()> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(env) if !env.trim().is_empty() => {
            EnvFilter::try_new(&env).with_context(|| format!("invalid RUST_LOG {env:?}"))?
        }
        _ => EnvFilter::try_new(&cfg.log.level)
            .with_context(|| format!("invalid log level {:?}", cfg.log.level))?,
    };
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .init();
    Ok(())
}

fn serve(cfg: Config, source: ConfigSource) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("silt")
        .build()
        .context("starting the async runtime")?;
    let result = runtime.block_on(server::run(cfg, source));
    // A database still opening after a shutdown signal is abandoned: the
    // WAL replays again on the next start.
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}

#[cfg(test)]
mod tests {
    use super::{MI_OPTION_PURGE_DELAY, purge_delay_in_env};

    #[test]
    fn purge_delay_option_is_where_we_think() {
        // mimalloc v3's default purge_delay is 1000 (ms); the neighbouring
        // options default to other values (deprecated_eager_commit_delay 1,
        // use_numa_nodes 0), so a shifted index shows.
        if purge_delay_in_env() {
            return;
        }
        // SAFETY: reading an option has no preconditions.
        let v = unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        assert_eq!(v, 1000);
    }
}
