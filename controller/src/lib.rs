//! ordo's controller: runs jobs across a fleet over SSH or locally, collects, archives,
//! mails and records every execution.

pub mod archive;
pub mod cli;
pub mod collect;
pub mod config;
pub mod engine;
pub mod mail;
pub mod output;
pub mod pki;
pub mod store;
pub mod transport;
