//! The embedded stack as processes, for faults that kill an instance: `stampede serve
//! --instances N` started as a child — its supervisor and N instance processes on consecutive
//! ports, sharing the run's Redis and PostgreSQL and its fake upstream — so that a kill is a
//! real SIGKILL of one process, and what follows is the supervisor's to do (start it again on
//! its port within its restart budget; under `supervisor::mutants::StopAllOnCrash`, stop them
//! all).

use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, BufReader};

/// The supervisor child and its instances' URLs (instance i at the i-th port).
pub(crate) struct Supervised {
    child: tokio::sync::Mutex<tokio::process::Child>,
    /// Held open while the run lasts: closed (or the run gone), the supervisor stops.
    stdin: std::sync::Mutex<Option<tokio::process::ChildStdin>>,
    /// The supervisor's process id.
    pid: Option<u32>,
    pub(crate) urls: Vec<String>,
    /// Asks an instance's `/healthz`, a second at most.
    probe: reqwest::Client,
}

/// How long the instances may take to say they listen.
const START_TIMEOUT: Duration = Duration::from_secs(60);

impl Supervised {
    /// Starts `serve --instances N` with `args` (everything but `--listen` and `--instances`)
    /// on N consecutive free loopback ports, `secrets` in its environment.
    ///
    /// The ports were free a moment before the child binds them; another process may take one
    /// meanwhile, and the child then exits at once. That is tried again on other free ports, at
    /// most [`ATTEMPTS`] times in all; a child that runs but does not start its instances in
    /// time is not.
    pub(crate) async fn start(
        instances: u16,
        args: Vec<String>,
        secrets: Vec<(&'static str, String)>,
    ) -> anyhow::Result<Self> {
        let mut attempt = 1;
        loop {
            let base = free_ports(instances).context("find free ports for the instances")?;
            match Self::start_on(base, instances, &args, &secrets).await {
                Err(Start::Exited) if attempt < ATTEMPTS => attempt += 1,
                Err(Start::Exited) => anyhow::bail!(
                    "the stack's supervisor exited before its {instances} instance processes started, {ATTEMPTS} \
                     times (on free ports each time)"
                ),
                Err(Start::Failed(e)) => return Err(e),
                Ok(supervised) => return Ok(supervised),
            }
        }
    }

    /// [`Supervised::start`] on the ports from `base` on.
    async fn start_on(
        base: u16,
        instances: u16,
        args: &[String],
        secrets: &[(&'static str, String)],
    ) -> Result<Self, Start> {
        let exe = std::env::current_exe().context("locate the stampede executable")?;
        let mut child = tokio::process::Command::new(exe)
            .arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{base}"))
            .arg("--instances")
            .arg(instances.to_string())
            .arg("--stop-on-stdin-eof")
            .arg("--supervise")
            .args(args)
            .envs(secrets.iter().map(|(k, v)| (*k, v)))
            .env("RUST_LOG", "warn")
            // Its own process group: a Ctrl-C at the terminal is the run's to handle (it stops
            // the supervisor in its turn), not a signal to the instances mid-run.
            .process_group(0)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("start `stampede serve --instances`")?;
        // The supervisor's own lines (an instance started again, all stopped) are the run's
        // to show; the instances' logs are not.
        let stderr = child.stderr.take().expect("piped");
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if line.starts_with("stampede serve:") || line.starts_with("Error:") {
                    eprintln!("{line}");
                }
            }
        });
        let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
        let mut listening = 0;
        let waited = tokio::time::timeout(START_TIMEOUT, async {
            while listening < instances {
                match lines.next_line().await {
                    Ok(Some(line)) if line.contains("listening on") => listening += 1,
                    Ok(Some(_)) => {}
                    _ => return false,
                }
            }
            true
        })
        .await;
        match waited {
            Ok(true) => {}
            // Its output ended: it exited (a port taken, or a refusal it printed).
            Ok(false) => {
                let _ = child.kill().await;
                return Err(Start::Exited);
            }
            Err(_) => {
                let _ = child.kill().await;
                return Err(Start::Failed(anyhow::anyhow!(
                    "the stack's {instances} instance processes did not all start within {} s",
                    START_TIMEOUT.as_secs()
                )));
            }
        }
        // Later lines (an instance started again says it listens) are read and dropped, so the
        // pipe never fills.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let urls = (0..instances).map(|i| format!("http://127.0.0.1:{}", base + i)).collect();
        let pid = child.id();
        let stdin = std::sync::Mutex::new(child.stdin.take());
        // Straight to loopback whatever proxy the environment names, and a connection per probe:
        // a kept-alive one to a killed instance would answer nothing.
        let probe = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(1))
            .build()
            .context("build the instances' health probe")?;
        Ok(Self { child: tokio::sync::Mutex::new(child), stdin, pid, urls, probe })
    }

    /// The supervisor's process id while it runs.
    fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// Stops the supervisor (its standard input closed: it stops its instances gracefully),
    /// or kills it after 15 s; nothing when it has exited already (its mutant stops on the
    /// first crash).
    pub(crate) async fn shutdown(&self) {
        let mut child = self.child.lock().await;
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        drop(self.stdin.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take());
        if tokio::time::timeout(Duration::from_secs(15), child.wait()).await.is_err() {
            if let Some(pid) = self.pid {
                let _ = signal(pid, "TERM");
            }
            if tokio::time::timeout(Duration::from_secs(5), child.wait()).await.is_err() {
                let _ = child.kill().await;
            }
        }
    }
}

