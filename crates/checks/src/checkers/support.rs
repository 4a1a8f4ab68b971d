//! What several checkers share: how an answer becomes an outcome, JSON pointers built from
//! names, and rows inserted before a check begins.

use client::{Answer, Target, User};
use profile::template::{Recognise, RequestTemplate};
use serde_json::{Value, json};

use crate::burst;
use crate::history::{Op, Outcome, Record};

/// A write's outcome by its status alone: 2xx took effect, 4xx did not, anything else (5xx,
/// no answer) may have.
pub fn by_status(answer: &Answer) -> Outcome {
    match answer.status {
        Some(s) if (200..300).contains(&s) => Outcome::Ok,
        Some(s) if (400..500).contains(&s) => Outcome::Fail,
        _ => Outcome::Unknown,
    }
}

/// A read's outcome: 2xx found it, 404 or 410 says it is not there, anything else (a 5xx, a
/// 4xx that is no "not found", no answer) says nothing either way.
pub fn read(answer: &Answer) -> Outcome {
    match answer.status {
        Some(s) if (200..300).contains(&s) => Outcome::Ok,
        Some(404 | 410) => Outcome::Fail,
        _ => Outcome::Unknown,
    }
}

/// `Ok` when `accepted` recognises the answer, `Fail` when `refused` does (or, without
/// `refused`, when the status is 4xx), `Unknown` otherwise.
pub fn recognise(accepted: &Recognise, refused: Option<&Recognise>, answer: &Answer) -> Outcome {
    let Some(status) = answer.status else { return Outcome::Unknown };
    if accepted.matches(status, &answer.body) {
        return Outcome::Ok;
    }
    let refused = match refused {
        Some(refused) => refused.matches(status, &answer.body),
        None => (400..500).contains(&status),
    };
    if refused { Outcome::Fail } else { Outcome::Unknown }
}

/// A number at `pointer`, written as a JSON number or as a decimal string.
pub fn pointer_u64(body: &Value, pointer: &str) -> Option<u64> {
    match body.pointer(pointer)? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A string at `pointer`; numbers are spelled out (ids may be either).
pub fn pointer_string(body: &Value, pointer: &str) -> Option<String> {
    match body.pointer(pointer)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `base` extended by one reference token, escaped as RFC 6901 says (`~` → `~0`, `/` → `~1`).
pub fn pointer_child(base: &str, token: &str) -> String {
    format!("{base}/{}", token.replace('~', "~0").replace('/', "~1"))
}

/// Where rows are inserted.
#[derive(Debug, Clone, Copy)]
pub enum Through {
    /// Every instance in turn.
    All,
    /// This instance only.
    One(usize),
}

/// Inserts `count` rows for `user` with `template` (`{unique}` is `{label}-{i}`), at most
/// `concurrency` at a time, `through` the instances; an `f` op per insert, its value the id
/// read at `id` (null when there is none).
#[allow(clippy::too_many_arguments)]
pub async fn insert_rows(
    target: &Target,
    user: &User,
    template: &RequestTemplate,
    id: Option<&str>,
    count: usize,
    concurrency: usize,
    through: Through,
    label: &str,
    process: usize,
    f: &'static str,
) -> Vec<Op> {
    let mut ops = Vec::with_capacity(count);
    let mut start = 0;
    while start < count {
        let batch = concurrency.max(1).min(count - start);
        let answers = burst::release(batch, |i| {
            let target = target.clone();
            let template = template.clone();
            let n = start + i;
            let instance = match through {
                Through::All => n % target.instances(),
                Through::One(instance) => instance,
            };
            let token = user.tokens[instance].clone();
            let unique = format!("{label}-{n}");
            let id = id.map(str::to_owned);
            async move {
                let answer = target.send(instance, Some(&token), &template, &[("unique", &unique)]).await;
                let row = id.and_then(|p| pointer_string(&answer.body, &p));
                answer.op(process, instance, f, by_status(&answer), json!({ "id": row, "unique": unique }))
            }
        })
        .await;
        ops.extend(answers);
        start += batch;
    }
    ops
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The state that ends an import successfully, by default.
pub(crate) fn default_completed() -> String {
    "completed".to_owned()
}

/// The state that ends an import in failure, by default.
pub(crate) fn default_failed() -> String {
    "failed".to_owned()
}

/// How often the upstream checks act and sample, by default.
pub(crate) fn default_step_ms() -> u64 {
    50
}

#[cfg(test)]
pub mod testing {
    //! Synthetic operations for the judges' tests.

    use serde_json::Value;

    use crate::history::{Op, Outcome};

    /// An operation of `process` on `instance`, invoked at `at` ms and completed 1 ms later.
    pub fn op(
        process: usize,
        instance: usize,
        f: &'static str,
        at: u64,
        outcome: Outcome,
        value: Value,
    ) -> Op {
        Op {
            process,
            instance,
            action: f.into(),
            invoke_us: at * 1000,
            complete_us: at * 1000 + 1000,
            status: match outcome {
                Outcome::Ok => Some(200),
                Outcome::Fail => Some(404),
                Outcome::Unknown => None,
            },
            outcome,
            value,
        }
    }
}
