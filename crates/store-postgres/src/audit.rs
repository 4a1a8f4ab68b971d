//! The DB pool's invariant (#9): one instance never holds more server connections than its
//! pool's cap. Counted from the server's side, in `pg_stat_activity`, by `application_name`,
//! so what is judged is what the database sees, not what the pool believes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use reference::invariant::{Judgement, Violation};
use tokio_postgres::NoTls;

pub const COMPONENT: &str = "db-pool";

const COUNT: &str = "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1";

/// Server connections named `application_name` now.
pub async fn connections(
    client: &tokio_postgres::Client,
    application_name: &str,
) -> Result<usize, tokio_postgres::Error> {
    let n: i64 = client.query_one(COUNT, &[&application_name]).await?.get(0);
    Ok(usize::try_from(n).unwrap_or(0))
}

/// Every sample is within `cap`.
pub fn within_cap(application_name: &str, cap: usize, samples: &[usize]) -> Judgement {
    match samples.iter().copied().enumerate().find(|(_, n)| *n > cap) {
        None => Ok(()),
        Some((at, n)) => Err(Violation::new(
            COMPONENT,
            "over-cap",
            format!(
                "{n} server connections named {application_name} at sample {at} of {}, cap {cap} (peak {})",
                samples.len(),
                samples.iter().max().copied().unwrap_or(0)
            ),
        )),
    }
}

/// Why sampling failed.
#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    #[error("cannot sample pg_stat_activity: {0}; is the server running and DATABASE_URL right?")]
    Postgres(String),
    #[error("cannot start the sampler: {0}")]
    Start(String),
}

/// Polls the connection count of one application name on its own connection and thread
/// (outside any pool it watches) every `every`, until [`Sampler::finish`].
pub struct Sampler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Result<Vec<usize>, SampleError>>,
}

impl Sampler {
    pub fn start(url: &str, application_name: &str, every: Duration) -> Result<Self, SampleError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| SampleError::Start(e.to_string()))?;
        let (url, name) = (url.to_owned(), application_name.to_owned());
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, (ready_tx, ready_rx)) = (Arc::clone(&stop), std::sync::mpsc::channel());
        let thread = std::thread::spawn(move || {
            runtime.block_on(async move {
                let pg = |e: tokio_postgres::Error| SampleError::Postgres(crate::describe(&e));
                let (client, connection) = tokio_postgres::connect(&url, NoTls).await.map_err(pg)?;
                tokio::spawn(connection);
                let mut samples = vec![connections(&client, &name).await.map_err(pg)?];
                let _ = ready_tx.send(());
                let mut tick = tokio::time::interval(every);
                while !flag.load(Ordering::SeqCst) {
                    tick.tick().await;
                    samples.push(connections(&client, &name).await.map_err(pg)?);
                }
                Ok(samples)
            })
        });
        // Sampling has begun (or failed) before the caller starts the load.
        let _ = ready_rx.recv();
        Ok(Self { stop, thread })
    }

    /// Stops sampling; every count seen.
    pub fn finish(self) -> Result<Vec<usize>, SampleError> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().map_err(|_| SampleError::Start("the sampler thread panicked".into()))?
    }
}
