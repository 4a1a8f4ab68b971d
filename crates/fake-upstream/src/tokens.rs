//! Accounts, refresh tokens and access tokens: the fake's OAuth state.
//!
//! An account is registered through the control API (or [`crate::RunningUpstream::register_account`])
//! and gets a refresh token plus a first access token. Access tokens live for
//! [`crate::Config::access_token_lifetime`] from their issue and stay valid until then even after
//! a refresh. Refresh tokens rotate when [`crate::Config::rotate_refresh_tokens`] is set (the
//! default): each refresh issues a new one and retires the one presented, and presenting a
//! retired token again is `invalid_grant` — what makes two schedulers refreshing the same
//! credential visible. The account's current token stays valid after such a reuse (no family
//! revocation), so one double refresh does not lock the stack out. Without rotation the same
//! refresh token is handed back on every refresh.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// What to register. Every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAccount {
    /// The account's name (1–64 of `A-Za-z0-9._-`); generated (`account-<n>`) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// When set, a refresh must present this `client_id` (or `client_key`); when absent, any is
    /// accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// A refresh token to use instead of a generated one, for a stack whose credentials are
    /// configured in advance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

impl NewAccount {
    pub fn named(account: impl Into<String>) -> Self {
        Self { account: Some(account.into()), ..Self::default() }
    }
}

/// A registered account's credentials, as the stack would store them after an OAuth consent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    pub account: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    pub access_token: String,
    /// Seconds the access token lives (whole seconds, rounded down).
    pub expires_in: u64,
    pub token_type: String,
    pub refresh_token: String,
}

/// How a refresh attempt ended; the refresh log and the token endpoint's answer follow it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefreshOutcome {
    /// New tokens issued.
    Refreshed,
    /// The refresh token was retired by an earlier refresh (rotation): `invalid_grant`.
    Reused,
    /// The refresh token was revoked: `invalid_grant`.
    Revoked,
    /// The refresh token was never issued here: `invalid_grant`.
    Unknown,
    /// The `client_id` does not match the account's: `invalid_client`.
    WrongClient,
}

/// What the `Authorization` header of a video request carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Auth {
    Missing,
    /// Not a token issued here, or a revoked one.
    Unknown,
    Expired {
        account: String,
    },
    Valid {
        account: String,
    },
}

/// Tokens issued by one refresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Issued {
    pub(crate) access_token: String,
    pub(crate) refresh_token: String,
    pub(crate) expires_in: u64,
}

#[derive(Debug)]
pub(crate) struct Tokens {
    lifetime: Duration,
    rotate: bool,
    /// Differs between instances, so a token from another fake upstream is unknown here.
    salt: String,
    next: u64,
    accounts: BTreeMap<String, Account>,
    refresh: HashMap<String, Refresh>,
    access: HashMap<String, Access>,
}

#[derive(Debug)]
struct Account {
    client_id: Option<String>,
}

#[derive(Debug)]
struct Refresh {
    account: String,
    state: RefreshState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RefreshState {
    Current,
    Rotated,
    Revoked,
}

#[derive(Debug)]
struct Access {
    account: String,
    expires_at: Instant,
    revoked: bool,
}

impl Tokens {
    pub(crate) fn new(lifetime: Duration, rotate: bool) -> Self {
        let salt = format!("{:08x}", RandomState::new().hash_one(Instant::now()) as u32);
        Self {
            lifetime,
            rotate,
            salt,
            next: 0,
            accounts: BTreeMap::new(),
            refresh: HashMap::new(),
            access: HashMap::new(),
        }
    }

    pub(crate) fn register(&mut self, new: NewAccount) -> Result<Credentials, Error> {
        let account = match new.account {
            Some(name) => {
                let valid = (1..=64).contains(&name.len())
                    && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
                if !valid {
                    return Err(Error::InvalidAccountName { account: name });
                }
                if self.accounts.contains_key(&name) {
                    return Err(Error::AccountExists { account: name });
                }
                name
            }
            None => loop {
                let name = format!("account-{}", self.id());
                if !self.accounts.contains_key(&name) {
                    break name;
                }
            },
        };
        let refresh_token = match new.refresh_token {
            Some(token) if self.refresh.contains_key(&token) || token.is_empty() => {
                return Err(Error::RefreshTokenTaken { token });
            }
            Some(token) => token,
            None => self.token("rt"),
        };
        self.refresh.insert(
            refresh_token.clone(),
            Refresh { account: account.clone(), state: RefreshState::Current },
        );
        self.accounts.insert(account.clone(), Account { client_id: new.client_id.clone() });
        let access_token = self.issue_access(&account);
        Ok(Credentials {
            account,
            client_id: new.client_id,
            access_token,
            expires_in: self.lifetime.as_secs(),
            token_type: "Bearer".to_owned(),
            refresh_token,
        })
    }

