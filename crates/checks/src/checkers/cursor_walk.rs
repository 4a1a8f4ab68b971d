//! A cursor walk serves every row exactly once (#15). Each round a fresh user inserts rows,
//! then walks its list page by page, each page from the next instance with the previous page's
//! cursor, while another task keeps inserting rows. Every row that existed when the walk began
//! is served exactly once: none repeated, none skipped. Offset pagination repeats rows when
//! rows are inserted ahead of the offset; a cursor that does not break ties skips or repeats
//! rows created in the same instant; per-process feeds serve a different list on each instance.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use client::{Target, TargetError, User};
use profile::Defaults;
use profile::template::{RequestTemplate, fill};
use report::checks::{MAX_UNKNOWN, Verdict};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::checkers::support::{self, Through, pointer_string};
use crate::history::{Op, Outcome, Record};
use crate::kind::{FieldError, Kind, at_least_one};

pub const KIND: &str = "cursor-walk";

/// Runs the check against `target`.
pub async fn run(target: &Target, check: &CursorWalkCheck) -> Result<Verdict, TargetError> {
    let defaults = &target.profile.defaults;
    let rounds = check.rounds.unwrap_or(defaults.rounds);
    let mut history = Vec::new();
    for round in 0..rounds {
        let user = target.user(&format!("{}-r{round}", check.name)).await?;
        let label = format!("{}-{}-r{round}", check.name, target.run);
        let seeded = support::insert_rows(
            target,
            &user,
            &check.insert,
            Some(&check.id),
            check.rows,
            defaults.concurrency,
            Through::All,
            &label,
            round,
            "seed",
        )
        .await;
        history.extend(seeded);
        let walking = Arc::new(AtomicBool::new(true));
        let inserter = tokio::spawn(insert_while(
            target.clone(),
            check.clone(),
            user.clone(),
            round,
            Arc::clone(&walking),
        ));
        let pages = walk(target, check, &user, round).await;
        walking.store(false, Ordering::SeqCst);
        history.extend(pages);
        history.extend(inserter.await.unwrap_or_default());
    }
    Ok(judge(&check.name, &history))
}

/// Inserts rows one at a time, over the instances in turn, until the walk is over.
async fn insert_while(
    target: Target,
    check: CursorWalkCheck,
    user: User,
    round: usize,
    walking: Arc<AtomicBool>,
) -> Vec<Op> {
    let mut ops = Vec::new();
    let mut n = 0;
    while walking.load(Ordering::SeqCst) {
        let instance = n % target.instances();
        let unique = format!("{}-{}-r{round}-during-{n}", check.name, target.run);
        let answer =
            target.send(instance, Some(&user.tokens[instance]), &check.insert, &[("unique", &unique)]).await;
        let id = pointer_string(&answer.body, &check.id);
        ops.push(answer.op(round, instance, "insert", support::by_status(&answer), json!({ "id": id })));
        n += 1;
    }
    ops
}

