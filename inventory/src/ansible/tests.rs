use std::path::Path;

use super::expand_range;
use crate::{Transport, parse};

#[test]
fn ranges() {
    assert_eq!(
        expand_range("web[01:03].x").unwrap(),
        vec!["web01.x", "web02.x", "web03.x"]
    );
    assert_eq!(
        expand_range("db-[a:c]").unwrap(),
        vec!["db-a", "db-b", "db-c"]
    );
    assert_eq!(expand_range("n[0:4:2]").unwrap(), vec!["n0", "n2", "n4"]);
    assert!(expand_range("n[3:1]").is_err());
}

#[test]
fn reads_ini_with_children_vars_and_ranges() {
    let text = "\
# production
solo ansible_host=127.0.0.9
[A]
web[1:2] ansible_user=ops
db1 ansible_host=127.0.0.5 ansible_port=2202 role=\"primary db\"
[A:vars]
ansible_port=2200
dc=paris
[C:children]
A
[C:vars]
dc=lyon
[local]
ctl ansible_connection=local
[all:vars]
ansible_user=root
";
    let inv = parse(text, Path::new("hosts")).unwrap();
    let names: Vec<_> = inv.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, vec!["solo", "web1", "web2", "db1", "ctl"]);
    let web1 = inv.node("web1").unwrap();
    assert_eq!(web1.user.as_deref(), Some("ops"));
    assert_eq!(web1.port, Some(2200));
    assert_eq!(
        web1.attributes["dc"], "paris",
        "child group vars win over parent's"
    );
    assert!(web1.groups.contains("A") && web1.groups.contains("C"));
    let db1 = inv.node("db1").unwrap();
    assert_eq!((db1.host.as_str(), db1.port), ("127.0.0.5", Some(2202)));
    assert_eq!(db1.attributes["role"], "primary db");
    assert_eq!(db1.user.as_deref(), Some("root"));
    assert_eq!(inv.node("solo").unwrap().host, "127.0.0.9");
    assert_eq!(inv.node("ctl").unwrap().transport, Transport::Local);
}

#[test]
fn host_patterns_with_ports_as_ansible_reads_them() {
    use super::host_pattern;
    let ok = |p: &str| host_pattern(p).unwrap();
    assert_eq!(
        ok("web10.example.com:2222"),
        ("web10.example.com".into(), Some(2222))
    );
    assert_eq!(ok("web10.example.com"), ("web10.example.com".into(), None));
    assert_eq!(
        ok("web[01:03].example.com:2200"),
        ("web[01:03].example.com".into(), Some(2200))
    );
    assert_eq!(ok("web[a:c]"), ("web[a:c]".into(), None));
    assert_eq!(ok("[2001:db8::1]:2222"), ("2001:db8::1".into(), Some(2222)));
    assert_eq!(ok("2001:db8::1"), ("2001:db8::1".into(), None));
    assert_eq!(ok("127.0.0.1:22"), ("127.0.0.1".into(), Some(22)));
    assert!(
        host_pattern("web1:ssh")
            .unwrap_err()
            .contains("not a valid port")
    );
    assert!(host_pattern("web1:0").is_err());
    let text = "[A]\nweb10.example.com:2222\nweb11:2201 ansible_port=2299\n";
    let inv = parse(text, Path::new("hosts.ini")).unwrap();
    let web10 = inv.node("web10.example.com").unwrap();
    assert_eq!(
        (web10.host.as_str(), web10.port),
        ("web10.example.com", Some(2222))
    );
    assert_eq!(inv.node("web11").unwrap().port, Some(2299));
}

#[test]
fn ini_errors_have_positions() {
    let text = "[A]\nweb1 ansible_port=x\n[B:bogus]\nweb[3:1]\n";
    let err = parse(text, Path::new("hosts.ini")).unwrap_err().to_string();
    assert!(
        err.contains("hosts.ini:2:6: host `web1`: ansible_port: `x` is not a valid port"),
        "{err}"
    );
    assert!(
        err.contains("hosts.ini:3:1: unknown section kind `:bogus`"),
        "{err}"
    );
    assert!(err.contains("hosts.ini:4:1: empty host range"), "{err}");
}

#[test]
fn reads_yaml_inventory() {
    let text = "\
all:
  vars:
    ansible_user: deploy
  hosts:
    lone:
  children:
    web:
      hosts:
        web[01:02]:
          ansible_host: 127.0.0.3
      vars:
        tier: front
    prod:
      children:
        web:
";
    let inv = parse(text, Path::new("inv.yml")).unwrap();
    let names: Vec<_> = inv.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, vec!["lone", "web01", "web02"]);
    let w = inv.node("web02").unwrap();
    assert_eq!(w.host, "127.0.0.3");
    assert_eq!(w.user.as_deref(), Some("deploy"));
    assert_eq!(w.attributes["tier"], "front");
    assert!(w.groups.contains("web") && w.groups.contains("prod"));
}
