//! Progress of a load run: a bar on a terminal, plain lines every 5 s elsewhere (CI logs).

use std::io::IsTerminal;
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressStyle};

/// Whether progress is drawn as a bar: stdout is a terminal and not a CI job's.
fn interactive() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("CI").is_none()
}

/// The callback `load::run` reports its progress to.
pub(crate) fn reporter() -> impl Fn(load::Progress) + Send + Sync + 'static {
    let bar: Mutex<Option<ProgressBar>> = Mutex::new(None);
    let last_line = Mutex::new(0u64);
    let interactive = interactive();
    move |progress| match progress {
        load::Progress::Phase(phase) => {
            if let Some(bar) = bar.lock().unwrap_or_else(|p| p.into_inner()).take() {
                bar.finish_and_clear();
            }
            println!("  {phase}");
        }
        load::Progress::Tick { elapsed, total, requests } => {
            let secs = elapsed.as_secs_f64();
            let rate = if secs > 0.0 { requests as f64 / secs } else { 0.0 };
            if interactive {
                let mut bar = bar.lock().unwrap_or_else(|p| p.into_inner());
                let bar = bar.get_or_insert_with(|| {
                    let bar = ProgressBar::new(total.as_secs().max(1));
                    bar.set_style(
                        ProgressStyle::with_template("  [{bar:40}] {pos}/{len} s  {msg}")
                            .expect("a valid template")
                            .progress_chars("=> "),
                    );
                    bar
                });
                bar.set_position(elapsed.as_secs().min(total.as_secs()));
                bar.set_message(format!("{requests} requests, {rate:.0}/s"));
                if elapsed >= total {
                    bar.finish_and_clear();
                }
            } else {
                let mut last = last_line.lock().unwrap_or_else(|p| p.into_inner());
                let now = elapsed.as_secs();
                if now >= *last + 5 {
                    *last = now - now % 5;
                    println!(
                        "  {:>4} s of {:.0} s: {requests} requests, {rate:.0}/s",
                        now,
                        total.as_secs_f64()
                    );
                }
            }
        }
    }
}