/// Pages until one has no next page, one fails, or more pages than rows were served. The
/// next page is asked for as `follow` says: the cursor in `cursor_param`, the link in the
/// body or in the `Link` header followed as given, or the offset past the rows served.
async fn walk(target: &Target, check: &CursorWalkCheck, user: &User, round: usize) -> Vec<Op> {
    let max_pages = 2 * check.rows + 10;
    let mut ops: Vec<Op> = Vec::new();
    let mut next: Option<String> = None;
    let mut offset = 0usize;
    // The URL of the page a link came in, which a relative link is resolved against.
    let mut from = format!("{}{}", target.urls[0], fill(&check.page.path, &[]));
    for page in 0..max_pages {
        let instance = page % target.instances();
        let token = Some(user.tokens[instance].as_str());
        let request = match (&next, check.follow) {
            (None, _) => target.request(instance, token, &check.page, &[]),
            (Some(link), Follow::Link | Follow::LinkHeader) => match target.link_url(instance, &from, link) {
                Some(url) => {
                    from = url.clone();
                    target.request_url(url, token, &check.page)
                }
                None => {
                    // A link that is no URL: the page cannot be asked for (an answer nothing
                    // recognises, so the walk judges nothing).
                    let now = target.clock.now_us();
                    ops.push(Op {
                        process: round,
                        instance,
                        action: "page".into(),
                        invoke_us: now,
                        complete_us: now,
                        status: None,
                        outcome: Outcome::Unknown,
                        value: json!({ "page": page, "ids": null, "next": null, "asked": link, "error": "not a link" }),
                    });
                    break;
                }
            },
            (Some(value), Follow::Cursor | Follow::Offset) => target
                .request(instance, token, &check.page, &[])
                .query(&[(check.cursor_param.as_str(), value.as_str())]),
        };
        let answer = target.execute(request).await;
        let ids: Option<Vec<String>> =
            answer.body.pointer(&check.items).and_then(Value::as_array).map(|items| {
                items.iter().map(|item| pointer_string(item, &check.item_id).unwrap_or_default()).collect()
            });
        let rows = ids.as_ref().map_or(0, Vec::len);
        let found = match check.follow {
            Follow::Cursor => check.next.as_deref().and_then(|pointer| pointer_string(&answer.body, pointer)),
            // A link as a string, or a JSON:API link object's `href`.
            Follow::Link => check.next.as_deref().and_then(|pointer| {
                pointer_string(&answer.body, pointer)
                    .or_else(|| pointer_string(&answer.body, &format!("{pointer}/href")))
            }),
            Follow::LinkHeader => {
                let lines: Vec<&str> =
                    answer.headers.get_all("link").iter().filter_map(|v| v.to_str().ok()).collect();
                next_link(&lines.join(", "))
            }
            // The last page is the empty one.
            Follow::Offset => (rows > 0).then(|| (offset + rows).to_string()),
        }
        .filter(|c| !c.is_empty());
        offset += rows;
        // A page that answered without rows at `items` is unreadable, not an answer about them.
        let outcome = match support::read(&answer) {
            Outcome::Ok if ids.is_none() => Outcome::Unknown,
            outcome => outcome,
        };
        ops.push(answer.op(
            round,
            instance,
            "page",
            outcome,
            json!({ "page": page, "ids": ids, "next": found, "asked": next }),
        ));
        if outcome != Outcome::Ok || found.is_none() {
            break;
        }
        next = found;
    }
    ops
}

/// The `rel="next"` target of a `Link` header (RFC 8288): `<…>; rel="next", <…>; rel="last"`.
/// Targets are read between `<` and `>`, so commas and semicolons in them are theirs.
fn next_link(header: &str) -> Option<String> {
    let mut rest = header;
    while let Some(open) = rest.find('<') {
        let after = &rest[open + 1..];
        let close = after.find('>')?;
        let target = &after[..close];
        let params = &after[close + 1..];
        let params = &params[..params.find('<').unwrap_or(params.len())];
        let next = params.split([';', ',']).any(|param| {
            param.trim().split_once('=').is_some_and(|(k, v)| {
                k.trim().eq_ignore_ascii_case("rel")
                    && v.trim()
                        .trim_matches('"')
                        .split_whitespace()
                        .any(|rel| rel.eq_ignore_ascii_case("next"))
            })
        });
        if next {
            return Some(target.to_owned());
        }
        rest = &after[close + 1..];
    }
    None
}

