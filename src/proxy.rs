//! `stampede proxy`: fault proxies with Toxiproxy's HTTP API, on their own — for a stack
//! stampede did not start and a machine without Toxiproxy. Point the stack's Redis, PostgreSQL
//! or upstream address at a proxy, and give the API to `run --target … --toxiproxy URL`: link
//! faults then name the proxies.

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

#[derive(Debug, Clone, Args)]
pub(crate) struct ProxyArgs {
    /// Where the Toxiproxy API listens (Toxiproxy's own default is 8474). Port 0 picks a free
    /// port.
    #[arg(long, default_value = "127.0.0.1:8474")]
    pub(crate) listen: SocketAddr,
    /// A proxy to create at start, `NAME=LISTEN=UPSTREAM` (e.g.
    /// `redis=127.0.0.1:26379=127.0.0.1:6379`; LISTEN's port 0 picks a free one, printed).
    /// Repeatable; more can be made through the API.
    #[arg(long = "proxy", value_name = "NAME=LISTEN=UPSTREAM", value_parser = parse_proxy)]
    pub(crate) proxies: Vec<faults::ProxySpec>,
}

fn parse_proxy(text: &str) -> Result<faults::ProxySpec, String> {
    let mut parts = text.splitn(3, '=');
    let (Some(name), Some(listen), Some(upstream)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format!("{text:?} is not NAME=LISTEN=UPSTREAM"));
    };
    if name.is_empty() || listen.is_empty() || upstream.is_empty() {
        return Err(format!("{text:?}: NAME, LISTEN and UPSTREAM must all be given"));
    }
    Ok(faults::ProxySpec {
        name: name.to_owned(),
        listen: listen.to_owned(),
        upstream: upstream.to_owned(),
        enabled: true,
    })
}

pub(crate) fn run(args: ProxyArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let signal = crate::serve::shutdown_signal();
        let server = faults::ProxyServer::start(args.listen)
            .await
            .with_context(|| format!("listen on {}", args.listen))?;
        println!("stampede proxy: Toxiproxy API on {}", server.api_url());
        let client = faults::Toxiproxy::new(server.api_url());
        for spec in &args.proxies {
            match client.create_proxy(spec).await {
                Ok(proxy) => {
                    println!("stampede proxy: {} on {} to {}", proxy.name, proxy.listen, proxy.upstream)
                }
                Err(e) => {
                    server.shutdown().await;
                    anyhow::bail!("proxy {:?}: {e}", spec.name);
                }
            }
        }
        std::io::Write::flush(&mut std::io::stdout())?;
        signal.await;
        server.shutdown().await;
        Ok(ExitCode::SUCCESS)
    })
}
