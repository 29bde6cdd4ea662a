use super::*;
use crate::model::Transport;
use crate::yaml::Pos;

fn node(name: &str, groups: &[&str], tags: &[&str], attrs: &[(&str, &str)]) -> Node {
    let mut n = Node::new(name, Pos::new(1, 1));
    n.groups = groups.iter().map(|s| s.to_string()).collect();
    n.tags = tags.iter().map(|s| s.to_string()).collect();
    n.attributes = attrs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    n
}

fn sel(filter: &str, nodes: &[Node]) -> Vec<String> {
    let f = NodeFilter::parse(filter).unwrap();
    nodes
        .iter()
        .filter(|n| f.matches(n))
        .map(|n| n.name.clone())
        .collect()
}

#[test]
fn selects() {
    let nodes = vec![
        node("web1", &["A"], &["prod"], &[("dc", "paris")]),
        node("web2", &["A"], &["test"], &[("dc", "lyon")]),
        node("db1", &["B"], &["prod"], &[("role", "primary db")]),
        node("batch1", &["C"], &[], &[]),
    ];
    assert_eq!(sel("group:A", &nodes), vec!["web1", "web2"]);
    assert_eq!(
        sel("group:A or group:B", &nodes),
        vec!["web1", "web2", "db1"]
    );
    assert_eq!(
        sel("group:A,group:C", &nodes),
        vec!["web1", "web2", "batch1"]
    );
    assert_eq!(sel("tag:prod and not name:web*", &nodes), vec!["db1"]);
    assert_eq!(sel("tag:prod !group:B", &nodes), vec!["web1"]);
    assert_eq!(sel("attr.dc=paris", &nodes), vec!["web1"]);
    assert_eq!(sel("dc!=paris", &nodes), vec!["web2", "db1", "batch1"]);
    assert_eq!(sel("attr.role=\"primary db\"", &nodes), vec!["db1"]);
    assert_eq!(
        sel("(group:A or group:B) and tag:prod", &nodes),
        vec!["web1", "db1"]
    );
    assert_eq!(
        sel("group:A or group:B and tag:test", &nodes),
        vec!["web1", "web2"]
    );
    assert_eq!(sel("web?", &nodes), vec!["web1", "web2"]);
    assert_eq!(sel("all", &nodes).len(), 4);
    let mut local = node("ctl", &[], &[], &[]);
    local.transport = Transport::Local;
    assert_eq!(sel("transport:local", &[local]), vec!["ctl"]);
}

#[test]
fn errors_name_the_column() {
    let e = |s| NodeFilter::parse(s).unwrap_err();
    assert_eq!(e("group:A and").column, 12);
    assert_eq!(e("group:A or (tag:x").column, 12);
    assert_eq!(
        e("grp:A").message.split(' ').take(3).collect::<Vec<_>>(),
        vec!["unknown", "field", "`grp`"]
    );
    assert_eq!(e("tag:").column, 5);
    assert_eq!(e("group:A )").column, 9);
    assert_eq!(e("").column, 1);
    assert_eq!(e("name:\"web").column, 6);
}

proptest::proptest! {
    #[test]
    fn never_panics(s in "[ a-z:!=(),|&*\"]{0,30}") {
        let _ = NodeFilter::parse(&s);
    }

    #[test]
    fn not_negates(name in "[a-z]{1,8}", pat in "[a-z*]{1,4}") {
        let n = node(&name, &[], &[], &[]);
        let f = NodeFilter::parse(&format!("name:{pat}")).unwrap();
        let g = NodeFilter::parse(&format!("not name:{pat}")).unwrap();
        proptest::prop_assert_ne!(f.matches(&n), g.matches(&n));
    }
}
