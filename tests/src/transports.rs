//! One server reached by each transport in turn (SSH, agent, local), in a project ready to
//! run jobs on it: the way to write a scenario once and run it over every transport, as
//! the store suite runs once per database.

use crate::agent::AgentProcess;
use crate::project::Project;
use crate::sshd::{ClientKey, SshServer};
use crate::{LOGIN_USER, RUN_AS_USER};

/// The transports a server may be reached by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Ssh,
    Agent,
    Local,
}

impl Kind {
    /// A number of its own, to tell this transport's processes from another test's.
    pub fn tag(self) -> u32 {
        match self {
            Kind::Ssh => 1,
            Kind::Agent => 2,
            Kind::Local => 3,
        }
    }
}

/// A project whose inventory holds one server, `s1`, reached by `kind`; jobs run as
/// [`RUN_AS_USER`] there may be given to it.
pub struct OneServer {
    pub p: Project,
    pub kind: Kind,
    _key: Option<ClientKey>,
    _sshd: Option<SshServer>,
    _agent: Option<AgentProcess>,
}

impl OneServer {
    pub fn start(kind: Kind) -> Self {
        crate::ensure_test_users();
        let p = Project::new();
        let (mut key, mut sshd, mut agent) = (None, None, None);
        match kind {
            Kind::Ssh => {
                let k = ClientKey::new();
                let s = SshServer::start(&k);
                p.write(
                    "ordo.yaml",
                    &format!(
                        "ssh:\n  user: {LOGIN_USER}\n  identity: [{}]\n  known_hosts: known_hosts\n",
                        k.private.display()
                    ),
                );
                p.write("known_hosts", &s.known_hosts_line());
                p.write(
                    "inventory.yaml",
                    &format!("servers:\n  s1: {{ host: 127.0.0.1, port: {} }}\n", s.port),
                );
                (key, sshd) = (Some(k), Some(s));
            }
            Kind::Agent => {
                p.controller(&["pki", "init"]).expect_code(0);
                let a = AgentProcess::start(&p, "s1", &format!("[{RUN_AS_USER}]"));
                p.write(
                    "inventory.yaml",
                    &format!("servers:\n{}", a.inventory_line("")),
                );
                agent = Some(a);
            }
            Kind::Local => {
                p.write("inventory.yaml", "servers:\n  s1: { transport: local }\n");
            }
        }
        OneServer {
            p,
            kind,
            _key: key,
            _sshd: sshd,
            _agent: agent,
        }
    }
}

/// Runs `scenario(Kind)` as one test per transport: `on_every_transport!(name);` makes
/// `name::ssh`, `name::agent` and `name::local`.
#[macro_export]
macro_rules! on_every_transport {
    ($scenario:ident) => {
        mod $scenario {
            use $crate::transports::Kind;

            #[test]
            fn ssh() {
                super::$scenario(Kind::Ssh)
            }

            #[test]
            fn agent() {
                super::$scenario(Kind::Agent)
            }

            #[test]
            fn local() {
                super::$scenario(Kind::Local)
            }
        }
    };
}
