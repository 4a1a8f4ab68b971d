//! What the tests share: starting a fake, a plain client, and the three API calls.

use std::future::Future;
use std::time::{Duration, Instant};

use fake_upstream::{Config, Credentials, FakeUpstream, NewAccount, RunningUpstream, Stats};
use serde_json::Value;

/// How long a test waits for the fake to reach a state before failing (never a timing
/// assertion: only a bound, so a broken fake fails instead of hanging).
pub(crate) const PATIENCE: Duration = Duration::from_secs(30);

pub(crate) async fn start() -> RunningUpstream {
    start_with(Config::default()).await
}

pub(crate) async fn start_with(config: Config) -> RunningUpstream {
    FakeUpstream::start(config).await.expect("the fake upstream starts on 127.0.0.1:0")
}

/// A keep-alive client, as a stack's pooled client would be.
pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder().http1_only().no_proxy().build().expect("client builds")
}

/// An account with its first tokens.
pub(crate) fn account(fake: &RunningUpstream, name: &str) -> Credentials {
    fake.register_account(NewAccount::named(name)).expect("the account registers")
}

/// A status and its JSON body (`Null` when the body is not JSON).
pub(crate) type Answer = (u16, Value);

pub(crate) async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

pub(crate) async fn youtube(
    client: &reqwest::Client,
    fake: &RunningUpstream,
    token: Option<&str>,
    ids: &str,
) -> Answer {
    let mut request =
        client.get(format!("{}/youtube/v3/videos", fake.url())).query(&[("id", ids), ("part", "snippet")]);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    answer(request.send().await.expect("the fake answers")).await
}

pub(crate) async fn tiktok(
    client: &reqwest::Client,
    fake: &RunningUpstream,
    token: Option<&str>,
    body: &Value,
) -> Answer {
    let mut request = client.post(format!("{}/v2/video/query/", fake.url())).json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    answer(request.send().await.expect("the fake answers")).await
}

pub(crate) async fn refresh(client: &reqwest::Client, fake: &RunningUpstream, refresh_token: &str) -> Answer {
    refresh_form(
        client,
        fake,
        &[("grant_type", "refresh_token"), ("refresh_token", refresh_token), ("client_id", "any")],
    )
    .await
}

pub(crate) async fn refresh_form(
    client: &reqwest::Client,
    fake: &RunningUpstream,
    form: &[(&str, &str)],
) -> Answer {
    let body = form.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&");
    let request = client
        .post(format!("{}/oauth2/token", fake.url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body);
    answer(request.send().await.expect("the fake answers")).await
}

/// Polls the stats until `done` holds; panics after [`PATIENCE`].
pub(crate) async fn until(fake: &RunningUpstream, what: &str, done: impl Fn(&Stats) -> bool) -> Stats {
    let start = Instant::now();
    loop {
        let stats = fake.stats();
        if done(&stats) {
            return stats;
        }
        assert!(start.elapsed() < PATIENCE, "gave up waiting for {what}; stats: {stats:#?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Runs `future`, failing the test if it has not finished after [`PATIENCE`].
pub(crate) async fn bounded<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, future).await.unwrap_or_else(|_| panic!("{what} did not finish"))
}
