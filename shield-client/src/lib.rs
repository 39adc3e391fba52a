//! Client for the shieldd scan API.
//!
//! [`wire`] holds the request, response and verdict types; the server uses
//! the same definitions, so a client and a daemon built from one tree always
//! agree on the protocol.
#![deny(missing_docs)]

pub mod wire;
