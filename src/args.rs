//! Parsers of command-line values several commands share.

use std::time::Duration;

/// `60s`, `5m`, `1h30m`, `1500ms`: a duration, never negative.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let signed: jiff::SignedDuration =
        text.parse().map_err(|e| format!("{text:?} is not a duration like 60s, 5m or 1h: {e}"))?;
    Duration::try_from(signed).map_err(|_| format!("{text:?} is negative"))
}

/// The largest rate `--rate` and `--ramp-to` take: a million requests a second is past what
/// one generator offers by two orders of magnitude.
const MAX_RATE: f64 = 1_000_000.0;

/// The longest `--duration`: a week.
const MAX_DURATION_S: f64 = 7.0 * 24.0 * 3600.0;

/// A finite number above 0 and at most `max`, for the flag `what` names.
fn positive(text: &str, what: &str, unit: &str, max: f64) -> Result<f64, String> {
    let value: f64 = text.trim().parse().map_err(|_| format!("{text:?} is not a number of {unit}"))?;
    if !value.is_finite() || value <= 0.0 {
        return Err(format!("{what} must be a number of {unit} above 0, not {text}"));
    }
    if value > max {
        return Err(format!("{what} must be at most {max} {unit}, not {text}"));
    }
    Ok(value)
}

/// `--rate`, `--ramp-to`: requests a second, above 0 and at most a million.
pub(crate) fn parse_rate(text: &str) -> Result<f64, String> {
    positive(text, "the rate", "requests per second", MAX_RATE)
}

/// `--duration`: seconds of load, above 0 and at most a week.
pub(crate) fn parse_seconds(text: &str) -> Result<f64, String> {
    positive(text, "the duration", "seconds", MAX_DURATION_S)
}

/// `--run-id`: a name for the run's directory under `--reports` (and its users and keys on a
/// shared stack): letters, digits, `.`, `_`, `-`, at most 128, not `.` or `..` — no path.
pub(crate) fn parse_run_id(text: &str) -> Result<String, String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if text.is_empty() || text == "." || text == ".." || text.len() > 128 || !text.chars().all(allowed) {
        return Err(format!(
            "{text:?} is no run id: letters, digits, '.', '_' and '-', at most 128 (it names a directory under --reports)"
        ));
    }
    Ok(text.to_owned())
}

/// `--target`, `--upstream-control`, `--toxiproxy`: an `http://` or `https://` URL with a host.
pub(crate) fn parse_url(text: &str) -> Result<String, String> {
    let trimmed = text.trim();
    if !trimmed.contains("://") {
        return Err(format!("{text:?} has no scheme: add http:// (http://{trimmed})"));
    }
    let url = reqwest::Url::parse(trimmed).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{text:?}: stampede speaks http:// and https://, not {}://", url.scheme()));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{text:?} names no host"));
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_id_names_one_directory_under_reports() {
        for good in ["plain", "load-2", "gate-123-1", "20261208T034500Z-0a1b", "v1.2_x"] {
            assert_eq!(parse_run_id(good).as_deref(), Ok(good));
        }
        for bad in ["", ".", "..", "../outside", "a/b", "a b", "x\ny", &"r".repeat(129)] {
            assert!(parse_run_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rates_and_durations_are_finite_above_zero_and_bounded() {
        assert_eq!(parse_rate("50"), Ok(50.0));
        assert_eq!(parse_rate("0.5"), Ok(0.5));
        for bad in ["-5", "0", "inf", "NaN", "1e12", "fast"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_rate("-5").unwrap_err(),
            "the rate must be a number of requests per second above 0, not -5"
        );
        assert_eq!(parse_seconds("60"), Ok(60.0));
        assert!(parse_seconds("1e9").unwrap_err().contains("at most 604800 seconds"));
    }

    #[test]
    fn a_url_needs_its_scheme_and_a_host() {
        assert_eq!(parse_url(" http://127.0.0.1:8080 "), Ok("http://127.0.0.1:8080".to_owned()));
        assert_eq!(
            parse_url("127.0.0.1:1").unwrap_err(),
            "\"127.0.0.1:1\" has no scheme: add http:// (http://127.0.0.1:1)"
        );
        assert!(parse_url("ftp://host").unwrap_err().contains("not ftp://"));
        assert!(parse_url("http://").is_err());
    }
}
