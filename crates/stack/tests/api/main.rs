//! The stack over HTTP, in process on port 0: its OpenAPI contract, its error cases, project
//! membership by invitation, and what a client can observe of its performance work. One test
//! binary for all, to keep the build short.

mod contract;
mod errors;
mod invitations;
mod observable;
mod support;
