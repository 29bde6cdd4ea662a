//! ordo reads Ansible inventories as Ansible does: the same hosts, addresses, ports,
//! users and groups as `ansible-inventory --list` (ansible-core, installed by
//! `tests/run.sh`) on the same files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use ordo_tests::temp_dir;
use serde_json::Value;

/// One host as both tools should see it: address, port, user, direct groups.
#[derive(Debug, PartialEq)]
struct Seen {
    host: String,
    port: Option<u16>,
    user: Option<String>,
}

fn ansible(path: &Path) -> (BTreeMap<String, Seen>, BTreeMap<String, BTreeSet<String>>) {
    ordo_tests::require(
        "ansible-inventory",
        "ansible-core from PyPI (pip install ansible-core)",
    );
    let out = Command::new("ansible-inventory")
        .arg("-i")
        .arg(path)
        .arg("--list")
        .env("ANSIBLE_INVENTORY_UNPARSED_FAILED", "true")
        .env("ANSIBLE_LOCAL_TEMP", temp_dir("ansible-tmp").path())
        .output()
        .expect("run ansible-inventory");
    assert!(
        out.status.success(),
        "ansible-inventory {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("ansible-inventory JSON");
    let mut hosts = BTreeMap::new();
    for (name, vars) in v["_meta"]["hostvars"].as_object().expect("hostvars") {
        let text = |k: &str| {
            vars.get(k)
                .map(|x| x.as_str().map(str::to_string).unwrap_or(x.to_string()))
        };
        hosts.insert(
            name.clone(),
            Seen {
                // `ansible_ssh_*` are the older spellings the SSH connection still reads.
                host: text("ansible_host")
                    .or_else(|| text("ansible_ssh_host"))
                    .unwrap_or_else(|| name.clone()),
                port: text("ansible_port")
                    .or_else(|| text("ansible_ssh_port"))
                    .map(|p| p.parse().expect("port")),
                user: text("ansible_user").or_else(|| text("ansible_ssh_user")),
            },
        );
    }
    let mut groups: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (group, g) in v.as_object().expect("groups") {
        if group == "_meta" || group == "all" || group == "ungrouped" {
            continue;
        }
        for h in g["hosts"].as_array().into_iter().flatten() {
            groups
                .entry(h.as_str().unwrap().to_string())
                .or_default()
                .insert(group.clone());
        }
    }
    // Hosts listed only under `all` or `ungrouped` still have their vars.
    for h in v["_meta"]["hostvars"].as_object().unwrap().keys() {
        groups.entry(h.clone()).or_default();
    }
    (hosts, groups)
}

fn compare(file: &str, text: &str) {
    let dir = temp_dir("ansible");
    let path = dir.path().join(file);
    std::fs::write(&path, text).unwrap();
    let (expected, expected_groups) = ansible(&path);
    let inv = ordo_controller::project::inventory(&ordo_controller::project::ProjectConfig {
        inventory: path.clone(),
        ..ordo_controller::project::ProjectConfig::load(dir.path()).unwrap()
    })
    .unwrap_or_else(|e| panic!("ordo cannot read {file}: {e}"));
    let ours: BTreeMap<String, Seen> = inv
        .nodes
        .iter()
        .map(|n| {
            (
                n.name.clone(),
                Seen {
                    host: n.host.clone(),
                    port: n.port,
                    user: n.user.clone(),
                },
            )
        })
        .collect();
    assert_eq!(
        ours, expected,
        "{file}: hosts as ordo and ansible-inventory read them"
    );
    for (host, groups) in expected_groups {
        let node = inv.node(&host).unwrap();
        for g in groups {
            assert!(
                node.groups.contains(&g),
                "{file}: {host} is in group {g} for Ansible, not for ordo ({:?})",
                node.groups
            );
        }
    }
}

#[test]
fn ini_inventories_read_as_ansible_reads_them() {
    compare(
        "hosts.ini",
        "ctl ansible_connection=local\n\
         [A]\n\
         web10.example.com:2222\n\
         web[01:02].example.com:2200 ansible_user=ops\n\
         [2001:db8::1]:2201\n\
         db1 ansible_host=127.0.0.5 ansible_port=2202\n\
         web11:2201 ansible_port=2299\n\
         [B:children]\n\
         A\n\
         [B:vars]\n\
         ansible_user=deploy\n\
         [C]\n\
         10.0.0.[1:3]:2022\n\
         app ansible_ssh_host=10.1.0.9 ansible_ssh_port=22 ansible_ssh_user=root\n",
    );
}

#[test]
fn yaml_inventories_read_as_ansible_reads_them() {
    compare(
        "hosts.yml",
        "all:\n\
         \x20 hosts:\n\
         \x20   lone.example.com:2210:\n\
         \x20 children:\n\
         \x20   web:\n\
         \x20     hosts:\n\
         \x20       web10.example.com:2222:\n\
         \x20       web[01:02].example.com:\n\
         \x20         ansible_port: 2200\n\
         \x20     vars:\n\
         \x20       ansible_user: deploy\n\
         \x20   db:\n\
         \x20     hosts:\n\
         \x20       db1:\n\
         \x20         ansible_host: 127.0.0.5\n\
         \x20     children:\n\
         \x20       web:\n",
    );
}
