//! How a command ends: without a verdict — exit 2 (bad usage or configuration) or 3 (a target
//! unreachable) — or early, on Ctrl-C; and the runtime every networked command runs on.

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
    /// Ctrl-C ended the run early.
    pub(crate) interrupted: bool,
}

impl Findings {
    /// 1 for a violation or a missed objective, whatever else; 2 for a check that could not run
    /// as configured; 1 for an interrupted run; 4 for a check that could not gather its
    /// evidence; 0 when every check held and every objective was met.
    pub(crate) fn code(self) -> ExitCode {
        if self.violated {
            ExitCode::from(1)
        } else if self.misconfigured {
            ExitCode::from(2)
        } else if self.interrupted {
            ExitCode::from(1)
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

/// The signal that ends a run early: Ctrl-C.
pub(crate) fn interrupt() -> tokio::sync::watch::Receiver<bool> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("stampede: interrupted; writing what was measured");
            let _ = tx.send(true);
        }
    });
    rx
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
        assert_eq!(code(false, false, true, true), exit(1));
        assert_eq!(code(false, false, true, false), exit(4));
        assert_eq!(code(false, false, false, false), exit(0));
    }
}
