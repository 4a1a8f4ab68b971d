//! Fixed-window decisions per second through `RedisStore`, beside `redis-benchmark` running
//! the same `incr_window` Lua script (EVALSHA, same key pattern, same 50 clients) in the same
//! run, printed as a ratio; and beside `redis-benchmark -P 16`, the server's pipelined ceiling.
//!
//! `cargo bench -p store-redis --bench redis_limiter` (reads `REDIS_URL`; `BENCH_SECS` sets how
//! long the store side runs, default 5; `BENCH_CLIENTS` the concurrency, default 50).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reference::fixed_window::FixedWindow;
use reference::limit::{Limit, RateLimiter};
use reference::store::Store;
use store_redis::RedisStore;

/// Distinct identifiers, like `redis-benchmark -r 1000` (its `__rand_int__` is 12 digits).
const IDS: u64 = 1_000;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let secs: u64 = env_or("BENCH_SECS", 5);
    let clients: usize = env_or("BENCH_CLIENTS", 50);
    let prefix = format!("stampede-bench:{}", std::process::id());
    let store = match RedisStore::connect(&url, &prefix) {
        Ok(store) => store,
        Err(e) => {
            eprintln!("skipping the redis limiter benchmark: {e}");
            return;
        }
    };
    let limit = Limit::new(1_000_000_000, Duration::from_secs(60));
    let limiter = Arc::new(FixedWindow::new(store.clone(), "rl", limit));

    // Warm up: loads the script, fills the keys.
    for id in 0..IDS {
        reference::sync::block_on(limiter.check(&format!("bench-{id:012}"))).expect("warm-up call");
    }

    let store_rate = through_store(&store, &limiter, clients, Duration::from_secs(secs));
    let requests = ((store_rate * secs as f64) as u64).max(50_000);
    let reference_rate = redis_benchmark(&url, &store, clients, requests, 1);
    // RedisStore pipelines its callers over one multiplexed socket; redis-benchmark's 50
    // clients each wait for their reply. Pipelined, it shows what the server itself can do.
    let pipelined_rate = redis_benchmark(&url, &store, clients, requests * 4, 16);

    println!("fixed-window decisions/s, {clients} concurrent callers, {IDS} keys, one Lua script each:");
    println!("  RedisStore (FixedWindow::check)          {store_rate:>12.0}/s");
    match reference_rate {
        Some(rate) => {
            println!("  redis-benchmark -c {clients} EVALSHA same script {rate:>12.0}/s");
            println!("  ratio RedisStore / redis-benchmark       {:>12.1} %", 100.0 * store_rate / rate);
        }
        None => println!("  redis-benchmark: not available, no ratio"),
    }
    if let Some(rate) = pipelined_rate {
        println!("  redis-benchmark -c {clients} -P 16 (server ceiling) {rate:>11.0}/s");
        println!("  ratio RedisStore / server ceiling        {:>12.1} %", 100.0 * store_rate / rate);
    }
    cleanup(&store);
}

/// `clients` tasks on the store's runtime, each deciding in a loop for `duration`.
fn through_store(
    store: &RedisStore,
    limiter: &Arc<FixedWindow<RedisStore>>,
    clients: usize,
    duration: Duration,
) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|client| {
            let (limiter, done, stop) = (Arc::clone(limiter), Arc::clone(&done), Arc::clone(&stop));
            store.runtime().spawn(async move {
                let mut n = client as u64;
                while !stop.load(Ordering::Relaxed) {
                    let id = format!("bench-{:012}", n % IDS);
                    limiter.check(&id).await.expect("store call");
                    done.fetch_add(1, Ordering::Relaxed);
                    n += 7;
                }
            })
        })
        .collect();
    std::thread::sleep(duration);
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        reference::sync::block_on(task).expect("bench task");
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

/// `redis-benchmark` running the same script with the same key pattern; requests per second.
fn redis_benchmark(
    url: &str,
    store: &RedisStore,
    clients: usize,
    requests: u64,
    pipeline: u32,
) -> Option<f64> {
    let sha = store_redis::lua::incr_window().get_hash().to_owned();
    let key = format!("{}__rand_int__", store.redis_key("rl:bench-"));
    let output = std::process::Command::new("redis-benchmark")
        .args([
            "-u",
            url,
            "-c",
            &clients.to_string(),
            "-n",
            &requests.to_string(),
            "-P",
            &pipeline.to_string(),
        ])
        .args(["-r", &IDS.to_string(), "--csv", "EVALSHA", &sha, "1", &key, "1", "60000"])
        .output();
    let output = match output {
        Ok(output) if output.status.success() => output,
        Ok(output) => {
            eprintln!("redis-benchmark failed: {}", String::from_utf8_lossy(&output.stderr));
            return None;
        }
        Err(e) => {
            eprintln!("cannot run redis-benchmark: {e}");
            return None;
        }
    };
    let text = String::from_utf8_lossy(&output.stdout);
    // CSV: a header line, then `"EVALSHA ...","<rps>",...`.
    text.lines()
        .filter_map(|line| line.split("\",\"").nth(1))
        .find_map(|rps| rps.trim_matches('"').parse().ok())
}

/// Both sides only wrote `rl:*` counters (60 s TTLs); drop them now.
fn cleanup(store: &RedisStore) {
    let deleted = reference::sync::block_on(store.del_matching("rl:*")).expect("cleanup");
    eprintln!("deleted {deleted} benchmark keys");
}
