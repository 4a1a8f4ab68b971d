//! `[[check]]` tables as an open set: the profile knows each check's name and kind and where
//! it is in the file; what a kind's table holds is the kind's own business (the `checks`
//! crate reads it with [`CheckTable::parse`]). Errors inside a table name the line of the
//! field, not of the first `[[check]]`.

use std::sync::Arc;

use serde::de::DeserializeOwned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use crate::error::{ProfileError, Source, Step};

/// One `[[check]]` of a profile, not yet read as its kind's configuration.
#[derive(Debug, Clone)]
pub struct CheckTable {
    /// Its `name`, unique in the profile.
    pub name: String,
    /// Its `kind`.
    pub kind: String,
    /// Its index among the profile's `[[check]]`s.
    index: usize,
    source: Arc<Source>,
}

impl CheckTable {
    /// The `index`th `[[check]]` of `root`; its name and kind must be strings.
    pub(crate) fn read(source: &Arc<Source>, root: &DeTable<'_>, index: usize) -> Result<Self, ProfileError> {
        let table = check_table(root, index).ok_or_else(|| {
            source.error_at(&[Step::Key("check"), Step::Index(index)], "a [[check]] must be a table")
        })?;
        let text = |key: &str| -> Result<String, ProfileError> {
            match table.get(key).map(|v| v.get_ref()) {
                Some(DeValue::String(s)) => Ok(s.to_string()),
                Some(_) => Err(source.error_at(
                    &[Step::Key("check"), Step::Index(index), Step::Key(key)],
                    format!("{key} must be a string"),
                )),
                None => Err(source.error_at(
                    &[Step::Key("check"), Step::Index(index)],
                    format!("this [[check]] has no {key}"),
                )),
            }
        };
        Ok(Self { name: text("name")?, kind: text("kind")?, index, source: Arc::clone(source) })
    }

    /// The table read as `T`, without its `kind` (a kind's configuration has no field for
    /// it). Unknown fields, missing ones and wrong types are errors at the field's line.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, ProfileError> {
        let root = DeTable::parse(&self.source.text).map_err(|e| self.source.toml_error(&e))?;
        let mut root = root.into_inner();
        let Some(check) = root.get_mut("check") else { return Err(self.invalid("the [[check]] is gone")) };
        let DeValue::Array(items) = check.get_mut() else {
            return Err(self.invalid("check is not an array"));
        };
        if self.index >= items.len() {
            return Err(self.invalid("the [[check]] is gone"));
        }
        let placeholder = toml::Spanned::new(0..0, DeValue::Boolean(false));
        let mut item = std::mem::replace(&mut items.as_mut()[self.index], placeholder);
        let span = item.span();
        if let DeValue::Table(table) = item.get_mut() {
            table.remove("kind");
        }
        let item = toml::Spanned::new(span, item.into_inner());
        T::deserialize(ValueDeserializer::from(item)).map_err(|e| {
            // A missing field's error has no span of its own: the table's header stands in.
            if e.span().is_none() {
                self.invalid(crate::error::readable(e.message().trim_end()))
            } else {
                self.source.toml_error(&e)
            }
        })
    }

    /// `message` about the check as a whole, at its first line.
    pub fn invalid(&self, message: impl Into<String>) -> ProfileError {
        self.invalid_at(&[], message)
    }

    /// `message` about the field at `path` in the table (`["memory", "max_bytes"]`), at its
    /// line; at the check's `[[check]]` line when it is not there.
    pub fn invalid_at(&self, path: &[&str], message: impl Into<String>) -> ProfileError {
        let mut steps = vec![Step::Key("check"), Step::Index(self.index)];
        steps.extend(path.iter().map(|key| Step::Key(key)));
        let message = format!("check {:?}: {}", self.name, message.into());
        self.source.error(self.source.locate(&steps), message)
    }
}

fn check_table<'a, 'i>(root: &'a DeTable<'i>, index: usize) -> Option<&'a DeTable<'i>> {
    match root.get("check")?.get_ref() {
        DeValue::Array(items) => items.get(index)?.get_ref().as_table(),
        _ => None,
    }
}
