//! The `controller` binary and library on this machine alone (local transport, files,
//! OpenSSL), as one test binary.
mod cli;
mod cms;
mod import;
mod layers;
