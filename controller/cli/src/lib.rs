//! ordo's command line: `controller` and its subcommands (`cli/`, one file each), on top
//! of the controller's library (`ordo-controller`) and its web side (`ordo-web`, which
//! `serve` starts). The binary (`bin/controller.rs`) only sets up logging and the runtime.

#[macro_use]
extern crate ordo_controller;

pub mod cli;

// The controller's modules, under the names these files have always used.
pub(crate) use ordo_controller::{
    actions, alerts, auth, clock, exec, pki, process, project, serve, session, store, transfer,
};