/// How many times [`Supervised::start`] tries.
const ATTEMPTS: u32 = 3;

/// Why one start did not give a running stack.
enum Start {
    /// The child exited before its instances all listened.
    Exited,
    Failed(anyhow::Error),
}

impl From<anyhow::Error> for Start {
    fn from(e: anyhow::Error) -> Self {
        Start::Failed(e)
    }
}

/// `kill -SIG pid`.
fn signal(pid: u32, sig: &str) -> Result<(), String> {
    let status = std::process::Command::new("kill")
        .args([format!("-{sig}"), pid.to_string()])
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("kill: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("kill -{sig} {pid}: {status}")) }
}

/// The first of `n` consecutive loopback ports nothing listens on (a moment ago).
fn free_ports(n: u16) -> anyhow::Result<u16> {
    for _ in 0..50 {
        let first = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        if first.checked_add(n).is_none() {
            continue;
        }
        let held: Result<Vec<_>, _> =
            (first..first + n).map(|p| std::net::TcpListener::bind(("127.0.0.1", p))).collect();
        if held.is_ok() {
            return Ok(first);
        }
    }
    anyhow::bail!("no {n} consecutive free ports")
}

/// The process id of the supervisor's child serving as `stack-{i}`: read from `/proc`.
fn instance_pid(parent: u32, i: usize) -> Option<u32> {
    let wanted = format!("--instance-name\0stack-{i}\0");
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        // The parent's pid is the second field after the command's closing parenthesis.
        let ppid =
            stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
        if ppid != Some(parent) {
            continue;
        }
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(&wanted) {
            return Some(pid);
        }
    }
    None
}

/// What the fault schedule kills and probes.
impl Supervised {
    /// How many instances there are.
    pub(crate) fn count(&self) -> usize {
        self.urls.len()
    }

    /// Kills instance `i` (SIGKILL).
    pub(crate) fn kill(&self, i: usize) -> Result<(), String> {
        let parent = self.pid().ok_or("the stack's supervisor has exited")?;
        let pid = instance_pid(parent, i).ok_or_else(|| format!("instance {i} is not running"))?;
        signal(pid, "KILL")
    }

    /// Whether instance `i` answers its liveness probe (`/healthz`, 200) within a second.
    pub(crate) async fn answers(&self, i: usize) -> bool {
        let url = format!("{}/healthz", self.urls.get(i).map_or("", String::as_str));
        self.probe.get(url).send().await.is_ok_and(|answer| answer.status() == reqwest::StatusCode::OK)
    }
}
