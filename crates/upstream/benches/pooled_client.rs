//! Requests per second of the pooled client beside the client-per-request mutant (the seed's
//! "before"), against the same loopback server in the same run, printed as a ratio.
//!
//! `cargo bench -p upstream --bench pooled_client` (plain HTTP on loopback, so the gap is
//! connection set-up and client construction only; in production each new connection also
//! pays a TLS handshake, so the real gap is wider).

use std::time::{Duration, Instant};

use upstream::mutants::ClientPerRequest;
use upstream::testing::{Behaviour, TestServer};
use upstream::{Upstream, UpstreamClient, UpstreamConfig, suite};

const REQUESTS: usize = 4_000;
const TASKS: usize = 8;
const ROUNDS: usize = 3;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("build the tokio runtime");
    runtime.block_on(async {
        let server = TestServer::start(Behaviour::Answer { delay: Duration::ZERO })
            .await
            .expect("bind a loopback port for the benchmark server");
        let config = UpstreamConfig::SEED;
        let pooled = UpstreamClient::new(server.url(), config).expect("pooled client");
        let per_request = ClientPerRequest::new(server.url(), config).expect("client-per-request mutant");

        // Warm-up, then the best of ROUNDS each, interleaved so both see the same machine.
        suite::run(&pooled, "/warm", 200, TASKS).await.expect("warm-up");
        let mut best = (0.0f64, 0.0f64);
        for _ in 0..ROUNDS {
            best.0 = best.0.max(rate(&pooled).await);
            best.1 = best.1.max(rate(&per_request).await);
        }
        let observed = server.observed();
        println!("{REQUESTS} GETs from {TASKS} tasks, loopback HTTP/1.1, best of {ROUNDS}");
        println!("pooled client          {:>10.0} req/s", best.0);
        println!("client per request     {:>10.0} req/s", best.1);
        println!("ratio pooled / per-request  {:.2}x", best.0 / best.1);
        println!(
            "server saw {} connections for {} requests",
            observed.connections_opened, observed.requests_served
        );
    });
}

async fn rate<U: Upstream>(client: &U) -> f64 {
    let started = Instant::now();
    let replies = suite::run(client, "/bench", REQUESTS, TASKS).await.expect("benchmark requests succeed");
    assert_eq!(replies.len(), REQUESTS);
    REQUESTS as f64 / started.elapsed().as_secs_f64()
}
