//! ordo's gRPC contract between the controller and its agents (`proto/ordo/agent/v1`),
//! generated at build time with protox and tonic-prost-build (no `protoc` needed), and the
//! shell side of the wire ([`shell`]): the commands a run sends over SSH, which the agent
//! reuses for steps and collection.

pub mod shell;

/// `ordo.agent.v1`: the agent service and its messages (generated code).
#[allow(clippy::all, clippy::pedantic)]
pub mod agent {
    tonic::include_proto!("ordo.agent.v1");

    /// The encoded file descriptor set, for gRPC server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("agent_descriptor");
}
