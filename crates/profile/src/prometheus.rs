//! The Prometheus text format, as far as stampede reads it: series written `name` or
//! `name{label="value",…}` (the selectors of `[[targets.metric]]`), and the samples of a
//! stack's `/metrics` (its text exposition: `series value` lines, `#` comments). One parser
//! for both, so a selector selects exactly what the exposition spells.

/// A series: a metric name and its labels. As a selector it selects every series of the name
/// that carries all its labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Series {
    pub name: String,
    pub labels: Vec<(String, String)>,
}

impl Series {
    /// `name` or `name{label="value",…}` (quotes and backslashes escaped with `\`).
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("{text:?} is not a series selector: name or name{{label=\"value\",…}}");
        let (name, labels) = match text.split_once('{') {
            None => (text, ""),
            Some((name, rest)) => (name, rest.strip_suffix('}').ok_or_else(bad)?),
        };
        let valid_name = !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
            && !name.starts_with(|c: char| c.is_ascii_digit());
        if !valid_name {
            return Err(bad());
        }
        let labels = parse_labels(labels).ok_or_else(bad)?;
        Ok(Self { name: name.to_owned(), labels })
    }

    /// Whether this selector selects `series`: the same name, and each of its labels there.
    pub fn selects(&self, series: &Series) -> bool {
        self.name == series.name && self.labels.iter().all(|l| series.labels.contains(l))
    }

    /// The value of `label`, if the series has it.
    pub fn label(&self, label: &str) -> Option<&str> {
        self.labels.iter().find(|(name, _)| name == label).map(|(_, value)| value.as_str())
    }
}

/// The samples of a text exposition, in order; comment, blank and malformed lines skipped.
pub fn samples(text: &str) -> impl Iterator<Item = (Series, f64)> + '_ {
    text.lines().filter_map(sample)
}

/// One `series value [timestamp]` line.
fn sample(line: &str) -> Option<(Series, f64)> {
    let line = line.trim();
    if line.starts_with('#') || line.is_empty() {
        return None;
    }
    let (series, value) = match closing_brace(line) {
        Some(end) => (&line[..=end], line[end + 1..].split_whitespace().next()?),
        None => {
            let mut parts = line.split_whitespace();
            (parts.next()?, parts.next()?)
        }
    };
    let (name, labels) = match series.split_once('{') {
        None => (series, Vec::new()),
        Some((name, rest)) => (name, parse_labels(rest.strip_suffix('}')?)?),
    };
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => other.parse().ok()?,
    };
    Some((Series { name: name.to_owned(), labels }, value))
}

/// The sum of every series `selector` selects in `text`; none when it selects none.
pub fn sum(text: &str, selector: &Series) -> Option<f64> {
    let values: Vec<f64> = samples(text).filter(|(s, _)| selector.selects(s)).map(|(_, v)| v).collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

/// The value of the one series named `name` with exactly `labels`.
pub fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples(text).find_map(|(s, v)| {
        let exact = s.name == name
            && s.labels.len() == labels.len()
            && labels.iter().all(|(k, val)| s.label(k) == Some(val));
        exact.then_some(v)
    })
}

/// The cumulative buckets of histogram `name` (a series without other labels): `(le, count)`
/// in the exposition's order.
pub fn histogram(text: &str, name: &str) -> Vec<(String, u64)> {
    let bucket = format!("{name}_bucket");
    samples(text)
        .filter(|(s, _)| s.name == bucket && s.labels.len() == 1)
        .filter_map(|(s, v)| Some((s.label("le")?.to_owned(), v as u64)))
        .collect()
}

/// The index of the `}` closing a sample's label set, skipping braces inside quoted values
/// (`route="/v1/videos/{id}"`).
fn closing_brace(line: &str) -> Option<usize> {
    let open = line.find('{')?;
    if line[..open].contains(char::is_whitespace) {
        return None;
    }
    let (mut quoted, mut escaped) = (false, false);
    for (i, c) in line.char_indices().skip(open + 1) {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '}' if !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

/// `a="x",b="y"` (quotes escaped with `\`); none when malformed.
fn parse_labels(text: &str) -> Option<Vec<(String, String)>> {
    let mut labels = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let (name, after) = rest.split_once('=')?;
        let after = after.strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '\\' => {
                    let (_, escaped) = chars.next()?;
                    value.push(match escaped {
                        'n' => '\n',
                        other => other,
                    });
                }
                '"' => break i,
                other => value.push(other),
            }
        };
        labels.push((name.trim().to_owned(), value));
        rest = after[end + 1..].trim_start().trim_start_matches(',').trim_start();
    }
    Some(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# HELP x\n\
        stampede_cache_gets_total{layer=\"l1\"} 30\n\
        stampede_cache_gets_total{layer=\"miss\"} 10\n\
        stampede_cache_gets_total{layer=\"l2\"} 5\n\
        stampede_up 1\n\
        stampede_q_count{route=\"/v1/videos/{id}/status\"} 60\n\
        stampede_q_count{route=\"/v1/videos\"} 5\n\
        stampede_rejection_seconds_bucket{le=\"0.005\"} 3\n\
        stampede_rejection_seconds_bucket{le=\"+Inf\"} 4\n";

    fn selector(text: &str) -> Series {
        Series::parse(text).unwrap()
    }

    #[test]
    fn a_selector_sums_the_series_it_names() {
        assert_eq!(sum(TEXT, &selector("stampede_cache_gets_total")), Some(45.0));
        assert_eq!(sum(TEXT, &selector("stampede_cache_gets_total{layer=\"l1\"}")), Some(30.0));
        assert_eq!(sum(TEXT, &selector("stampede_up")), Some(1.0));
        assert_eq!(sum(TEXT, &selector("stampede_cache_gets_total{layer=\"l9\"}")), None);
        assert_eq!(sum(TEXT, &selector("stampede_nothing")), None);
        // Braces inside a label's value are the value's.
        assert_eq!(sum(TEXT, &selector("stampede_q_count")), Some(65.0));
        assert_eq!(sum(TEXT, &selector(r#"stampede_q_count{route="/v1/videos/{id}/status"}"#)), Some(60.0));
    }

    #[test]
    fn exact_values_and_histogram_buckets_are_read() {
        assert_eq!(value(TEXT, "stampede_up", &[]), Some(1.0));
        assert_eq!(value(TEXT, "stampede_cache_gets_total", &[]), None);
        assert_eq!(value(TEXT, "stampede_cache_gets_total", &[("layer", "l2")]), Some(5.0));
        assert_eq!(
            histogram(TEXT, "stampede_rejection_seconds"),
            [("0.005".to_owned(), 3), ("+Inf".to_owned(), 4)]
        );
    }

    #[test]
    fn a_malformed_selector_is_refused() {
        for bad in ["", "9x", "a{b}", "a{b=\"c\"", "a b", "a{b=c}"] {
            assert!(Series::parse(bad).is_err(), "{bad}");
        }
        let escaped = selector(r#"a{b="x\"y",c="z"}"#);
        assert_eq!(escaped.labels, [("b".to_owned(), "x\"y".to_owned()), ("c".to_owned(), "z".to_owned())]);
    }
}
