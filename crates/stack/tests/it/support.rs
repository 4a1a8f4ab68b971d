//! Starting a stack, making users and projects, and bounding every wait.

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use stack::{RunningStack, Settings, StackConfig};

/// Every test finishes within this, or fails.
pub(crate) const BOUND: Duration = Duration::from_secs(120);

/// Runs `test` to completion or panics after [`BOUND`].
pub(crate) async fn bounded<T>(test: impl Future<Output = T>) -> T {
    tokio::time::timeout(BOUND, test).await.expect("the test did not finish within its bound")
}

/// Polls `condition` every 10 ms until it holds; panics after 30 s.
pub(crate) async fn eventually<F: Future<Output = bool>>(what: &str, mut condition: impl FnMut() -> F) {
    let wait = async {
        while !condition().await {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), wait).await.unwrap_or_else(|_| panic!("never: {what}"));
}

/// A running stack with its own upload directory, removed on drop.
pub(crate) struct Harness {
    pub stack: RunningStack,
    pub http: reqwest::Client,
    pub upload_dir: PathBuf,
}

#[derive(Debug, Clone)]
pub(crate) struct User {
    pub id: u64,
    pub token: String,
}

impl Harness {
    pub(crate) async fn start(configure: impl FnOnce(&mut Settings)) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let upload_dir = std::env::temp_dir().join(format!(
            "stampede-it-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let mut config = StackConfig::default();
        config.settings.upload_dir = upload_dir.clone();
        configure(&mut config.settings);
        let stack = stack::start(config).await.expect("the stack starts on the memory backend");
        Self { stack, http: reqwest::Client::new(), upload_dir }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.stack.url())
    }

    pub(crate) fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.stack.addr())
    }

    pub(crate) async fn user(&self, name: &str) -> User {
        let response =
            self.http.post(self.url("/v1/users")).json(&json!({ "name": name })).send().await.unwrap();
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.unwrap();
        User { id: body["id"].as_u64().unwrap(), token: body["token"].as_str().unwrap().to_owned() }
    }

    /// A project owned by `owner` with `members` besides: invited at its creation, each then
    /// accepting.
    pub(crate) async fn project(&self, owner: &User, members: &[&User]) -> u64 {
        let ids: Vec<u64> = members.iter().map(|m| m.id).collect();
        let response = self
            .http
            .post(self.url("/v1/projects"))
            .bearer_auth(&owner.token)
            .json(&json!({ "name": "chat", "members": ids }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let project = response.json::<Value>().await.unwrap()["id"].as_u64().unwrap();
        for member in members {
            let response = self
                .http
                .post(self.url(&format!("/v1/invitations/{project}/accept")))
                .bearer_auth(&member.token)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "user {} accepts project {project}", member.id);
        }
        project
    }

    /// The names in the upload directory (none if it was never created).
    pub(crate) fn stored_files(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.upload_dir) else { return Vec::new() };
        let mut names: Vec<String> =
            entries.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.upload_dir);
    }
}

/// `len` bytes that are not all alike, the same for the same `seed`.
pub(crate) fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 56) as u8
        })
        .collect()
}

/// A test that cannot run for want of `service`: under `CI=true`, a failure; otherwise a notice
/// and a line in the file `STAMPEDE_SKIPPED` names, which `ci/test` counts (and fails on).
pub(crate) fn skip(service: &str, why: &dyn std::fmt::Display) {
    let test = std::thread::current().name().unwrap_or("?").to_owned();
    let why = why.to_string().replace('\n', " ");
    if std::env::var("CI").is_ok_and(|ci| ci == "true") {
        panic!("{test}: {service}: {why} (CI=true: {service} is required; run ci/services)");
    }
    eprintln!("skipping {test}: {service}: {why} (run ci/services; CI=true fails instead)");
    if let Some(path) = std::env::var_os("STAMPEDE_SKIPPED") {
        use std::io::Write;
        let mut file =
            std::fs::OpenOptions::new().create(true).append(true).open(path).expect("open $STAMPEDE_SKIPPED");
        file.write_all(format!("{test}\t{service}: {why}\n").as_bytes())
            .expect("append to $STAMPEDE_SKIPPED");
    }
}
