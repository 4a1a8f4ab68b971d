//! How a stack's answers state its rate-limit window, in each convention stacks send:
//!
//! - the IETF draft's `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` (seconds to
//!   the reset; a limit may list policies, `10, 10;w=1, 50;w=60`, the first is the one applied);
//! - the later drafts' one structured field, `RateLimit: limit=6, remaining=3, reset=41` or
//!   `RateLimit: "default";r=3;t=41`, with the policy in `RateLimit-Policy: 6;w=60` or
//!   `RateLimit-Policy: "default";q=6;w=60` (`q` the quota, `w` the window in seconds);
//! - GitHub's and Twitter's `X-RateLimit-Limit`, `X-RateLimit-Reset` as epoch seconds
//!   (Discord's with a fraction);
//! - `Retry-After`, seconds or an HTTP date, most often on a refusal only.
//!
//! A reset's format is declared (`reset_format = "delta" | "epoch" | "http-date"`) or told
//! apart value by value: a number below [`DELTA_MAX_S`] is seconds to go, one near the
//! present is an epoch time, text is an HTTP date; a value none of these fits is an error that
//! says to declare the format, never a guess.
//!
//! The structured fields are read by a tolerant tokenizer, not an RFC 8941 parser: the drafts'
//! shapes disagree (a dictionary in one, a list of items with parameters in the next) and
//! stacks send both, quoted or not; only the numbers named above are taken from them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::HeaderMap;
use serde::Deserialize;

/// The largest reset read as seconds to go when the format is not declared (about 115 days);
/// an epoch time is a number near the present (about 1.8 × 10⁹ in 2027).
pub const DELTA_MAX_S: f64 = 10_000_000.0;
/// How far in the past an epoch reset may lie and still be read as one (a stack's clock a
/// little behind, a window that just ended).
const EPOCH_PAST_S: f64 = 86_400.0;

/// How a reset is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResetFormat {
    /// Told apart value by value (see the module's documentation).
    #[default]
    Auto,
    /// Seconds until the reset.
    Delta,
    /// The reset's time, in seconds since 1970 (a fraction allowed).
    Epoch,
    /// The reset's time as an HTTP date (`Retry-After: Wed, 21 Oct 2026 07:28:00 GMT`).
    HttpDate,
}

/// Where a check reads the window: the header names it was given (none: every convention
/// above is looked for, in that order) and the reset's format.
#[derive(Debug, Clone, Copy, Default)]
pub struct Convention<'a> {
    pub limit_header: Option<&'a str>,
    pub reset_header: Option<&'a str>,
    pub reset_format: ResetFormat,
}

/// What one answer stated of its window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Stated {
    /// Requests the window admits.
    pub limit: Option<u64>,
    /// Seconds from the answer to the window's end (never negative).
    pub reset_s: Option<f64>,
    /// The window's length, when a policy states it (`w=`).
    pub window_s: Option<u64>,
}

/// The headers looked for, in order, when no limit header is named.
const LIMIT_HEADERS: [&str; 3] = ["ratelimit", "ratelimit-limit", "x-ratelimit-limit"];
/// The headers looked for, in order, when no reset header is named.
const RESET_HEADERS: [&str; 4] = ["ratelimit", "ratelimit-reset", "x-ratelimit-reset", "retry-after"];
/// Keys that name a structured field's limit, and its reset.
const LIMIT_KEYS: [&str; 2] = ["limit", "q"];
const RESET_KEYS: [&str; 2] = ["reset", "t"];

