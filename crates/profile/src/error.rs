//! Why a profile was refused, and where: the file, and for a mistake in it the line, the
//! column and the source line itself, so the field is in view.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::de::{DeTable, DeValue};

/// A profile that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// The OS error is in the message and not a `source`: a chain printed whole (`{:#}`) says
    /// it once.
    #[error("cannot read profile {}: {error}", path.display())]
    Read { path: PathBuf, error: std::io::Error },
    #[error("{0}")]
    Invalid(Box<Invalid>),
}

/// A mistake in a profile: what is wrong, and where.
#[derive(Debug)]
pub struct Invalid {
    pub path: PathBuf,
    /// 1-based; none when the mistake is the file's as a whole.
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
    /// The line of the file the mistake is on.
    pub source_line: Option<String>,
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let (Some(line), Some(column)) = (self.line, self.column) {
            write!(f, ", line {line}, column {column}")?;
        }
        write!(f, ": {}", self.message)?;
        if let (Some(line), Some(text)) = (self.line, &self.source_line) {
            write!(f, "\n  {line} | {text}")?;
        }
        Ok(())
    }
}

/// A mistake found by validation: the field it is at (as far as the path goes), and what is
/// wrong.
pub type Located = (Vec<Step<'static>>, String);

/// One step of a path into the document: a key, or an index into an array of tables.
#[derive(Debug, Clone, Copy)]
pub enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

/// A profile's text and where it came from: what errors are rendered against.
#[derive(Debug)]
pub(crate) struct Source {
    pub path: PathBuf,
    pub text: String,
}

impl Source {
    pub(crate) fn new(path: &Path, text: &str) -> Self {
        Self { path: path.to_owned(), text: text.to_owned() }
    }

    /// `message` at `span` (a byte range of the text); the whole file's when none.
    pub(crate) fn error(&self, span: Option<Range<usize>>, message: impl Into<String>) -> ProfileError {
        let message = message.into();
        let Some(span) = span else {
            return ProfileError::Invalid(Box::new(Invalid {
                path: self.path.clone(),
                line: None,
                column: None,
                message,
                source_line: None,
            }));
        };
        let start = span.start.min(self.text.len());
        let line_start = self.text[..start].rfind('\n').map_or(0, |i| i + 1);
        let line = self.text[..line_start].matches('\n').count() + 1;
        let column = self.text[line_start..start].chars().count() + 1;
        let source_line = self.text[line_start..].lines().next().unwrap_or("").to_owned();
        ProfileError::Invalid(Box::new(Invalid {
            path: self.path.clone(),
            line: Some(line),
            column: Some(column),
            message,
            source_line: Some(source_line),
        }))
    }

    /// A TOML parser's or deserializer's error, at the span it names.
    /// A value's error names its field (the key before the value's span on its line):
    /// `refused: invalid type: map, expected a sequence`.
    pub(crate) fn toml_error(&self, error: &toml::de::Error) -> ProfileError {
        let message = readable(error.message().trim_end());
        let message = message.as_str();
        match error.span().and_then(|span| self.key_before(span.start)) {
            Some(key) if !message.contains(&format!("`{key}`")) => {
                self.error(error.span(), format!("{key}: {message}"))
            }
            _ => self.error(error.span(), message),
        }
    }

    /// The key whose value starts at `at`: on `at`'s line, the last `key =` before it.
    fn key_before(&self, at: usize) -> Option<&str> {
        let line_start = self.text.get(..at)?.rfind('\n').map_or(0, |i| i + 1);
        let before = &self.text[line_start..at];
        let (keyed, _) = before.rsplit_once('=')?;
        let key = keyed.rsplit(['{', ',']).next()?.trim().trim_matches('"');
        (!key.is_empty() && !key.contains(char::is_whitespace)).then_some(key)
    }

    /// `message` at the field `path` names (the key's span), or at the deepest part of the
    /// path that exists.
    pub(crate) fn error_at(&self, path: &[Step<'_>], message: impl Into<String>) -> ProfileError {
        self.error(self.locate(path), message)
    }

    /// The span of the key or array element at `path`, or of the deepest part of it that
    /// exists; none for an empty path or a text that does not parse.
    pub(crate) fn locate(&self, path: &[Step<'_>]) -> Option<Range<usize>> {
        let root = DeTable::parse(&self.text).ok()?;
        let mut found = None;
        let mut value: Option<&DeValue<'_>> = None;
        let mut table: Option<&DeTable<'_>> = Some(root.get_ref());
        for step in path {
            match (*step, table, value) {
                (Step::Key(key), Some(t), _) => {
                    let Some((k, v)) = t.get_key_value(key) else { break };
                    found = Some(k.span());
                    value = Some(v.get_ref());
                    table = v.get_ref().as_table();
                }
                (Step::Index(i), _, Some(DeValue::Array(items))) => {
                    let Some(item) = items.get(i) else { break };
                    found = Some(item.span());
                    value = Some(item.get_ref());
                    table = item.get_ref().as_table();
                }
                _ => break,
            }
        }
        found
    }
}

/// A deserializer's message in words a person reads: Rust's type names (`expected usize`,
/// `floating point \`2.5\``) said as what the field takes and what it was given.
pub fn readable(message: &str) -> String {
    const WORDS: &[(&str, &str)] = &[
        ("expected usize", "expected a whole number (0 or more)"),
        ("expected u64", "expected a whole number (0 or more)"),
        ("expected u32", "expected a whole number (0 or more)"),
        ("expected u16", "expected a whole number from 0 to 65535"),
        ("expected u8", "expected a whole number from 0 to 255"),
        ("expected i64", "expected a whole number"),
        ("expected i32", "expected a whole number"),
        ("expected f64", "expected a number"),
        ("expected f32", "expected a number"),
        ("invalid type: floating point", "invalid type: the number"),
        ("invalid type: integer", "invalid type: the whole number"),
        ("invalid type: string", "invalid type: the text"),
        ("invalid type: boolean", "invalid type: the boolean"),
        ("invalid type: map", "invalid type: a table"),
        ("invalid type: sequence", "invalid type: an array"),
        ("invalid value: integer", "invalid value: the whole number"),
        ("expected a sequence", "expected an array"),
        ("expected a map", "expected a table"),
    ];
    let mut text = message.to_owned();
    for (from, to) in WORDS {
        // Whole words only: `expected u16` is not `expected u1`'s.
        let mut at = 0;
        while let Some(found) = text[at..].find(from) {
            let start = at + found;
            let end = start + from.len();
            let whole = text[end..].chars().next().is_none_or(|c| !c.is_ascii_alphanumeric());
            if whole {
                text.replace_range(start..end, to);
                at = start + to.len();
            } else {
                at = end;
            }
        }
    }
    text
}

#[cfg(test)]
mod readable_tests {
    use super::readable;

    #[test]
    fn rust_type_names_become_words() {
        assert_eq!(
            readable("invalid type: floating point `2.5`, expected usize"),
            "invalid type: the number `2.5`, expected a whole number (0 or more)"
        );
        assert_eq!(
            readable("invalid type: string \"fast\", expected f64"),
            "invalid type: the text \"fast\", expected a number"
        );
        assert_eq!(
            readable("invalid type: map, expected a sequence"),
            "invalid type: a table, expected an array"
        );
        assert_eq!(readable("missing field `name`"), "missing field `name`");
    }
}
