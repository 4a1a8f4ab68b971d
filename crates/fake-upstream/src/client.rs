//! [`ControlClient`]: the control API over HTTP, for a fake upstream in another process.

use std::time::Duration;

use reqwest::{Method, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::Error;
use crate::faults::{Fault, FaultStatus};
use crate::stats::Stats;
use crate::tokens::{Credentials, NewAccount};

/// How long one control request may take before it is an error.
const TIMEOUT: Duration = Duration::from_secs(10);

/// A typed client of `/_control/`. One connection, kept alive, is reused for every call.
#[derive(Debug, Clone)]
pub struct ControlClient {
    base: Url,
    http: reqwest::Client,
}

impl ControlClient {
    /// A client of the fake upstream at `base_url` (`http://host:port`; the control listener's
    /// address when the control API has its own).
    pub fn new(base_url: &str) -> Result<Self, Error> {
        let invalid = |reason: String| Error::ControlUrl { url: base_url.to_owned(), reason };
        let base = Url::parse(base_url).map_err(|e| invalid(e.to_string()))?;
        if base.scheme() != "http" {
            return Err(invalid(format!("scheme {} is not supported, only plain http", base.scheme())));
        }
        let http = reqwest::Client::builder()
            .http1_only()
            .no_proxy()
            .timeout(TIMEOUT)
            .build()
            .map_err(|source| Error::ControlRequest { path: String::new(), source })?;
        Ok(Self { base, http })
    }

    pub fn base_url(&self) -> &str {
        self.base.as_str()
    }

    /// `GET /_control/health`: succeeds once the fake upstream answers.
    pub async fn health(&self) -> Result<(), Error> {
        self.call::<(), serde_json::Value>(Method::GET, "/_control/health", None).await.map(drop)
    }

    pub async fn stats(&self) -> Result<Stats, Error> {
        self.call::<(), _>(Method::GET, "/_control/stats", None).await
    }

    /// Zeroes the stats and clears the faults; accounts and tokens stay.
    pub async fn reset(&self) -> Result<(), Error> {
        self.call_empty::<()>(Method::POST, "/_control/reset", None).await
    }

    pub async fn faults(&self) -> Result<Vec<FaultStatus>, Error> {
        self.call::<(), _>(Method::GET, "/_control/faults", None).await
    }

    /// Replaces every fault with `faults`.
    pub async fn set_faults(&self, faults: &[Fault]) -> Result<(), Error> {
        self.call_empty(Method::PUT, "/_control/faults", Some(&faults)).await
    }

    /// Adds `fault` after the ones in force.
    pub async fn add_fault(&self, fault: &Fault) -> Result<(), Error> {
        self.call_empty(Method::POST, "/_control/faults", Some(fault)).await
    }

    pub async fn clear_faults(&self) -> Result<(), Error> {
        self.call_empty::<()>(Method::DELETE, "/_control/faults", None).await
    }

    pub async fn register_account(&self, new: &NewAccount) -> Result<Credentials, Error> {
        self.call(Method::POST, "/_control/accounts", Some(new)).await
    }

    /// Makes every access token of `account` expired now.
    pub async fn expire_access_tokens(&self, account: &str) -> Result<(), Error> {
        self.call_empty::<()>(Method::POST, &format!("/_control/accounts/{account}/expire"), None).await
    }

    /// Revokes every refresh and access token of `account`.
    pub async fn revoke_account(&self, account: &str) -> Result<(), Error> {
        self.call_empty::<()>(Method::POST, &format!("/_control/accounts/{account}/revoke"), None).await
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, Error> {
        let response = self.send(method, path, body).await?;
        response.json().await.map_err(|source| Error::ControlRequest { path: path.to_owned(), source })
    }

    async fn call_empty<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<(), Error> {
        self.send(method, path, body).await.map(drop)
    }

    async fn send<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<reqwest::Response, Error> {
        let url = self
            .base
            .join(path)
            .map_err(|e| Error::ControlUrl { url: path.to_owned(), reason: e.to_string() })?;
        let mut request = self.http.request(method, url);
        if let Some(body) = body {
            request = request.json(body);
        }
        let failed = |source| Error::ControlRequest { path: path.to_owned(), source };
        let response = request.send().await.map_err(failed)?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response.text().await.map_err(failed)?;
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
            .unwrap_or(text);
        Err(Error::ControlStatus { path: path.to_owned(), status: status.as_u16(), message })
    }
}