impl Convention<'_> {
    /// Reads the window an answer's `headers` state, `now` being when it arrived. An epoch or
    /// date reset is measured from the answer's own `Date` when it has one (the stack's clock,
    /// whatever stampede's says; to the second, so a reset reads up to a second long), else
    /// from `now`. An error names the header and the value whose format could not be told, or
    /// that lies further off than any window ([`DELTA_MAX_S`]).
    pub fn read(&self, headers: &HeaderMap, now: SystemTime) -> Result<Stated, String> {
        // A field sent as several lines is one list (RFC 9110 §5.3).
        let value = |name: &str| {
            let lines: Vec<&str> = headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).collect();
            (!lines.is_empty()).then(|| lines.join(", "))
        };
        let now = headers
            .get("date")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok())
            .unwrap_or(now);
        let policy = value("ratelimit-policy").map(|v| policy(&v));
        let limit = match self.limit_header {
            Some(name) => value(&name.to_ascii_lowercase()).and_then(|v| number_in(&v, &LIMIT_KEYS)),
            None => {
                LIMIT_HEADERS.iter().find_map(|name| value(name).and_then(|v| number_in(&v, &LIMIT_KEYS)))
            }
        }
        .and_then(|n| (n >= 0.0 && n.fract() == 0.0).then_some(n as u64))
        .or(policy.and_then(|p| p.0));
        let reset = match self.reset_header {
            Some(name) => {
                let name = name.to_ascii_lowercase();
                value(&name).map(|v| (name, v))
            }
            None => RESET_HEADERS.iter().find_map(|name| {
                value(name).filter(|v| reset_text(v).is_some()).map(|v| ((*name).to_owned(), v))
            }),
        };
        let reset_s = match reset {
            Some((name, v)) => match reset_text(&v) {
                Some(text) => Some(self.seconds_to(&name, text, now)?),
                None => None,
            },
            None => None,
        };
        Ok(Stated { limit, reset_s, window_s: policy.and_then(|p| p.1) })
    }

    /// Seconds from `now` to the reset `text` states, read as the declared format or told apart.
    fn seconds_to(&self, name: &str, text: &str, now: SystemTime) -> Result<f64, String> {
        let now_s = now.duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
        let number = text.parse::<f64>().ok().filter(|n| n.is_finite() && *n >= 0.0);
        let date = || httpdate::parse_http_date(text).ok();
        let until = |at: SystemTime| at.duration_since(now).unwrap_or(Duration::ZERO).as_secs_f64();
        let format = match (self.reset_format, number) {
            // `Retry-After` is seconds or an HTTP date (RFC 9110 §10.2.3), whatever is declared
            // for the other fields.
            (_, Some(_)) if name == "retry-after" => ResetFormat::Delta,
            (_, None) if name == "retry-after" => ResetFormat::HttpDate,
            (ResetFormat::Auto, Some(n)) if n < DELTA_MAX_S => ResetFormat::Delta,
            (ResetFormat::Auto, Some(n)) if n >= now_s - EPOCH_PAST_S && n <= now_s + DELTA_MAX_S => {
                ResetFormat::Epoch
            }
            (ResetFormat::Auto, Some(n)) => {
                return Err(format!(
                    "{name}: {text} is neither seconds to the reset (below {DELTA_MAX_S:.0}) nor an epoch time \
                     near now ({now_s:.0}): declare reset_format (\"delta\", \"epoch\" or \"http-date\"); read {n}"
                ));
            }
            (ResetFormat::Auto, None) if date().is_some() => ResetFormat::HttpDate,
            (ResetFormat::Auto, None) => {
                return Err(format!(
                    "{name}: {text:?} is neither seconds, an epoch time nor an HTTP date: declare reset_format \
                     or map reset_header to the header that states the reset"
                ));
            }
            (declared, _) => declared,
        };
        let seconds = match format {
            ResetFormat::Delta | ResetFormat::Epoch => {
                let n = number.ok_or_else(|| format!("{name}: {text:?} is not a number of seconds"))?;
                if format == ResetFormat::Epoch && n < now_s - EPOCH_PAST_S {
                    return Err(format!(
                        "{name}: {text} read as an epoch time is more than a day ago (now is {now_s:.0}): is the \
                         reset_format declared right?"
                    ));
                }
                if format == ResetFormat::Delta { n } else { (n - now_s).max(0.0) }
            }
            ResetFormat::HttpDate => {
                date().map(until).ok_or_else(|| format!("{name}: {text:?} is not an HTTP date"))?
            }
            ResetFormat::Auto => unreachable!("the format was told apart above"),
        };
        if seconds > DELTA_MAX_S {
            return Err(format!(
                "{name}: {text} puts the reset {seconds:.0} s away, further than any window stampede waits for"
            ));
        }
        Ok(seconds)
    }
}

/// A field's text that states a reset: the value of a reset key in a structured field, else
/// the whole value (`None` for a structured field without one).
fn reset_text(value: &str) -> Option<&str> {
    if value.contains('=') { keyed(value, &RESET_KEYS) } else { Some(value) }
}

/// The number a field states: the value of one of `keys` in a structured field, else its
/// first item (`10, 10;w=1` → 10).
fn number_in(value: &str, keys: &[&str]) -> Option<f64> {
    let text = if value.contains('=') && keys.iter().any(|k| keyed(value, &[k]).is_some()) {
        keyed(value, keys)?
    } else {
        first_item(value)
    };
    text.parse().ok()
}

