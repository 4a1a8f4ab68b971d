//! A client for Toxiproxy's HTTP API: drives the embedded [`crate::ProxyServer`] or a real
//! Toxiproxy by URL, with the same calls.

use std::collections::BTreeMap;

use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::proxy::{ProxySpec, ProxyState};
use crate::toxic::Toxic;

/// What went wrong talking to a Toxiproxy API.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No answer: the server is not there, or the connection broke.
    #[error("cannot reach toxiproxy at {url}: {source}; is it running?")]
    Unreachable {
        /// The request's URL.
        url: String,
        /// Why.
        source: reqwest::Error,
    },
    /// The server answered with an error; `message` is Toxiproxy's `error` text (or the body).
    #[error("toxiproxy at {url} answered {status}: {message}")]
    Api {
        /// The request's URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// Toxiproxy's error text.
        message: String,
    },
    /// The answer was not the JSON expected.
    #[error("unexpected answer from toxiproxy at {url}: {message}")]
    Decode {
        /// The request's URL.
        url: String,
        /// What did not parse.
        message: String,
    },
}

/// A Toxiproxy API at a base URL (`http://127.0.0.1:8474`).
#[derive(Debug, Clone)]
pub struct Toxiproxy {
    base: String,
    http: reqwest::Client,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: String,
}

impl Toxiproxy {
    /// A client for the API at `url`; nothing is sent until a call.
    pub fn new(url: impl Into<String>) -> Toxiproxy {
        let base = url.into().trim_end_matches('/').to_owned();
        // Bounded: a Toxiproxy that accepts and never answers must not hang a run.
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Toxiproxy { base, http }
    }

    /// The base URL.
    pub fn url(&self) -> &str {
        &self.base
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(String, Vec<u8>), ClientError> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method, &url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let unreachable = |source| ClientError::Unreachable { url: url.clone(), source };
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(unreachable)?.to_vec();
        if !status.is_success() {
            let message = match serde_json::from_slice::<ErrorBody>(&bytes) {
                Ok(body) => body.error,
                Err(_) => String::from_utf8_lossy(&bytes).trim().to_owned(),
            };
            return Err(ClientError::Api { url, status: status.as_u16(), message });
        }
        Ok((url, bytes))
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<T, ClientError> {
        let (url, bytes) = self.send(method, path, body).await?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode { url, message: e.to_string() })
    }

    /// The server's version (`GET /version`); older Toxiproxy answers plain text, newer JSON.
    pub async fn version(&self) -> Result<String, ClientError> {
        let (_, bytes) = self.send(Method::GET, "/version", None).await?;
        Ok(match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(object)) => {
                object.get("version").and_then(Value::as_str).unwrap_or_default().to_owned()
            }
            _ => String::from_utf8_lossy(&bytes).trim().to_owned(),
        })
    }

    /// Every proxy, by name.
    pub async fn proxies(&self) -> Result<BTreeMap<String, ProxyState>, ClientError> {
        self.call(Method::GET, "/proxies", None).await
    }

    /// Creates a proxy; the answer carries the address it actually listens on.
    pub async fn create_proxy(&self, spec: &ProxySpec) -> Result<ProxyState, ClientError> {
        self.call(Method::POST, "/proxies", Some(json!(spec))).await
    }

    /// The proxy named `name`, with its toxics.
    pub async fn proxy(&self, name: &str) -> Result<ProxyState, ClientError> {
        self.call(Method::GET, &format!("/proxies/{name}"), None).await
    }

    /// Enables (listens again, on the same address) or disables (stops listening, closes
    /// every connection) a proxy. Sent as `POST`, which every Toxiproxy 2.x accepts.
    pub async fn set_enabled(&self, name: &str, enabled: bool) -> Result<ProxyState, ClientError> {
        self.call(Method::POST, &format!("/proxies/{name}"), Some(json!({"enabled": enabled}))).await
    }

    /// Adds a toxic to a proxy; open connections take it too.
    pub async fn add_toxic(&self, proxy: &str, toxic: &Toxic) -> Result<Toxic, ClientError> {
        self.call(Method::POST, &format!("/proxies/{proxy}/toxics"), Some(json!(toxic))).await
    }

    /// A proxy's toxics.
    pub async fn toxics(&self, proxy: &str) -> Result<Vec<Toxic>, ClientError> {
        self.call(Method::GET, &format!("/proxies/{proxy}/toxics"), None).await
    }

    /// Removes a toxic from a proxy.
    pub async fn remove_toxic(&self, proxy: &str, name: &str) -> Result<(), ClientError> {
        self.send(Method::DELETE, &format!("/proxies/{proxy}/toxics/{name}"), None).await.map(drop)
    }

    /// Deletes a proxy, closing its connections.
    pub async fn delete_proxy(&self, name: &str) -> Result<(), ClientError> {
        self.send(Method::DELETE, &format!("/proxies/{name}"), None).await.map(drop)
    }

    /// Enables every proxy and removes every toxic.
    pub async fn reset(&self) -> Result<(), ClientError> {
        self.send(Method::POST, "/reset", None).await.map(drop)
    }
}

/// Whether an error is Toxiproxy's "not found" (a proxy or toxic that does not exist).
pub fn is_not_found(error: &ClientError) -> bool {
    matches!(error, ClientError::Api { status, .. } if *status == StatusCode::NOT_FOUND.as_u16())
}
