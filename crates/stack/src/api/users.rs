//! `POST /v1/users`: registration. Open — the harness creates the users it drives — but
//! limited per client address, so that the per-user limits bound something: a client cannot
//! make itself a new user for every request.
//!
//! The address is the connection's peer (an IPv6 address by its /64, what one host is usually
//! given); `X-Forwarded-For` is not trusted, since any client can write it. A request that came
//! over no socket (a router called in process) has no address and is not limited.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use reference::limit::RateLimiter;
use serde::Deserialize;
use serde_json::json;

use super::Json;
use crate::auth;
use crate::error::{ApiError, ApiResult, RateLimitInfo};
use crate::state::AppState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewUser {
    pub name: String,
}

/// The client's address as the registration limit keys it.
pub(crate) struct ClientAddress(Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(peer)| peer.ip());
        Ok(ClientAddress(peer.map(key)))
    }
}

/// An IPv4 address as it is; an IPv6 one by its /64 (an IPv4-mapped one as IPv4).
fn key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// 201 `{id, name, token}` with the address's `RateLimit-*` fields; 429 over the limit.
pub(crate) async fn create(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    Json(body): Json<NewUser>,
) -> ApiResult<Response> {
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::BadRequest("name must be 1 to 100 characters".to_owned()));
    }
    let info = match &address {
        Some(address) => {
            let decision = state.registrations.check(&format!("addr:{address}")).await?;
            Some(RateLimitInfo::admit(decision, "registrations from one address")?)
        }
        None => None,
    };
    let (user, token) = auth::create(&state, name.to_owned()).await?;
    let mut response =
        (StatusCode::CREATED, Json(json!({ "id": user.id, "name": user.name, "token": token })))
            .into_response();
    if let Some(info) = info {
        info.apply(&mut response);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_client_is_keyed_by_its_64_and_a_mapped_ipv4_as_ipv4() {
        assert_eq!(key("10.1.2.3".parse().unwrap()), "10.1.2.3");
        assert_eq!(key("2001:db8:1:2:aaaa::1".parse().unwrap()), "2001:db8:1:2::/64");
        assert_eq!(key("2001:db8:1:2:ffff::9".parse().unwrap()), "2001:db8:1:2::/64");
        assert_eq!(key("::ffff:10.0.0.7".parse().unwrap()), "10.0.0.7");
    }
}