/// The value of the first of `keys` found among a structured field's `key=value` pairs
/// (items separated by `,`, parameters by `;`).
fn keyed<'v>(value: &'v str, keys: &[&str]) -> Option<&'v str> {
    let pairs = || {
        value.split([',', ';']).filter_map(|part| {
            let (k, v) = part.split_once('=')?;
            Some((k.trim(), v.trim().trim_matches('"')))
        })
    };
    keys.iter().find_map(|key| pairs().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v))
}

/// A field's first item without its parameters.
fn first_item(value: &str) -> &str {
    value.split([',', ';']).next().unwrap_or("").trim().trim_matches('"')
}

/// A `RateLimit-Policy`'s first policy: its quota (a bare number or `q=`) and window (`w=`).
fn policy(value: &str) -> (Option<u64>, Option<u64>) {
    let first = value.split(',').next().unwrap_or("");
    let quota = keyed(first, &["q"]).or_else(|| Some(first_item(first))).and_then(|q| q.parse().ok());
    (quota, keyed(first, &["w"]).and_then(|w| w.parse().ok()))
}

#[cfg(test)]
mod tests {
    use reqwest::header::{HeaderName, HeaderValue};

    use super::*;

    /// 2026-12-07 02:00:00 UTC.
    const NOW_S: u64 = 1_796_608_800;

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(NOW_S)
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap()))
            .collect()
    }

    fn auto(pairs: &[(&str, &str)]) -> Result<Stated, String> {
        Convention::default().read(&headers(pairs), now())
    }

    fn stated(limit: Option<u64>, reset_s: Option<f64>, window_s: Option<u64>) -> Result<Stated, String> {
        Ok(Stated { limit, reset_s, window_s })
    }

    #[test]
    fn the_ietf_draft_fields_state_seconds_to_go() {
        let read = auto(&[("RateLimit-Limit", "6"), ("RateLimit-Remaining", "2"), ("RateLimit-Reset", "41")]);
        assert_eq!(read, stated(Some(6), Some(41.0), None));
        // A limit listing its policies: the first applies.
        let read = auto(&[("RateLimit-Limit", "10, 10;w=1, 50;w=60"), ("RateLimit-Reset", "1")]);
        assert_eq!(read, stated(Some(10), Some(1.0), None));
    }

    #[test]
    fn the_structured_field_states_limit_and_reset_as_keys() {
        let read = auto(&[("RateLimit", "limit=6, remaining=3, reset=41")]);
        assert_eq!(read, stated(Some(6), Some(41.0), None));
        // The later draft: the quota and window in the policy, remaining and reset as r and t.
        let read =
            auto(&[("RateLimit", "\"default\";r=3;t=41"), ("RateLimit-Policy", "\"default\";q=6;w=60")]);
        assert_eq!(read, stated(Some(6), Some(41.0), Some(60)));
        let read = auto(&[("RateLimit", "limit=6, remaining=3, reset=41"), ("RateLimit-Policy", "6;w=60")]);
        assert_eq!(read, stated(Some(6), Some(41.0), Some(60)));
    }

    #[test]
    fn x_ratelimit_reset_is_an_epoch_time() {
        let reset = (NOW_S + 41).to_string();
        let read = auto(&[
            ("X-RateLimit-Limit", "6"),
            ("X-RateLimit-Remaining", "0"),
            ("X-RateLimit-Reset", &reset),
        ]);
        assert_eq!(read, stated(Some(6), Some(41.0), None));
        // With a fraction (Discord), and one just past: the window has ended.
        let reset = format!("{}.5", NOW_S + 2);
        assert_eq!(auto(&[("X-RateLimit-Reset", &reset)]), stated(None, Some(2.5), None));
        let reset = (NOW_S - 3).to_string();
        assert_eq!(auto(&[("X-RateLimit-Reset", &reset)]), stated(None, Some(0.0), None));
    }

    #[test]
    fn retry_after_is_seconds_or_an_http_date() {
        assert_eq!(auto(&[("Retry-After", "41")]), stated(None, Some(41.0), None));
        let date = httpdate::fmt_http_date(now() + Duration::from_secs(41));
        assert_eq!(auto(&[("Retry-After", &date)]), stated(None, Some(41.0), None));
        // A large Retry-After is still seconds — the header is never an epoch time — and one
        // further off than any window is an error, not a wait.
        assert_eq!(auto(&[("Retry-After", "9000000")]), stated(None, Some(9e6), None));
        let err = auto(&[("Retry-After", "1e20")]).unwrap_err();
        assert!(err.contains("further than any window"), "{err}");
        // Declared epoch for the other fields, `Retry-After` stays seconds.
        let declared = Convention { reset_format: ResetFormat::Epoch, ..Convention::default() };
        assert_eq!(declared.read(&headers(&[("Retry-After", "41")]), now()), stated(None, Some(41.0), None));
    }

    #[test]
    fn a_reset_that_fits_no_format_is_an_error_naming_it() {
        let err = auto(&[("X-RateLimit-Reset", "123456789")]).unwrap_err();
        assert!(err.starts_with("x-ratelimit-reset: 123456789 is neither"), "{err}");
        assert!(err.contains("declare reset_format"), "{err}");
        let err = auto(&[("RateLimit-Reset", "soon")]).unwrap_err();
        assert!(err.contains("neither seconds, an epoch time nor an HTTP date"), "{err}");
        // Declared, the value is read as declared: a small epoch time is long past, an error.
        let declared = Convention { reset_format: ResetFormat::Epoch, ..Convention::default() };
        let err = declared.read(&headers(&[("X-RateLimit-Reset", "123456789")]), now()).unwrap_err();
        assert!(err.contains("more than a day ago"), "{err}");
        let declared = Convention { reset_format: ResetFormat::HttpDate, ..Convention::default() };
        let err = declared.read(&headers(&[("X-RateLimit-Reset", "41")]), now()).unwrap_err();
        assert!(err.contains("is not an HTTP date"), "{err}");
    }

    #[test]
    fn an_epoch_reset_is_measured_on_the_stacks_clock_when_it_sends_its_date() {
        // The stack's clock 10 s behind stampede's: its Date says so, and the reset is 41 s away
        // by its own clock.
        let date = httpdate::fmt_http_date(now() - Duration::from_secs(10));
        let reset = (NOW_S - 10 + 41).to_string();
        let read = auto(&[("Date", &date), ("X-RateLimit-Reset", &reset)]);
        assert_eq!(read, stated(None, Some(41.0), None));
        // Without a Date, stampede's clock: the same header reads 31 s.
        assert_eq!(auto(&[("X-RateLimit-Reset", &reset)]), stated(None, Some(31.0), None));
    }

    #[test]
    fn a_field_sent_as_several_lines_is_one_list() {
        let mut map = headers(&[("RateLimit", "limit=6")]);
        map.append("ratelimit", HeaderValue::from_static("remaining=3, reset=41"));
        assert_eq!(Convention::default().read(&map, now()), stated(Some(6), Some(41.0), None));
    }

    #[test]
    fn named_headers_are_read_and_nothing_else() {
        let named = Convention {
            limit_header: Some("X-Quota"),
            reset_header: Some("X-Quota-Reset"),
            ..Convention::default()
        };
        let read = named
            .read(&headers(&[("x-quota", "6"), ("x-quota-reset", "41"), ("RateLimit-Reset", "9")]), now());
        assert_eq!(read, stated(Some(6), Some(41.0), None));
        let read = named.read(&headers(&[("RateLimit-Limit", "6"), ("RateLimit-Reset", "9")]), now());
        assert_eq!(read, stated(None, None, None));
        // The structured field named as both.
        let named = Convention {
            limit_header: Some("RateLimit"),
            reset_header: Some("RateLimit"),
            ..Convention::default()
        };
        let read = named.read(&headers(&[("RateLimit", "limit=6, remaining=3, reset=41")]), now());
        assert_eq!(read, stated(Some(6), Some(41.0), None));
    }

    #[test]
    fn the_first_convention_that_states_a_reset_is_taken() {
        // A structured field without a reset falls through to the next header that has one.
        let read = auto(&[("RateLimit", "limit=6, remaining=3"), ("Retry-After", "7")]);
        assert_eq!(read, stated(Some(6), Some(7.0), None));
        let read = auto(&[("RateLimit-Reset", "5"), ("Retry-After", "7")]);
        assert_eq!(read, stated(None, Some(5.0), None));
        // Nothing stated: nothing read, no error.
        assert_eq!(auto(&[("Content-Type", "application/json")]), stated(None, None, None));
        // A negative or non-integral limit is no limit.
        assert_eq!(auto(&[("RateLimit-Limit", "-1")]), stated(None, None, None));
        assert_eq!(auto(&[("RateLimit-Limit", "2.5")]), stated(None, None, None));
    }
}
