use super::*;

#[test]
fn expands() {
    let t =
        Template::parse("run ${option.env} on ${node.name} ($${literal}) ${node.attr.dc}").unwrap();
    let opts = BTreeMap::from([("env".to_string(), "SOC_PRODUCTION".to_string())]);
    let attrs = BTreeMap::from([("dc".to_string(), "paris".to_string())]);
    let cx = Context {
        options: Some(&opts),
        node_name: Some("web1"),
        node_attrs: Some(&attrs),
        ..Context::default()
    };
    assert_eq!(
        t.expand(&cx).unwrap(),
        "run SOC_PRODUCTION on web1 (${literal}) paris"
    );
    let t = Template::parse("${node.attr.missing}").unwrap();
    assert!(
        t.expand(&cx)
            .unwrap_err()
            .contains("no attribute `missing`")
    );
}

#[test]
fn shell_mode_leaves_shell_variables() {
    let t = Template::parse_shell("echo ${HOME} ${1:-x} ${option.a}").unwrap();
    let opts = BTreeMap::from([("a".to_string(), "A".to_string())]);
    let cx = Context {
        options: Some(&opts),
        ..Context::default()
    };
    assert_eq!(t.expand(&cx).unwrap(), "echo ${HOME} ${1:-x} A");
    assert!(Template::parse_shell("${option.}").is_err());
}

#[test]
fn errors_have_offsets() {
    let e = Template::parse("ab ${nope.x}").unwrap_err();
    assert_eq!(e.offset, 3);
    assert!(e.message.starts_with("unknown variable `${nope.x}`"));
    assert_eq!(Template::parse("x ${option.a").unwrap_err().offset, 2);
}