/// Judges rounds (processes) of `seed` inserts, `page`s of the walk and `insert`s during it.
pub fn judge(name: &str, history: &[Op]) -> Verdict {
    let mut verdict = Verdict::new(name, KIND, history.len(), json!({}));
    let mut rounds: Vec<usize> = history.iter().map(|op| op.process).collect();
    rounds.sort_unstable();
    rounds.dedup();
    let (mut served_total, mut inserted_during, mut walks_complete, mut walks_paged) = (0, 0, 0, 0);
    for &round in &rounds {
        let ops: Vec<&Op> = history.iter().filter(|op| op.process == round).collect();
        let seeded: Vec<&str> = ops
            .iter()
            .filter(|op| op.action == "seed" && op.outcome == Outcome::Ok)
            .filter_map(|op| op.value["id"].as_str())
            .collect();
        inserted_during += ops.iter().filter(|op| op.action == "insert" && op.outcome == Outcome::Ok).count();
        let pages: Vec<&Op> = ops.iter().copied().filter(|op| op.action == "page").collect();
        let mut served: HashMap<&str, Vec<&Op>> = HashMap::new();
        for page in pages.iter().filter(|op| op.outcome == Outcome::Ok) {
            for id in page.value["ids"].as_array().into_iter().flatten().filter_map(Value::as_str) {
                served.entry(id).or_default().push(page);
                served_total += 1;
            }
        }
        let mut repeated: Vec<(&str, &Vec<&Op>)> =
            served.iter().filter(|(_, pages)| pages.len() > 1).map(|(id, pages)| (*id, pages)).collect();
        repeated.sort_by_key(|(id, _)| *id);
        if !repeated.is_empty() {
            let shown: Vec<String> =
                repeated.iter().take(5).map(|(id, pages)| format!("{id} ×{}", pages.len())).collect();
            verdict.violate(
                "repeated-row",
                format!("round {round}: {} rows served more than once: {}", repeated.len(), shown.join(", ")),
                repeated.iter().flat_map(|(_, pages)| pages.iter().map(|op| (*op).clone())),
            );
        }
        let last = pages.last();
        match last {
            // No page, or a page with no usable answer: the walk gathered nothing (required below).
            None => continue,
            Some(last) if last.outcome == Outcome::Unknown => continue,
            Some(last) if last.outcome != Outcome::Ok => {
                verdict.violate(
                    "walk-broken",
                    format!(
                        "round {round}: page {}{} answered {}",
                        last.value["page"],
                        last.value["asked"]
                            .as_str()
                            .map_or(String::new(), |asked| format!(" (asked for with {asked:?})")),
                        last.status.map_or("nothing".to_owned(), |s| s.to_string())
                    ),
                    [(*last).clone()],
                );
                continue;
            }
            Some(last) if !last.value["next"].is_null() => {
                verdict.violate(
                    "walk-endless",
                    format!(
                        "round {round}: still a next cursor after {} pages for {} rows",
                        pages.len(),
                        seeded.len()
                    ),
                    [(*last).clone()],
                );
                continue;
            }
            Some(_) => {
                walks_complete += 1;
                // A walk of one page never used a cursor.
                if pages.len() >= 2 {
                    walks_paged += 1;
                }
            }
        }
        let skipped: Vec<&str> = seeded.iter().copied().filter(|id| !served.contains_key(id)).collect();
        if !skipped.is_empty() {
            verdict.violate(
                "skipped-row",
                format!(
                    "round {round}: {} of {} rows present when the walk began were never served: {:?}{}",
                    skipped.len(),
                    seeded.len(),
                    &skipped[..skipped.len().min(5)],
                    if skipped.len() > 5 { " …" } else { "" }
                ),
                ops.iter()
                    .filter(|op| {
                        op.action == "seed" && op.value["id"].as_str().is_some_and(|id| skipped.contains(&id))
                    })
                    .map(|op| (*op).clone()),
            );
        }
    }
    verdict.require(
        "walks-complete",
        walks_complete > 0,
        format!("{walks_complete} of {} walks reached their last page", rounds.len()),
        "the list must answer 2xx page after page, with its next cursor at `next` (null on the last)",
    );
    verdict.require(
        "cursor-followed",
        walks_paged > 0,
        format!("{walks_paged} walks went past their first page"),
        "insert more rows than a page holds (`rows`, the page size in `page`)",
    );
    verdict.require(
        "inserts-during-walk",
        inserted_during > 0,
        format!("{inserted_during} rows inserted while walks were under way"),
        "the insert request must answer 2xx: rows inserted between pages are what a cursor must survive",
    );
    verdict.bound_unknown(history, MAX_UNKNOWN);
    verdict.evidence = json!({
        "rounds": rounds.len(),
        "walks_complete": walks_complete,
        "rows_served": served_total,
        "inserted_during_walks": inserted_during,
    });
    verdict.summarize(format!(
        "{walks_complete} walks: every row served exactly once while {inserted_during} rows were inserted"
    ))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::checkers::support::testing::op;

    fn seeds(ids: &[&str]) -> Vec<Op> {
        ids.iter().map(|id| op(0, 0, "seed", 0, Outcome::Ok, json!({ "id": id }))).collect()
    }

    fn page(n: u64, ids: &[&str], next: Option<&str>) -> Op {
        op(0, n as usize % 2, "page", 10 + n, Outcome::Ok, json!({ "page": n, "ids": ids, "next": next }))
    }

    #[test]
    fn each_row_once_passes() {
        let mut h = seeds(&["e", "d", "c", "b", "a"]);
        h.push(page(0, &["e", "d"], Some("d")));
        h.push(op(0, 0, "insert", 10, Outcome::Ok, json!({ "id": "f" })));
        h.push(page(1, &["c", "b"], Some("b")));
        h.push(page(2, &["a"], None));
        let verdict = judge("w", &h);
        assert!(verdict.held(), "{:?}", verdict.violations);
    }

    #[test]
    fn a_row_served_twice_is_repeated() {
        // Offset pagination: a row inserted at the head pushes "d" onto the next page.
        let mut h = seeds(&["e", "d", "c", "b", "a"]);
        h.push(page(0, &["e", "d"], Some("2")));
        h.push(op(0, 0, "insert", 10, Outcome::Ok, json!({ "id": "f" })));
        h.push(page(1, &["d", "c"], Some("4")));
        h.push(page(2, &["b", "a"], None));
        assert_eq!(judge("w", &h).rules(), ["repeated-row"]);
    }

    #[test]
    fn a_row_never_served_is_skipped() {
        // A cursor without a tie-breaker: "c", created in the same instant as "d", is lost.
        let mut h = seeds(&["e", "d", "c", "b", "a"]);
        h.push(page(0, &["e", "d"], Some("d")));
        h.push(page(1, &["b", "a"], None));
        let verdict = judge("w", &h);
        assert_eq!(verdict.rules(), ["skipped-row"]);
        assert!(verdict.violations[0].detail.contains("\"c\""), "{:?}", verdict.violations);
    }

    #[test]
    fn a_failed_page_breaks_the_walk_and_a_cursor_without_end_is_endless() {
        let mut h = seeds(&["b", "a"]);
        h.push(page(0, &["b"], Some("b")));
        h.push(op(
            0,
            1,
            "page",
            11,
            Outcome::Fail,
            json!({ "page": 1, "ids": null, "next": null, "asked": "b" }),
        ));
        let verdict = judge("w", &h);
        assert_eq!(verdict.rules(), ["walk-broken"]);
        assert_eq!(verdict.violations[0].detail, "round 0: page 1 (asked for with \"b\") answered 404");
        let mut h = seeds(&["b", "a"]);
        h.push(page(0, &["b"], Some("b")));
        h.push(page(1, &[], Some("b")));
        assert_eq!(judge("w", &h).rules(), ["walk-endless"]);
    }

    #[test]
    fn a_walk_without_inserts_or_answers_is_inconclusive() {
        // Every row once, but nothing was inserted during the walk: the race never ran.
        let mut h = seeds(&["b", "a"]);
        h.push(page(0, &["b"], Some("b")));
        h.push(page(1, &["a"], None));
        let verdict = judge("w", &h);
        assert_eq!((verdict.inconclusive(), verdict.missing()), (true, vec!["inserts-during-walk"]));
        // A page with no answer (503): no walk completed, nothing violated.
        let mut h = seeds(&["b", "a"]);
        h.push(op(0, 0, "insert", 10, Outcome::Ok, json!({ "id": "c" })));
        h.push(op(0, 1, "page", 11, Outcome::Unknown, json!({ "page": 0, "ids": null, "next": null })));
        let verdict = judge("w", &h);
        assert!(verdict.inconclusive() && verdict.rules().is_empty(), "{verdict:?}");
        assert!(verdict.missing().contains(&"walks-complete"), "{:?}", verdict.missing());
    }

    #[test]
    fn the_evidence_counts_rows_walks_and_inserts() {
        let mut h = seeds(&["e", "d", "c", "b", "a"]);
        h.push(page(0, &["e", "d"], Some("d")));
        h.push(op(0, 0, "insert", 10, Outcome::Ok, json!({ "id": "f" })));
        h.push(page(1, &["c", "b"], Some("b")));
        h.push(page(2, &["a"], None));
        let verdict = judge("w", &h);
        assert_eq!(
            verdict.evidence,
            json!({ "inserted_during_walks": 1, "rounds": 1, "rows_served": 5, "walks_complete": 1 })
        );
        // A walk of one page followed no cursor.
        let mut h = seeds(&["b", "a"]);
        h.push(op(0, 0, "insert", 10, Outcome::Ok, json!({ "id": "c" })));
        h.push(page(0, &["b", "a"], None));
        assert_eq!(judge("w", &h).missing(), ["cursor-followed"]);
    }

    #[test]
    fn the_next_link_is_the_rel_next_target_of_the_link_header() {
        let header = r#"</v1/videos?page[after]=YWJj%3D>; rel="next", <https://api.example/v1/videos?page=9>; rel="last""#;
        assert_eq!(next_link(header).as_deref(), Some("/v1/videos?page[after]=YWJj%3D"));
        let header =
            r#"<https://api.example/p?page=1>; rel="prev first", <https://api.example/p?page=3>; REL=next"#;
        assert_eq!(next_link(header).as_deref(), Some("https://api.example/p?page=3"));
        assert_eq!(next_link(r#"<https://api.example/p?page=1>; rel="prev""#), None);
        assert_eq!(next_link("garbage"), None);
        // Commas and semicolons inside a target are the target's.
        let header = r#"</p?ids=1,2;x=3>; rel="next""#;
        assert_eq!(next_link(header).as_deref(), Some("/p?ids=1,2;x=3"));
    }

    #[test]
    fn a_skipped_row_is_shown_by_its_seed() {
        let mut h = seeds(&["e", "d", "c", "b", "a"]);
        h.push(page(0, &["e", "d"], Some("d")));
        h.push(page(1, &["b", "a"], None));
        let verdict = judge("w", &h);
        let shown: Vec<&str> = verdict.offending.iter().filter_map(|op| op.value["id"].as_str()).collect();
        assert_eq!(shown, ["c"]);
    }
}

/// A cursor walk serves every row exactly once (#15): rows inserted, then the list walked page
/// by page while new rows are inserted; every row that existed when the walk began is served
/// once, none twice.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CursorWalkCheck {
    pub name: String,
    /// Inserts one row; `{unique}` is new for each row.
    pub insert: RequestTemplate,
    /// JSON pointer to the inserted row's id.
    pub id: String,
    /// The first page, its page size in the query.
    pub page: RequestTemplate,
    /// How the next page is asked for (default: a cursor).
    #[serde(default)]
    pub follow: Follow,
    /// The query parameter a next page's cursor (or, with `follow = "offset"`, its offset)
    /// goes in.
    #[serde(default = "default_cursor_param")]
    pub cursor_param: String,
    /// JSON pointers: the page's rows, a row's id within a row, and the next cursor or link
    /// (absent or null on the last page; not read with `follow = "link-header"` or
    /// `"offset"`).
    pub items: String,
    pub item_id: String,
    #[serde(default)]
    pub next: Option<String>,
    /// Rows inserted before the walk.
    #[serde(default = "default_walk_rows")]
    pub rows: usize,
    #[serde(default)]
    pub rounds: Option<usize>,
}

/// How a walk asks for the next page.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Follow {
    /// The value at `next`, sent in `cursor_param` (an opaque cursor, untouched).
    #[default]
    Cursor,
    /// The value at `next` is a link, a path or a full URL (JSON:API's `links.next`),
    /// followed as given.
    Link,
    /// The `Link` header's `rel="next"` target, followed as given.
    LinkHeader,
    /// `cursor_param` is an offset: the rows served so far; the last page is the empty one.
    Offset,
}

