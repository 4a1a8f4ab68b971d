//! The query-budget invariants as checks over the query counts of requests.

use crate::invariant::{Judgement, Violation};

use super::{BUDGET, COMPONENT};

/// One request of a list endpoint: the page size asked, the rows served, the queries counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageQueries {
    pub size: usize,
    pub rows: usize,
    pub queries: u64,
}

/// A request of `endpoint` made fewer than [`BUDGET`] queries ("over-budget").
pub fn within_budget(endpoint: &str, queries: u64) -> Judgement {
    if queries < BUDGET {
        return Ok(());
    }
    Err(Violation::new(
        COMPONENT,
        "over-budget",
        format!("a request of {endpoint} made {queries} queries; the budget is fewer than {BUDGET}"),
    ))
}

/// The requests of `endpoint` made no more queries for the page that served the most rows than
/// for the one that served the fewest ("grows-with-page-size"): no query per row.
pub fn flat_in_page_size(endpoint: &str, observations: &[PageQueries]) -> Judgement {
    let (Some(fewest), Some(most)) =
        (observations.iter().min_by_key(|o| o.rows), observations.iter().max_by_key(|o| o.rows))
    else {
        return Ok(());
    };
    if most.queries <= fewest.queries {
        return Ok(());
    }
    Err(Violation::new(
        COMPONENT,
        "grows-with-page-size",
        format!(
            "{endpoint}: {} queries for a page of {} rows (size {}), {} for a page of {} rows (size {})",
            fewest.queries, fewest.rows, fewest.size, most.queries, most.rows, most.size
        ),
    ))
}

/// The count reported for a request is every query it made ("miscounted").
pub fn reported_exactly(made: u64, reported: u64) -> Judgement {
    if made == reported {
        return Ok(());
    }
    Err(Violation::new(COMPONENT, "miscounted", format!("{made} queries made, {reported} reported")))
}
