//! Parsers of command-line values several commands share.

use std::time::Duration;

/// `60s`, `5m`, `1h30m`, `1500ms`: a duration, never negative.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let signed: jiff::SignedDuration =
        text.parse().map_err(|e| format!("{text:?} is not a duration like 60s, 5m or 1h: {e}"))?;
    Duration::try_from(signed).map_err(|_| format!("{text:?} is negative"))
}
