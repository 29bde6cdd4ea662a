//! The controller library on this machine alone (the actions, OpenSSL's CMS, the layering of its
//! modules), as one test binary. The `controller` binary's own tests are in `cli/tests`.
mod actions;
mod cms;
mod layers;
