//! The `controller` binary on this machine alone (local transport, files, imports), as
//! one test binary.
mod cli;
mod import;
