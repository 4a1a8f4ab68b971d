//! The request template language: a method, a path, headers and a JSON body with
//! `{placeholders}` that whoever sends the request fills; and how an answer is recognised.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// One request, with `{placeholders}` in its path, header values and body strings (object
/// keys included).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestTemplate {
    pub method: String,
    pub path: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Sent as JSON.
    #[serde(default, deserialize_with = "json")]
    pub body: Option<Value>,
}

/// A TOML value read as the JSON value it spells.
fn json<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    let value = Option::<toml::Value>::deserialize(d)?;
    value.map(|v| serde_json::to_value(v).map_err(serde::de::Error::custom)).transpose()
}

/// How an answer is recognised: any of `status`, and, when given, the JSON value at `pointer`
/// equal to `equals` (present and not null without `equals`).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Recognise {
    #[serde(default)]
    pub status: Vec<u16>,
    #[serde(default)]
    pub pointer: Option<String>,
    #[serde(default, deserialize_with = "json")]
    pub equals: Option<Value>,
}

impl Recognise {
    pub fn matches(&self, status: u16, body: &Value) -> bool {
        if !self.status.is_empty() && !self.status.contains(&status) {
            return false;
        }
        match (&self.pointer, &self.equals) {
            (Some(pointer), Some(expected)) => body.pointer(pointer) == Some(expected),
            (Some(pointer), None) => body.pointer(pointer).is_some_and(|v| !v.is_null()),
            _ => true,
        }
    }
}

impl RequestTemplate {
    /// The method is HTTP's, the path absolute, and every `{placeholder}` one of `known`.
    pub fn validate(&self, known: &[&str]) -> Result<(), String> {
        let method = self.method.to_ascii_uppercase();
        if !["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method.as_str()) {
            return Err(format!("method {:?} is not GET, POST, PUT, PATCH or DELETE", self.method));
        }
        if !self.path.starts_with('/') {
            return Err(format!("path {:?} must start with /", self.path));
        }
        for (name, value) in &self.headers {
            // RFC 9110: a name is a token; a value has no control character but tab.
            let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
            if name.is_empty() || !name.bytes().all(token) {
                return Err(format!(
                    "header name {name:?} is not an HTTP token (letters, digits, !#$%&'*+-.^_`|~)"
                ));
            }
            if value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
                return Err(format!(
                    "header {name}: value {value:?} holds a control character (a line break?)"
                ));
            }
        }
        self.texts().iter().try_for_each(|text| validate_text(text, known))
    }

    /// Whether `{name}` appears anywhere in the template.
    pub fn uses(&self, name: &str) -> bool {
        self.texts().iter().any(|t| placeholders(t).any(|p| p == name))
    }

    /// Every text a placeholder may be in: the path, the header values, the body's strings.
    fn texts(&self) -> Vec<String> {
        let mut texts = vec![self.path.clone()];
        texts.extend(self.headers.values().cloned());
        if let Some(body) = &self.body {
            collect_strings(body, &mut texts);
        }
        texts
    }
}

/// Every `{placeholder}` in `text` is one of `known`.
pub fn validate_text(text: &str, known: &[&str]) -> Result<(), String> {
    for name in placeholders(text) {
        if !known.contains(&name) {
            return Err(format!(
                "unknown placeholder {{{name}}} in {text:?}; known: {}",
                known.iter().map(|p| format!("{{{p}}}")).collect::<Vec<_>>().join(", ")
            ));
        }
    }
    Ok(())
}

/// Every `{placeholder}` in the strings of `value` (object keys included) is one of `known`.
pub(crate) fn validate_json(value: &Value, known: &[&str]) -> Result<(), String> {
    let mut texts = Vec::new();
    collect_strings(value, &mut texts);
    texts.iter().try_for_each(|text| validate_text(text, known))
}

/// `pointer` is a JSON pointer: empty (the whole document) or starting with `/`.
pub fn validate_pointer(pointer: &str) -> Result<(), String> {
    if pointer.is_empty() || pointer.starts_with('/') {
        Ok(())
    } else {
        Err(format!("{pointer:?} is not a JSON pointer: it must be empty or start with /"))
    }
}

fn collect_strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| collect_strings(v, out)),
        Value::Object(map) => map.iter().for_each(|(k, v)| {
            out.push(k.clone());
            collect_strings(v, out)
        }),
        _ => {}
    }
}

fn placeholders(text: &str) -> impl Iterator<Item = &str> {
    text.split('{').skip(1).filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
}

/// Fills `{name}` placeholders from `vars`.
pub fn fill(text: &str, vars: &[(&str, &str)]) -> String {
    let mut out = text.to_owned();
    for (name, value) in vars {
        out = out.replace(&format!("{{{name}}}"), value);
    }
    out
}

/// Fills every string in a JSON body, object keys included.
pub fn fill_json(value: &Value, vars: &[(&str, &str)]) -> Value {
    match value {
        Value::String(s) => Value::String(fill(s, vars)),
        Value::Array(items) => Value::Array(items.iter().map(|v| fill_json(v, vars)).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (fill(k, vars), fill_json(v, vars))).collect())
        }
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_keys_are_filled_like_values() {
        let body = serde_json::json!({ "fields": { "f-{seq}": "{seq}" } });
        let filled = fill_json(&body, &[("seq", "7")]);
        assert_eq!(filled, serde_json::json!({ "fields": { "f-7": "7" } }));
    }

    #[test]
    fn unknown_placeholders_and_methods_are_refused() {
        let template = RequestTemplate {
            method: "post".into(),
            path: "/v1/{id}".into(),
            headers: BTreeMap::from([("x-a".into(), "{run}".into())]),
            body: Some(serde_json::json!({ "{key}": ["{value}"] })),
        };
        template.validate(&["id", "run", "key", "value"]).unwrap();
        for missing in ["id", "run", "key", "value"] {
            let known: Vec<&str> =
                ["id", "run", "key", "value"].into_iter().filter(|p| *p != missing).collect();
            let error = template.validate(&known).unwrap_err();
            assert!(error.contains(&format!("{{{missing}}}")), "{error}");
        }
        let error = RequestTemplate { method: "BREW".into(), ..template.clone() }.validate(&[]).unwrap_err();
        assert!(error.contains("BREW"), "{error}");
        assert!(template.uses("key") && !template.uses("nope"));
    }

    #[test]
    fn a_header_no_request_could_carry_is_refused() {
        let with = |name: &str, value: &str| RequestTemplate {
            method: "GET".into(),
            path: "/".into(),
            headers: BTreeMap::from([(name.to_owned(), value.to_owned())]),
            body: None,
        };
        with("x-trace", "t-1\tok").validate(&[]).unwrap();
        for (name, value, says) in [
            ("bad header", "v", "not an HTTP token"),
            ("", "v", "not an HTTP token"),
            ("x:y", "v", "not an HTTP token"),
            ("x-name", "a\nb", "control character"),
            ("x-name", "a\r\nHost: evil", "control character"),
        ] {
            let error = with(name, value).validate(&[]).unwrap_err();
            assert!(error.contains(says), "{name:?}: {value:?}: {error}");
        }
    }
}
