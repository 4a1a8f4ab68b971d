//! A query budget (#18). Rows are inserted for a fresh user, then its list is requested at
//! several page sizes on every instance; the database queries each request made, as the
//! response reports them (`X-DB-Queries`), must stay within the budget and must not grow with
//! the number of rows served. A list that loads each row's record on its own (N + 1 queries)
//! grows with the page.

use client::{Target, TargetError};
use profile::Defaults;
use profile::template::RequestTemplate;
use report::checks::{MAX_UNKNOWN, Verdict};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::checkers::support::{self, Through};
use crate::history::{Op, Outcome, Record};
use crate::kind::{FieldError, Kind};

pub const KIND: &str = "query-budget";

/// Runs the check against `target`.
pub async fn run(target: &Target, check: &QueryBudgetCheck) -> Result<Verdict, TargetError> {
    let user = target.user(&check.name).await?;
    let rows = check.rows.unwrap_or_else(|| check.sizes.iter().copied().max().unwrap_or(0));
    let label = format!("{}-{}", check.name, target.run);
    let concurrency = target.profile.defaults.concurrency;
    let mut history = support::insert_rows(
        target,
        &user,
        &check.insert,
        None,
        rows,
        concurrency,
        Through::All,
        &label,
        0,
        "insert",
    )
    .await;
    for instance in 0..target.instances() {
        for &size in &check.sizes {
            let limit = size.to_string();
            let answer = target
                .send(instance, Some(&user.tokens[instance]), &check.request, &[("limit", &limit)])
                .await;
            let items = answer.body.pointer(&check.items).and_then(Value::as_array).map(Vec::len);
            let queries = answer.header_u64(&check.header);
            let value = json!({ "size": size, "items": items, "queries": queries });
            history.push(answer.op(0, instance, "list", support::read(&answer), value));
        }
    }
    Ok(judge(&check.name, check.budget, &history))
}

/// Judges the `list` requests: within `budget`, and per instance no more queries for the
/// fullest page than for the emptiest.
pub fn judge(name: &str, budget: u64, history: &[Op]) -> Verdict {
    let mut verdict = Verdict::new(name, KIND, history.len(), json!({}));
    let lists: Vec<&Op> = history.iter().filter(|op| op.action == "list").collect();
    let mut instances: Vec<usize> = lists.iter().map(|op| op.instance).collect();
    instances.sort_unstable();
    instances.dedup();
    let mut counts = Vec::new();
    for instance in instances {
        let mut judged: Vec<(u64, u64, &Op)> = Vec::new();
        for op in lists.iter().copied().filter(|op| op.instance == instance) {
            // A failed list, or one without a count, is evidence missing (the requirements below).
            if op.outcome != Outcome::Ok {
                continue;
            }
            let Some(queries) = op.value["queries"].as_u64() else { continue };
            let items = op.value["items"].as_u64().unwrap_or(0);
            counts.push(
                json!({ "instance": instance, "size": op.value["size"], "items": items, "queries": queries }),
            );
            if queries > budget {
                verdict.violate(
                    "over-budget",
                    format!(
                        "instance {instance}: {queries} queries for a page of {items} rows (size {}), over the budget of {budget}",
                        op.value["size"]
                    ),
                    [op.clone()],
                );
            }
            judged.push((items, queries, op));
        }
        let fewest = judged.iter().min_by_key(|(items, queries, _)| (*items, *queries));
        let most = judged.iter().max_by_key(|(items, queries, _)| (*items, *queries));
        if let (Some(&(few_items, few_queries, few)), Some(&(many_items, many_queries, many))) =
            (fewest, most)
            && many_items > few_items
            && many_queries > few_queries
        {
            verdict.violate(
                "grows-with-page-size",
                format!(
                    "instance {instance}: {few_queries} queries for {few_items} rows but {many_queries} for {many_items}"
                ),
                [few.clone(), many.clone()],
            );
        }
    }
    let answered = lists.iter().filter(|op| op.outcome == Outcome::Ok).count();
    verdict.require(
        "lists-answered",
        answered == lists.len() && !lists.is_empty(),
        format!("{answered} of {} list requests answered 2xx", lists.len()),
        "the list request must answer 2xx",
    );
    verdict.require(
        "counts-reported",
        counts.len() == answered && !counts.is_empty(),
        format!("{} of {answered} answered lists reported their query count", counts.len()),
        "the stack must report each request's query count in the profile's `header` (X-DB-Queries)",
    );
    let mut sizes: Vec<u64> = counts.iter().filter_map(|c| c["items"].as_u64()).collect();
    sizes.sort_unstable();
    sizes.dedup();
    verdict.require(
        "page-sizes-differ",
        sizes.len() >= 2,
        format!("pages of {} distinct row counts ({sizes:?})", sizes.len()),
        "insert enough rows (`rows`) that the page sizes return different numbers of rows",
    );
    verdict.bound_unknown(history, MAX_UNKNOWN);
    let most = counts.iter().filter_map(|c| c["queries"].as_u64()).max().unwrap_or(0);
    verdict.evidence = json!({ "budget": budget, "lists": counts });
    verdict.summarize(format!(
        "{} pages: at most {most} queries each (budget {budget}), whatever the page size",
        counts.len()
    ))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::checkers::support::testing::op;

    fn list(size: u64, items: u64, queries: Option<u64>) -> Op {
        op(0, 0, "list", size, Outcome::Ok, json!({ "size": size, "items": items, "queries": queries }))
    }

    #[test]
    fn constant_queries_within_budget_pass() {
        let h = vec![list(5, 5, Some(2)), list(20, 20, Some(2)), list(100, 100, Some(2))];
        let verdict = judge("q", 10, &h);
        assert!(verdict.held(), "{:?}", verdict.violations);
        // Exactly the budget is within it.
        let h = vec![list(5, 5, Some(10)), list(20, 20, Some(10))];
        assert!(judge("q", 10, &h).held());
    }

    #[test]
    fn queries_per_row_grow_and_pass_the_budget() {
        // PerRowQuery: two queries, plus two per row.
        let h = vec![list(5, 5, Some(12)), list(20, 20, Some(42)), list(100, 100, Some(202))];
        assert_eq!(
            judge("q", 10, &h).rules(),
            ["over-budget", "over-budget", "over-budget", "grows-with-page-size"]
        );
        let h = vec![list(5, 5, Some(3)), list(20, 20, Some(4))];
        assert_eq!(judge("q", 10, &h).rules(), ["grows-with-page-size"]);
    }

    #[test]
    fn more_queries_for_the_same_rows_do_not_grow() {
        // Fewer rows than the page sizes: both pages hold the same rows.
        let h = vec![list(20, 7, Some(2)), list(100, 7, Some(3))];
        let verdict = judge("q", 10, &h);
        assert!(verdict.rules().is_empty(), "{:?}", verdict.violations);
        // Nor can growth be judged: inconclusive, for want of pages of different sizes.
        assert_eq!(verdict.missing(), ["page-sizes-differ"]);
    }

    #[test]
    fn a_missing_count_and_a_failed_request_are_reported() {
        let h = vec![list(5, 5, Some(2)), list(20, 20, None)];
        let verdict = judge("q", 10, &h);
        assert!(verdict.inconclusive() && verdict.rules().is_empty(), "{verdict:?}");
        assert_eq!(verdict.missing(), ["counts-reported", "page-sizes-differ"]);
        let h = vec![list(5, 5, Some(2)), op(0, 0, "list", 20, Outcome::Fail, json!({ "size": 20 }))];
        let verdict = judge("q", 10, &h);
        assert!(verdict.inconclusive() && verdict.rules().is_empty(), "{verdict:?}");
        assert_eq!(verdict.missing(), ["lists-answered", "page-sizes-differ"]);
    }
}

