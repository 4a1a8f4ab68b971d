//! `stampede fake-upstream`: the fake YouTube/TikTok upstream on its own, for a stack stampede
//! did not start. Point the stack's YouTube/TikTok base URL at its API and give its control API
//! to `stampede check --upstream-control`: the upstream checks inject their faults there and
//! read what the stack did to the upstream.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

#[derive(Debug, Clone, Args)]
pub(crate) struct FakeUpstreamArgs {
    /// Where the API listens: the stack's YouTube/TikTok base URL. Port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:9100")]
    pub(crate) listen: SocketAddr,
    /// Where the control API listens (its own listener, so the API's connection counts hold
    /// the stack's connections alone): `stampede check --upstream-control`'s URL.
    #[arg(long, default_value = "127.0.0.1:9101")]
    pub(crate) control: SocketAddr,
    /// The account registered at start, whose credential the stack refreshes (the reference
    /// profile's `token-refresh` check reads `platform`).
    #[arg(long, default_value = "platform")]
    pub(crate) account: String,
    /// The OAuth client id a refresh of that account must present; any when absent.
    #[arg(long, value_name = "ID")]
    pub(crate) client_id: Option<String>,
    /// The account's refresh token, for a stack whose credentials are configured in advance;
    /// generated (and printed) when absent.
    #[arg(long, value_name = "TOKEN")]
    pub(crate) refresh_token: Option<String>,
    /// How long the upstream's access tokens live.
    #[arg(long, default_value = "1h", value_parser = crate::args::parse_duration)]
    pub(crate) token_lifetime: Duration,
}

pub(crate) fn run(args: FakeUpstreamArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let signal = crate::serve::shutdown_signal();
        let config = fake_upstream::Config {
            listen: args.listen,
            control_listen: Some(args.control),
            access_token_lifetime: args.token_lifetime,
            ..Default::default()
        };
        let fake = fake_upstream::FakeUpstream::start(config)
            .await
            .with_context(|| format!("listen on {} and {}", args.listen, args.control))?;
        let account = fake
            .register_account(fake_upstream::NewAccount {
                account: Some(args.account.clone()),
                client_id: args.client_id.clone(),
                refresh_token: args.refresh_token.clone(),
            })
            .with_context(|| format!("register the account {:?}", args.account))?;
        println!("stampede fake-upstream: API on {}", fake.url());
        println!("stampede fake-upstream: control API on {}", fake.control_url());
        println!(
            "stampede fake-upstream: account {} refresh token {}{}",
            account.account,
            account.refresh_token,
            account.client_id.map_or(String::new(), |id| format!(" (client id {id})"))
        );
        signal.await;
        fake.shutdown().await;
        Ok(ExitCode::SUCCESS)
    })
}
