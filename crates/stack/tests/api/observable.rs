//! What a client can observe of the stack's performance work, through HTTP alone: #16 gzip
//! with `Vary`, #18 a query count that does not grow with the page size, #14 the cache layer
//! that answered. Each check is a function that returns a verdict on answers, so that the same
//! function judges the reference stack (and must accept) and a stack running a mutant (and
//! must reject).

use std::io::Read;

use reqwest::Method;
use serde_json::Value;
use stack::{Mutant, Settings};

use crate::support::{self, Answer, Stack, send};

/// What a check concluded: `Ok` or what is wrong.
pub(crate) type Judgement = Result<(), String>;

/// Responses smaller than this are sent as they are (the stack's compression threshold).
const COMPRESS_ABOVE: usize = 1024;

/// #16: `plain` was asked without `Accept-Encoding`, `gzipped` with `Accept-Encoding: gzip`,
/// for the same resource of over 1 KiB. The gzipped answer must be gzip-encoded, decode to the
/// same JSON, and carry `Vary: Accept-Encoding` (else a shared cache may hand the gzip bytes to
/// a client that cannot read them, or the plain bytes to every client); the plain one must
/// not be encoded.
pub(crate) fn compression_verdict(plain: &Answer, gzipped: &Answer) -> Judgement {
    if plain.status != 200 || gzipped.status != 200 {
        return Err(format!("not both 200: {} and {}", plain.status, gzipped.status));
    }
    if plain.body.len() <= COMPRESS_ABOVE {
        return Err(format!(
            "the plain body is {} bytes, not over 1 KiB: nothing to judge",
            plain.body.len()
        ));
    }
    if let Some(encoding) = plain.header("content-encoding") {
        return Err(format!("encoded ({encoding}) for a client that accepts no encoding"));
    }
    if gzipped.header("content-encoding") != Some("gzip") {
        return Err(format!(
            "not gzip-encoded for a client that accepts it: Content-Encoding {:?}",
            gzipped.header("content-encoding")
        ));
    }
    let varies = gzipped
        .headers
        .get_all("vary")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| v.trim().eq_ignore_ascii_case("accept-encoding") || v.trim() == "*");
    if !varies {
        return Err(format!(
            "gzip-encoded without Vary: Accept-Encoding (Vary: {:?})",
            gzipped.header("vary")
        ));
    }
    let mut decoded = Vec::new();
    flate2::read::GzDecoder::new(gzipped.body.as_slice())
        .read_to_end(&mut decoded)
        .map_err(|e| format!("the gzip body does not decode: {e}"))?;
    let decoded: Value =
        serde_json::from_slice(&decoded).map_err(|e| format!("the decoded body is not JSON: {e}"))?;
    let plain: Value =
        serde_json::from_slice(&plain.body).map_err(|e| format!("the plain body is not JSON: {e}"))?;
    if decoded != plain {
        return Err("the gzip body decodes to other JSON than the plain one".to_owned());
    }
    Ok(())
}

/// #18: `pages` are `(limit, items, X-DB-Queries)` of `GET /v1/videos?limit=L` for several L,
/// each page full. The query count must be the same for every size: a list that reads each
/// row on its own (N + 1) grows with L.
pub(crate) fn query_budget_verdict(pages: &[(usize, usize, Option<u32>)]) -> Judgement {
    if pages.len() < 2 {
        return Err("fewer than two page sizes: nothing to compare".to_owned());
    }
    if let Some((limit, items, _)) = pages.iter().find(|(limit, items, _)| items != limit) {
        return Err(format!("the page of limit {limit} holds {items} items: import more videos"));
    }
    let Some(counts) = pages.iter().map(|(_, _, q)| *q).collect::<Option<Vec<u32>>>() else {
        return Err("a page without X-DB-Queries".to_owned());
    };
    if counts.windows(2).any(|w| w[0] != w[1]) {
        let seen: Vec<String> =
            pages.iter().map(|(l, _, q)| format!("limit {l}: {}", q.unwrap_or(0))).collect();
        return Err(format!("queries grow with the page size ({})", seen.join(", ")));
    }
    Ok(())
}

/// #14 on one instance: two reads in a row of a dashboard nobody read before; the first is
/// computed (`X-Cache: MISS`), the second answered by the process's own L1, with the same body.
pub(crate) fn cache_verdict(first: &Answer, second: &Answer) -> Judgement {
    let layers = (first.header("x-cache"), second.header("x-cache"));
    if (first.status, second.status) != (200, 200) {
        return Err(format!("not both 200: {first} and {second}"));
    }
    if layers != (Some("MISS"), Some("L1")) {
        return Err(format!("X-Cache went {:?} → {:?}, not MISS → L1", layers.0, layers.1));
    }
    if first.json() != second.json() {
        return Err("the cached dashboard differs from the computed one".to_owned());
    }
    Ok(())
}

