//! The dry run (`stampede check --dry-run`): each request of a check sent once to every
//! instance, and what came back shown as it is — method, path, status, the answer's first bytes
//! as text, the rate-limit and paging headers — with what each of the check's pointers found in
//! it and whether each recogniser matched. Nothing is judged: it is what a user runs while
//! mapping a stack to a profile, before the first real check.

use std::fmt::Write as _;

use client::{Target, TargetError, preview};
use profile::template::fill;
use serde_json::Value;

use crate::checkers::Check;
use crate::checkers::support::pointer_string;

/// How many bytes of an answer are shown.
pub const PREVIEW_BYTES: usize = 200;
/// Headers shown when an answer carries them: the window a limiter states, the next page.
const SHOWN_HEADERS: [&str; 10] = [
    "ratelimit",
    "ratelimit-limit",
    "ratelimit-remaining",
    "ratelimit-reset",
    "ratelimit-policy",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "retry-after",
    "link",
];

/// What one check's dry run saw.
#[derive(Debug, Clone, Default)]
pub struct DryRun {
    /// The report, line by line.
    pub lines: Vec<String>,
    /// Requests that got an answer of any status, and those that got none.
    pub answered: usize,
    pub unanswered: usize,
    /// Pointers found in no answer.
    pub missed: Vec<String>,
}

/// Sends each request of `check` once to every instance, in the order the kind lists them; a
/// request with `{id}` gets the first id a pointer named `id` (or `project_id`) found before it.
pub async fn dry_run(target: &Target, check: &Check) -> Result<DryRun, TargetError> {
    let mut run = DryRun::default();
    let user = target.user(&format!("{}-dry", check.name())).await?;
    let pointers = check.pointers();
    let recognisers = check.recognisers();
    let mut found: Vec<&str> = Vec::new();
    let mut id: Option<String> = None;
    for (n, (field, template)) in check.requests().into_iter().enumerate() {
        for instance in 0..target.instances() {
            let unique = format!("{}-dry-{}-{n}-{instance}", check.name(), target.run);
            let name = format!("{}-dry-{}", check.name(), target.run);
            let id_text = id.clone().unwrap_or_else(|| "1".to_owned());
            let vars = [
                ("name", name.as_str()),
                ("seq", "1"),
                ("unique", unique.as_str()),
                ("id", id_text.as_str()),
                ("run", target.run.as_str()),
                ("value", "dry-run"),
                ("limit", "5"),
            ];
            let request = target.request(instance, Some(&user.tokens[instance]), template, &vars);
            let (answer, raw) = target.execute_raw(request).await;
            let took_ms = answer.complete_us.saturating_sub(answer.invoke_us) / 1000;
            let what = format!(
                "{field:<14} {} {}",
                template.method.to_ascii_uppercase(),
                fill(&template.path, &vars)
            );
            let Some(status) = answer.status else {
                run.unanswered += 1;
                run.lines.push(format!(
                    "{what}  instance {instance}: no answer in {took_ms} ms: {}",
                    answer.error.unwrap_or_default()
                ));
                continue;
            };
            run.answered += 1;
            run.lines.push(format!("{what}  instance {instance}: {status} in {took_ms} ms"));
            run.lines.push(format!("    body    {}", preview(&raw, PREVIEW_BYTES)));
            for name in SHOWN_HEADERS {
                if let Some(value) = answer.header(name) {
                    run.lines.push(format!("    header  {name}: {value}"));
                }
            }
            let mut matched = String::new();
            for (name, recognise) in &recognisers {
                let _ = write!(
                    matched,
                    "{name} {}  ",
                    if recognise.matches(status, &answer.body) { "yes" } else { "no" }
                );
            }
            if !matched.is_empty() {
                run.lines.push(format!("    matches {}", matched.trim_end()));
            }
            for (name, pointer) in &pointers {
                if pointer.is_empty() {
                    continue;
                }
                if let Some(value) = answer.body.pointer(pointer).filter(|v| !v.is_null()) {
                    run.lines.push(format!("    found   {name} {pointer} = {}", shown(value)));
                    found.push(name);
                    if id.is_none() && matches!(*name, "id" | "project_id") {
                        id = pointer_string(&answer.body, pointer);
                    }
                }
            }
        }
    }
    for (name, pointer) in &pointers {
        if !pointer.is_empty() && !found.contains(name) {
            run.missed.push(format!("{name} {pointer}"));
        }
    }
    if !run.missed.is_empty() {
        run.lines.push(format!(
            "    missed  in every answer: {} (a pointer read from an answer this run does not make, such as a \
             later page or a status, can only be found by the check itself)",
            run.missed.join(", ")
        ));
    }
    Ok(run)
}

/// A found value, cut to a line.
fn shown(value: &Value) -> String {
    let text = value.to_string();
    if text.len() <= 80 {
        return text;
    }
    let end = (0..=80).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
    format!("{}…", &text[..end])
}
