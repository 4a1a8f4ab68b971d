//! The `stampede` binary: argument parsing and wiring only.

mod args;
mod capacity;
mod check;
mod descriptors;
mod embedded;
mod exit;
mod fake_upstream;
mod load;
mod meta;
mod profiles;
mod progress;
mod proxy;
mod report_command;
mod run;
mod schedule;
mod serve;
mod supervised;
mod target;
mod tuned;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit codes of `check` and `run`, printed under their `--help` and the top level's.
const EXIT_CODES: &str = "Exit codes: 0 every check held and every target was met; 1 a check \
was violated or a target missed (it wins over everything); 2 bad usage or configuration; 3 a \
target unreachable; 4 a check inconclusive: it could not gather the evidence it needs (never \
reported as held; --allow-inconclusive NAME lets one pass); 130 stopped by SIGINT (Ctrl-C) or \
SIGTERM, every report written with what was measured (a second signal stops at once)";

/// Exit codes of `load` and `capacity`, which judge targets and run no check.
const LOAD_EXIT_CODES: &str = "Exit codes: 0 every target was met (capacity: a step was \
sustainable); 1 a target missed (capacity: no step sustainable); 2 bad usage or configuration; \
3 a target unreachable; 130 stopped by SIGINT (Ctrl-C) or SIGTERM, every report written with what \
was measured (a second signal stops at once)";

/// A load-testing and correctness harness for a video-platform backend stack.
#[derive(Debug, Parser)]
#[command(name = "stampede", version = meta::version(), about, after_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List the reference components, their invariants and the mutants the checks must catch.
    Components {
        /// Print one mutant per line as `<module>::mutants::<Type>`, for scripts.
        #[arg(long)]
        mutants: bool,
    },
    /// Serve the reference stack: the HTTP API over the reference components.
    Serve(Box<serve::ServeArgs>),
    /// Serve the fake YouTube/TikTok upstream alone: point your stack's upstream base URL at
    /// it and give its control API to `check --upstream-control`.
    FakeUpstream(fake_upstream::FakeUpstreamArgs),
    /// Serve fault proxies with Toxiproxy's HTTP API, for `run --target … --toxiproxy URL`
    /// against a stack stampede did not start.
    Proxy(proxy::ProxyArgs),
    /// Run the black-box invariant checks of a target profile against a stack.
    #[command(after_help = EXIT_CODES)]
    Check(Box<check::CheckArgs>),
    /// The main job: the checks, then the load, the targets judged, the reports written.
    #[command(after_help = EXIT_CODES)]
    Run(Box<run::RunArgs>),
    /// Offer the profile's load mix to a stack, time every response, judge the targets.
    #[command(after_help = LOAD_EXIT_CODES)]
    Load(Box<load::LoadArgs>),
    /// Step the load up until a target breaks: the highest sustainable step, the Universal
    /// Scalability Law fitted to the steps, the instances a users goal needs.
    #[command(after_help = LOAD_EXIT_CODES)]
    Capacity(Box<capacity::CapacityArgs>),
    /// Work on written reports: merge several generators', compare with a baseline, render.
    #[command(subcommand)]
    Report(report_command::ReportCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    descriptors::raise();
    match cli.command {
        Command::Check(args) => return check::run(*args),
        Command::Load(args) => return load::run(*args),
        Command::Capacity(args) => return capacity::run(*args),
        Command::Run(args) => return run::run(*args),
        Command::Report(command) => return report_command::run(command),
        Command::Serve(args) => {
            let args = match serve::with_profile(*args) {
                Ok(args) => args,
                Err(e) => {
                    eprintln!("stampede serve: {e:#}");
                    return ExitCode::from(2);
                }
            };
            return match serve::run(args) {
                Ok(code) => code,
                Err(e) => {
                    eprintln!("stampede serve: {e:#}");
                    ExitCode::FAILURE
                }
            };
        }
        Command::Proxy(args) => {
            return match proxy::run(args) {
                Ok(code) => code,
                Err(e) => {
                    eprintln!("stampede proxy: {e:#}");
                    ExitCode::FAILURE
                }
            };
        }
        Command::FakeUpstream(args) => {
            return match fake_upstream::run(args) {
                Ok(code) => code,
                Err(e) => {
                    eprintln!("stampede fake-upstream: {e:#}");
                    ExitCode::FAILURE
                }
            };
        }
        Command::Components { mutants: true } => {
            for component in reference::catalog::COMPONENTS {
                for mutant in component.mutants {
                    println!("{mutant}");
                }
            }
        }
        Command::Components { mutants: false } => {
            for component in reference::catalog::COMPONENTS {
                println!("#{:<2} {:<24} {}", component.number, component.name, component.invariant);
                for mutant in component.mutants {
                    println!("    mutant {mutant}");
                }
            }
        }
    }
    ExitCode::SUCCESS
}
