//! shieldd: run an AI agent on a Linux host without trusting it.
//!
//! The path of data: [`policy`] (YAML -> typed rules) -> [`sandbox`]
//! (Landlock, seccomp, cgroup, capabilities) and [`monitor`] (eBPF maps) ->
//! events -> decisions -> [`audit`].
#![deny(missing_docs)]

pub mod api;
pub mod audit;
pub mod cli;
pub mod monitor;
pub mod policy;
pub mod report;
pub mod respond;
pub mod run;
pub mod sandbox;
pub mod scan;
pub mod service;
pub mod tools;

#[cfg(test)]
mod testing;
