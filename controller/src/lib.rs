//! ordo's controller: runs jobs across a fleet over SSH, agents or locally, collects,
//! archives, mails and records every execution; schedules them (`serve`), and holds the
//! actions accounts, keys and runs go through. Its history is `ordo-store`; its web side
//! (API and console) is `ordo-web`; its command line and binary are `ordo-cli`.

/// Prints a line on stdout. A closed stdout (`controller run ... | head`) is not an error:
/// `println!` would panic and stop a run half way; the run goes on and is recorded.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

pub mod actions;
pub mod alerts;
pub mod archive;
pub mod auth;
pub mod collect;
pub mod exec;
pub mod fanout;
pub mod mail;
pub mod pki;
pub mod process;
pub mod project;
pub mod serve;
pub mod session;
pub mod terminal;
pub mod transfer;
pub mod webhook;

/// The history (its own crate: sqlx only), under the names the controller has always used.
pub use ordo_store as store;
pub use ordo_store::clock;
