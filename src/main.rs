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
/// resident memory it no longer uses. Silt purges after 25 ms: with arenas
/// committed on demand ([`arena_commit`]) that kept peak RSS at 20 k series
/// within 2 % of purging at once, while queries, which free and reuse
/// buffers from one request to the next, ran no slower than before (at
/// once cost the range queries up to a quarter in page faults).
/// `MIMALLOC_PURGE_DELAY` (or its old name `MIMALLOC_RESET_DELAY`) in the
/// environment still decides.
const PURGE_DELAY_MS: std::ffi::c_long = 25;

fn tune_allocator() {
    if !purge_delay_in_env() {
        // SAFETY: setting an option is allowed at any time; mimalloc reads
        // this one whenever it considers purging.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
    }
}

/// Committing mimalloc's arenas on demand, set up before `main`.
#[cfg(all(not(feature = "system-alloc"), target_os = "linux"))]
mod arena_commit {
    use std::sync::atomic::{AtomicI64, Ordering};

    /// `mi_option_arena_eager_commit` in mimalloc v3's `mi_option_e`
    /// (`tests::option_is_where_we_think` checks).
    const MI_OPTION_ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;

    /// What [`commit_arenas_on_demand`] found the option at (-1: not run).
    static FOUND: AtomicI64 = AtomicI64::new(-1);

    /// On Linux mimalloc commits its 1 GiB arenas whole when it reserves
    /// them (option `arena_eager_commit`, default 2: on where the OS
    /// overcommits), and asks for transparent huge pages on such arenas
    /// (`MADV_HUGEPAGE`). A purge of part of a 2 MiB huge page frees
    /// nothing, so memory Silt freed long ago still counted as resident.
    /// Arenas committed on demand get 4 KiB pages, which purges return:
    /// peak RSS at 20 k series fell by a sixth (`MIMALLOC_ALLOW_THP=0` did
    /// about as well; docs/benchmarks.md, session 12).
    ///
    /// The option is read when the first arena is reserved, at the first
    /// allocation, so this runs from `.init_array` (as C constructors do),
    /// before Rust's runtime allocates anything; it does not allocate.
    /// `MIMALLOC_ARENA_EAGER_COMMIT` in the environment still decides (any
    /// value but the default 2).
    extern "C" fn commit_arenas_on_demand() {
        // SAFETY: reading and setting options has no preconditions;
        // mimalloc reads the environment without allocating.
        let found = unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_ARENA_EAGER_COMMIT) };
        #[allow(clippy::useless_conversion)] // `c_long` is `i32` on 32-bit targets
        FOUND.store(i64::from(found), Ordering::Relaxed);
        if found == 2 {
            // SAFETY: as above.
            unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_ARENA_EAGER_COMMIT, 0) };
        }
    }

    #[used]
    #[unsafe(link_section = ".init_array")]
    static COMMIT_ARENAS_ON_DEMAND: extern "C" fn() = commit_arenas_on_demand;

    #[cfg(test)]
    mod tests {
        use super::*;

        /// The constructor ran before the tests (it is in this binary
        /// too), found the option at its default 2, which no neighbour has
        /// (deprecated_eager_commit 1, purge_decommits 1), and set it to 0.
        #[test]
        fn option_is_where_we_think() {
            if std::env::var_os("MIMALLOC_ARENA_EAGER_COMMIT").is_some() {
                return;
            }
            assert_eq!(FOUND.load(Ordering::Relaxed), 2);
            // SAFETY: reading an option has no preconditions.
            let v = unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_ARENA_EAGER_COMMIT) };
            assert_eq!(v, 0);
        }
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
        .thread_stack_size(query::STACK_BYTES)
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
