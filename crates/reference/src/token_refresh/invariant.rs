//! The token-refresh invariants as checks over what the upstream saw.

use crate::clock::Millis;
use crate::invariant::{Judgement, Violation};

use super::COMPONENT;

/// In a period in which the schedulers ticked, the upstream granted exactly one refresh of
/// `token`.
pub fn one_refresh_per_period(token: &str, period: u64, granted: usize) -> Judgement {
    match granted {
        1 => Ok(()),
        0 => Err(Violation::new(
            COMPONENT,
            "missed-refresh",
            format!("token {token} was not refreshed in period {period} although the schedulers ticked"),
        )),
        n => Err(Violation::new(
            COMPONENT,
            "duplicate-refresh",
            format!("token {token} was refreshed {n} times in period {period}, expected once"),
        )),
    }
}

/// An upstream call made at `used_at` with `access_token`, which the upstream issued to
/// expire at `expires_at` (`None`: never issued), carried a live token.
pub fn token_fresh(
    token: &str,
    access_token: &str,
    expires_at: Option<Millis>,
    used_at: Millis,
) -> Judgement {
    match expires_at {
        Some(at) if used_at < at => Ok(()),
        Some(at) => Err(Violation::new(
            COMPONENT,
            "expired-token-used",
            format!("token {token} called the upstream with {access_token} at {used_at}, expired at {at}"),
        )),
        None => Err(Violation::new(
            COMPONENT,
            "unknown-token-used",
            format!("token {token} called the upstream with {access_token}, which it never issued"),
        )),
    }
}