fn default_cursor_param() -> String {
    "cursor".to_owned()
}

fn default_walk_rows() -> usize {
    30
}

impl Kind for CursorWalkCheck {
    const KIND: &'static str = KIND;

    fn name(&self) -> &str {
        &self.name
    }

    fn requests(&self) -> Vec<(&'static str, &RequestTemplate)> {
        vec![("insert", &self.insert), ("page", &self.page)]
    }

    fn pointers(&self) -> Vec<(&'static str, &str)> {
        let mut pointers = vec![("id", self.id.as_str()), ("items", &self.items), ("item_id", &self.item_id)];
        pointers.extend(self.next.as_deref().map(|next| ("next", next)));
        pointers
    }

    fn validate(&self) -> Result<(), FieldError> {
        at_least_one("rows", self.rows as u64)?;
        match (self.follow, &self.next) {
            (Follow::Cursor | Follow::Link, None) => {
                Err(FieldError::new("next", "next (the pointer to the next cursor or link) is required"))
            }
            (Follow::LinkHeader | Follow::Offset, Some(_)) => Err(FieldError::new(
                "next",
                "next is not read when the walk follows the Link header or an offset: remove it",
            )),
            _ => Ok(()),
        }
    }

    /// The rows, and those inserted during the walk.
    fn upstream_calls(&self, _defaults: &Defaults) -> u64 {
        2 * self.rows as u64
    }

    async fn run(&self, target: &Target) -> Result<Verdict, TargetError> {
        run(target, self).await
    }
}