/// A stack with one user who has `videos` videos (long URLs, so pages are large), all in one
/// project whose dashboard is over 1 KiB. The user's token and the project.
async fn populated(mutant: Option<Mutant>, videos: usize) -> (Stack, String, u64) {
    let settings = Settings {
        quota: reference::daily_quota::QuotaPolicy {
            limit: 1_000_000,
            units_per_import: 1,
            warn_percent: 80,
        },
        mutant,
        ..Settings::default()
    };
    let stack = support::start(settings).await;
    let (_, token) = stack.user("lister").await;
    let project = stack.project(&token, &"a project with a long name ".repeat(7), &[]).await;
    for n in 0..videos {
        let url = format!("https://www.youtube.com/watch?v=observable-{n:04}&list={}", "x".repeat(80));
        stack.video(&token, &url, Some(project)).await;
    }
    (stack, token, project)
}

/// `GET path` as `token`'s user, asking for gzip when `gzip`.
async fn get(stack: &Stack, path: &str, token: &str, gzip: bool) -> Answer {
    let mut request = stack.request(Method::GET, path).bearer_auth(token);
    if gzip {
        request = request.header("accept-encoding", "gzip");
    }
    send(request).await
}

/// The verdicts of #16 on the dashboard and on a page of the list.
async fn compression_verdicts(stack: &Stack, token: &str, project: u64) -> Vec<(String, Judgement)> {
    let mut verdicts = Vec::new();
    for path in [format!("/v1/projects/{project}/dashboard"), "/v1/videos?limit=20".to_owned()] {
        let plain = get(stack, &path, token, false).await;
        let gzipped = get(stack, &path, token, true).await;
        verdicts.push((path, compression_verdict(&plain, &gzipped)));
    }
    verdicts
}

/// The pages of #18: limits 5, 20 and 100.
async fn list_pages(stack: &Stack, token: &str) -> Vec<(usize, usize, Option<u32>)> {
    let mut pages = Vec::new();
    for limit in [5, 20, 100] {
        let answer = get(stack, &format!("/v1/videos?limit={limit}"), token, false).await;
        assert_eq!(answer.status, 200, "{answer}");
        let items = answer.json()["items"].as_array().map_or(0, Vec::len);
        pages.push((limit, items, answer.header("x-db-queries").and_then(|q| q.parse().ok())));
    }
    pages
}

#[tokio::test]
async fn large_responses_are_gzipped_with_vary_when_asked_and_only_then() {
    let (stack, token, project) = populated(None, 12).await;
    for (path, verdict) in compression_verdicts(&stack, &token, project).await {
        assert_eq!(verdict, Ok(()), "{path}");
    }
}

#[tokio::test]
async fn compression_check_rejects_the_missing_vary_mutant() {
    let (stack, token, project) = populated(Some(Mutant::MissingVary), 12).await;
    for (path, verdict) in compression_verdicts(&stack, &token, project).await {
        let problem = verdict.expect_err(&path);
        assert!(problem.contains("without Vary: Accept-Encoding"), "{path}: {problem}");
    }
}

#[tokio::test]
async fn list_queries_do_not_grow_with_the_page_size() {
    let (stack, token, _) = populated(None, 100).await;
    let pages = list_pages(&stack, &token).await;
    assert_eq!(query_budget_verdict(&pages), Ok(()), "{pages:?}");
}

#[tokio::test]
async fn query_budget_check_rejects_the_per_row_query_mutant() {
    let (stack, token, _) = populated(Some(Mutant::PerRowQuery), 100).await;
    let pages = list_pages(&stack, &token).await;
    let problem = query_budget_verdict(&pages).expect_err("N + 1 queries");
    assert!(problem.contains("queries grow with the page size"), "{problem}");
}

#[tokio::test]
async fn a_dashboard_is_computed_then_served_from_l1() {
    let (stack, token, project) = populated(None, 3).await;
    let path = format!("/v1/projects/{project}/dashboard");
    let first = get(&stack, &path, &token, false).await;
    let second = get(&stack, &path, &token, false).await;
    assert_eq!(cache_verdict(&first, &second), Ok(()));
}

/// The cache check's teeth, on answers as a stack without a working L1 would give them.
#[test]
fn cache_check_rejects_a_second_miss_and_a_second_read_from_another_layer() {
    let answer = |layer: &str| {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("x-cache", layer.parse().unwrap());
        Answer { status: 200, headers, body: b"{\"videos\": 1}".to_vec() }
    };
    assert_eq!(cache_verdict(&answer("MISS"), &answer("L1")), Ok(()));
    for (first, second) in [("MISS", "MISS"), ("MISS", "L2"), ("L1", "L1"), ("L3", "L1")] {
        let problem = cache_verdict(&answer(first), &answer(second)).expect_err(first);
        assert!(problem.contains("not MISS → L1"), "{problem}");
    }
    let mut stale = answer("L1");
    stale.body = b"{\"videos\": 0}".to_vec();
    assert!(cache_verdict(&answer("MISS"), &stale).is_err());
}

/// The list check refuses to judge pages that are not full, where N + 1 would not show.
#[test]
fn query_budget_check_refuses_pages_that_are_not_full() {
    let problem = query_budget_verdict(&[(5, 5, Some(2)), (100, 12, Some(2))]).unwrap_err();
    assert!(problem.contains("import more videos"), "{problem}");
    assert!(query_budget_verdict(&[(5, 5, Some(2))]).is_err());
}
