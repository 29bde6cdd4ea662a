//! The end-to-end suite as one test binary (it links the controller once, not once per
//! file): real OpenSSH servers, agents over mutual TLS, SMTP, PostgreSQL and a headless
//! Chromium, through the fixtures of `ordo_tests` (`tests/src`). Each module is one
//! subject; `cargo test -p ordo-tests --test e2e accounts::` runs one.
mod accounts;
mod agents;
mod alerts;
mod alerts_clock;
mod ansible;
mod campaign;
mod console;
mod console_bench;
mod faults;
mod follow_ups;
mod keys;
mod login_clock;
mod mail;
mod serve;
mod serve_in_process;
mod ssh_fleet;
mod store;
mod transfers;
mod transports;