/// A query budget (#18): the database queries a list request makes, as the response reports
/// them, stay within the budget and do not grow with the page size.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryBudgetCheck {
    pub name: String,
    /// Inserts one row; `{unique}` is new for each row.
    pub insert: RequestTemplate,
    /// The list request; `{limit}` is the page size.
    pub request: RequestTemplate,
    /// JSON pointer to the page's rows.
    pub items: String,
    #[serde(default = "default_page_sizes")]
    pub sizes: Vec<usize>,
    /// Most queries a request may make.
    #[serde(default = "default_query_budget")]
    pub budget: u64,
    /// The response header with the request's query count.
    #[serde(default = "default_queries_header")]
    pub header: String,
    /// Rows inserted first (default: the largest page size).
    #[serde(default)]
    pub rows: Option<usize>,
}

fn default_page_sizes() -> Vec<usize> {
    vec![5, 20, 100]
}

fn default_query_budget() -> u64 {
    10
}

fn default_queries_header() -> String {
    "x-db-queries".to_owned()
}

impl Kind for QueryBudgetCheck {
    const KIND: &'static str = KIND;

    fn name(&self) -> &str {
        &self.name
    }

    fn requests(&self) -> Vec<(&'static str, &RequestTemplate)> {
        vec![("insert", &self.insert), ("request", &self.request)]
    }

    fn pointers(&self) -> Vec<(&'static str, &str)> {
        vec![("items", &self.items)]
    }

    fn validate(&self) -> Result<(), FieldError> {
        if self.sizes.len() < 2 || self.sizes.contains(&0) {
            return Err(FieldError::new("sizes", "sizes must list at least two page sizes, none 0"));
        }
        Ok(())
    }

    /// The rows it inserts, at most.
    fn upstream_calls(&self, _defaults: &Defaults) -> u64 {
        50
    }

    async fn run(&self, target: &Target) -> Result<Verdict, TargetError> {
        run(target, self).await
    }
}