    /// One refresh: the account the token belonged to (if any) and what happened.
    pub(crate) fn refresh(
        &mut self,
        refresh_token: &str,
        client_id: Option<&str>,
    ) -> (Option<String>, Result<Issued, RefreshOutcome>) {
        let Some(entry) = self.refresh.get(refresh_token) else {
            return (None, Err(RefreshOutcome::Unknown));
        };
        let account = entry.account.clone();
        let outcome = match entry.state {
            RefreshState::Rotated => Some(RefreshOutcome::Reused),
            RefreshState::Revoked => Some(RefreshOutcome::Revoked),
            RefreshState::Current => {
                let expected = self.accounts.get(&account).and_then(|a| a.client_id.as_deref());
                match expected {
                    Some(expected) if client_id != Some(expected) => Some(RefreshOutcome::WrongClient),
                    _ => None,
                }
            }
        };
        if let Some(outcome) = outcome {
            return (Some(account), Err(outcome));
        }
        let refresh_token = if self.rotate {
            if let Some(old) = self.refresh.get_mut(refresh_token) {
                old.state = RefreshState::Rotated;
            }
            let new = self.token("rt");
            self.refresh
                .insert(new.clone(), Refresh { account: account.clone(), state: RefreshState::Current });
            new
        } else {
            refresh_token.to_owned()
        };
        let access_token = self.issue_access(&account);
        (Some(account), Ok(Issued { access_token, refresh_token, expires_in: self.lifetime.as_secs() }))
    }

    /// Judges an `Authorization` header value.
    pub(crate) fn authorize(&self, header: Option<&str>, now: Instant) -> Auth {
        let Some(token) = header.and_then(bearer) else { return Auth::Missing };
        match self.access.get(token) {
            None => Auth::Unknown,
            Some(access) if access.revoked => Auth::Unknown,
            Some(access) if now >= access.expires_at => Auth::Expired { account: access.account.clone() },
            Some(access) => Auth::Valid { account: access.account.clone() },
        }
    }

    /// Makes every access token of `account` expired from now on.
    pub(crate) fn expire(&mut self, account: &str, now: Instant) -> Result<(), Error> {
        self.known(account)?;
        for access in self.access.values_mut().filter(|a| a.account == account) {
            access.expires_at = access.expires_at.min(now);
        }
        Ok(())
    }

    /// Revokes every refresh and access token of `account`; it can be used again only through
    /// a new registration under another name.
    pub(crate) fn revoke(&mut self, account: &str) -> Result<(), Error> {
        self.known(account)?;
        for refresh in self.refresh.values_mut().filter(|r| r.account == account) {
            refresh.state = RefreshState::Revoked;
        }
        for access in self.access.values_mut().filter(|a| a.account == account) {
            access.revoked = true;
        }
        Ok(())
    }

    fn known(&self, account: &str) -> Result<(), Error> {
        if self.accounts.contains_key(account) {
            Ok(())
        } else {
            Err(Error::UnknownAccount { account: account.to_owned() })
        }
    }

    fn issue_access(&mut self, account: &str) -> String {
        let token = self.token("at");
        let expires_at = Instant::now() + self.lifetime;
        self.access.insert(token.clone(), Access { account: account.to_owned(), expires_at, revoked: false });
        token
    }

    fn token(&mut self, kind: &str) -> String {
        let id = self.id();
        format!("fake-{kind}-{}-{id}", self.salt)
    }

    fn id(&mut self) -> u64 {
        self.next += 1;
        self.next
    }
}

/// The token of an `Authorization: Bearer <token>` value (scheme case-insensitive).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}
