//! Client for the shieldd scan API.
//!
//! [`wire`] holds the request, response and verdict types; the server uses
//! the same definitions, so a client and a daemon built from one tree always
//! agree on the protocol. With the `client` feature (default) comes the
//! blocking [`Client`]; with `async`, the tokio [`AsyncClient`].
//!
//! Both fail closed by default: when shieldd cannot be reached or cannot
//! answer, `scan` and `check_tool` return a blocked verdict (the `try_*`
//! variants return the [`Error`]). [`FailMode::Open`] allows instead.
//!
//! The integration tests start the real `shieldd serve` (from
//! `target/debug/shieldd`, built when missing, or `SHIELDD_BIN`):
//! `cargo test -p shield-client --all-features`.
#![deny(missing_docs)]

pub mod wire;

#[cfg(feature = "async")]
mod asynchronous;
#[cfg(feature = "client")]
mod blocking;
#[cfg(feature = "client")]
mod common;

#[cfg(feature = "async")]
pub use asynchronous::{AsyncClient, AsyncStream};
#[cfg(feature = "client")]
pub use blocking::{Client, Stream};
#[cfg(feature = "client")]
pub use common::{Error, FailMode, DEFAULT_MAX_RESPONSE, DEFAULT_TIMEOUT, SOCKET_ENV};
#[cfg(feature = "client")]
pub use wire::{Action, Direction, Finding, FindingKind, Verdict};
