//! How a command ends: without a verdict — exit 2 (bad usage or configuration) or 3 (a target
//! unreachable) — or early, on SIGINT (Ctrl-C) or SIGTERM (exit 130); and the runtime every
//! networked command runs on.

use std::future::Future;
use std::process::ExitCode;

use client::TargetError;

/// Why a command could not reach a verdict.
pub(crate) enum Failure {
    /// Exit 2: the input is wrong (flags, profile, a file), said with its context.
    Usage(anyhow::Error),
    /// Exit 3: a target (or its upstream control API) did not answer.
    Unreachable(String),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Usage(e)
    }
}

impl From<TargetError> for Failure {
    fn from(e: TargetError) -> Self {
        Failure::Unreachable(e.to_string())
    }
}

impl From<load::LoadError> for Failure {
    fn from(e: load::LoadError) -> Self {
        match e {
            load::LoadError::Target(e @ TargetError::Unreachable { .. }) => {
                Failure::Unreachable(e.to_string())
            }
            load::LoadError::Configuration(e) => Failure::Usage(anyhow::anyhow!(e)),
            e => Failure::Usage(anyhow::Error::new(e)),
        }
    }
}

/// What a run found, for its exit code.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Findings {
    /// A check violated, or an objective missed.
    pub(crate) violated: bool,
    /// A check could not run as configured.
    pub(crate) misconfigured: bool,
    /// A check inconclusive that the run was not told may be.
    pub(crate) inconclusive: bool,
    /// SIGINT or SIGTERM ended the run early.
    pub(crate) interrupted: bool,
}

/// The exit code of a run a signal ended early, as shells report a command SIGINT stopped.
pub(crate) const INTERRUPTED: u8 = 130;

impl Findings {
    /// 1 for a violation or a missed objective, whatever else (found before a signal, it is
    /// still found); 2 for a check that could not run as configured; 130 for a run a signal
    /// ended early; 4 for a check that could not gather its evidence; 0 when every check held
    /// and every objective was met.
    pub(crate) fn code(self) -> ExitCode {
        if self.violated {
            ExitCode::from(1)
        } else if self.misconfigured {
            ExitCode::from(2)
        } else if self.interrupted {
            ExitCode::from(INTERRUPTED)
        } else if self.inconclusive {
            ExitCode::from(4)
        } else {
            ExitCode::SUCCESS
        }
    }
}

/// Runs `command`'s future on a multi-threaded runtime: its exit code, or 2 or 3 with the
/// failure said on stderr as `stampede <command>: …`.
pub(crate) fn execute(command: &str, future: impl Future<Output = Result<ExitCode, Failure>>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("stampede {command}: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(future) {
        Ok(code) => code,
        Err(Failure::Usage(e)) => {
            eprintln!("stampede {command}: {e:#}");
            ExitCode::from(2)
        }
        Err(Failure::Unreachable(e)) => {
            eprintln!("stampede {command}: {e}");
            ExitCode::from(3)
        }
    }
}

/// What ended the run early, for its report: set by [`interrupt`] at the first signal.
static SIGNALLED: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();

/// How a report says why the run ended early: `interrupted (Ctrl-C, SIGINT)` or
/// `interrupted (SIGTERM)`.
pub(crate) fn interrupted_by() -> String {
    format!("interrupted ({})", SIGNALLED.get().copied().unwrap_or("Ctrl-C, SIGINT"))
}

/// The signals that end a run early: SIGINT (Ctrl-C) and SIGTERM (what Kubernetes, systemd
/// and CI runners send to cancel). The first stops the run gracefully — what was measured is
/// judged and every report written, and the exit code is [`INTERRUPTED`]; a second exits at
/// once with it, writing nothing more.
pub(crate) fn interrupt() -> tokio::sync::watch::Receiver<bool> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let mut signals = match Signals::new() {
            Ok(signals) => signals,
            Err(e) => {
                eprintln!("stampede: cannot listen for signals ({e}); Ctrl-C will stop at once");
                return;
            }
        };
        let Some(name) = signals.next().await else { return };
        let _ = SIGNALLED.set(name);
        eprintln!("stampede: {name}: stopping and writing what was measured (again to stop at once)");
        let _ = tx.send(true);
        if let Some(name) = signals.next().await {
            eprintln!("stampede: {name} again: stopped at once");
            std::process::exit(i32::from(INTERRUPTED));
        }
    });
    rx
}

/// SIGINT and SIGTERM as they come.
struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Self> {
        Ok(Self {
            #[cfg(unix)]
            term: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?,
        })
    }

    /// The next signal's name; none when they can no longer be received.
    async fn next(&mut self) -> Option<&'static str> {
        #[cfg(unix)]
        {
            tokio::select! {
                c = tokio::signal::ctrl_c() => c.ok().map(|()| "Ctrl-C, SIGINT"),
                t = self.term.recv() => t.map(|()| "SIGTERM"),
            }
        }
        #[cfg(not(unix))]
        {
            tokio::signal::ctrl_c().await.ok().map(|()| "Ctrl-C")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Findings;

    fn code(violated: bool, misconfigured: bool, inconclusive: bool, interrupted: bool) -> String {
        format!("{:?}", Findings { violated, misconfigured, inconclusive, interrupted }.code())
    }

    #[test]
    fn a_violation_wins_then_configuration_then_interruption_then_inconclusive() {
        let exit = |n: u8| format!("{:?}", std::process::ExitCode::from(n));
        assert_eq!(code(true, true, true, true), exit(1));
        assert_eq!(code(false, true, true, true), exit(2));
        assert_eq!(code(false, false, true, true), exit(130));
        assert_eq!(code(false, false, true, false), exit(4));
        assert_eq!(code(false, false, false, false), exit(0));
    }
}
