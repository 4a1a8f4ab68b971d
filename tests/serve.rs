//! End-to-end tests of `stampede serve`: it starts quickly, answers, and stops cleanly on
//! SIGTERM; `--instances N` runs N processes, each with its own memory state, stopped together.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

/// Bounds that only detect hangs; they are not performance targets.
const START_BOUND: Duration = Duration::from_secs(5);
const STOP_BOUND: Duration = Duration::from_secs(10);

/// A running `stampede serve`, its standard output read line by line; killed on drop.
struct Serve {
    child: Child,
    lines: Receiver<String>,
    stderr: Receiver<String>,
    started: Instant,
}

impl Serve {
    fn spawn(args: &[&str]) -> Self {
        let started = Instant::now();
        let mut child = Command::new(env!("CARGO_BIN_EXE_stampede"))
            .arg("serve")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn stampede serve");
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let (tx, stderr) = mpsc::channel();
        let mut err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text);
            let _ = tx.send(text);
        });
        Serve { child, lines, stderr, started }
    }

    /// The URL of the next `listening on` line, and how long after the spawn it came.
    fn listening(&self) -> (String, Duration) {
        let deadline = self.started + START_BOUND;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).unwrap_or_else(|_| {
                panic!("no listening line within {START_BOUND:?}; stderr: {}", self.stderr_so_far())
            });
            if let Some(url) = line.strip_prefix("stampede serve: listening on ") {
                return (url.to_owned(), self.started.elapsed());
            }
        }
    }

    fn stderr_so_far(&self) -> String {
        self.stderr.try_recv().unwrap_or_else(|_| "(still open)".to_owned())
    }

    /// SIGTERM, as a service manager stops it.
    fn terminate(&self) {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success(), "kill -TERM failed");
    }

    /// Its exit status, within [`STOP_BOUND`].
    fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + STOP_BOUND;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "still running {STOP_BOUND:?} after SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap()
}

/// Whether anything accepts connections at `url`'s address.
fn answers(url: &str) -> bool {
    let addr = url.strip_prefix("http://").unwrap();
    std::net::TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(1)).is_ok()
}

/// Waits until nothing accepts connections at `url`; false if something still does after the bound.
fn stops_answering(url: &str) -> bool {
    let deadline = Instant::now() + STOP_BOUND;
    while Instant::now() < deadline {
        if !answers(url) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[tokio::test]
async fn serve_starts_quickly_answers_and_exits_0_on_sigterm() {
    let mut serve = Serve::spawn(&["--listen", "127.0.0.1:0"]);
    let (url, after) = serve.listening();
    println!("stampede serve: listening {} ms after spawn (target: under 1 s)", after.as_millis());
    let health = client().get(format!("{url}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.unwrap(), "ok\n");
    let contract = client().get(format!("{url}/openapi.json")).send().await.unwrap();
    assert_eq!(contract.status(), 200);
    serve.terminate();
    let stopping = Instant::now();
    let status = serve.wait();
    println!("stampede serve: exited {status} {} ms after SIGTERM", stopping.elapsed().as_millis());
    assert!(status.success(), "{status}; stderr: {}", serve.stderr_so_far());
    assert!(!answers(&url), "{url} still answers after exit");
}

#[tokio::test]
async fn serve_instances_keep_memory_state_per_process_and_stop_together() {
    let mut serve = Serve::spawn(&["--listen", "127.0.0.1:0", "--instances", "2"]);
    let (first, _) = serve.listening();
    let (second, after) = serve.listening();
    println!("stampede serve --instances 2: both listening {} ms after spawn", after.as_millis());
    assert_ne!(first, second);
    let client = client();
    let created = client.post(format!("{first}/v1/users")).json(&serde_json::json!({ "name": "alice" }));
    let created = created.send().await.unwrap();
    assert_eq!(created.status(), 201);
    let token = created.json::<serde_json::Value>().await.unwrap()["token"].as_str().unwrap().to_owned();
    let quota = |url: &str| client.get(format!("{url}/v1/quota")).bearer_auth(&token).send();
    assert_eq!(quota(&first).await.unwrap().status(), 200, "known where it was created");
    assert_eq!(quota(&second).await.unwrap().status(), 401, "memory state is per process");
    serve.terminate();
    let status = serve.wait();
    assert!(status.success(), "{status}; stderr: {}", serve.stderr_so_far());
    assert!(stops_answering(&first), "{first} still answers after the parent stopped");
    assert!(stops_answering(&second), "{second} still answers after the parent stopped");
}
