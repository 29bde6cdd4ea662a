use super::*;

fn parse_ok(text: &str) -> Node {
    let mut d = Diagnostics::new("t.yaml");
    let n = parse(text, &mut d).expect("parses");
    assert!(d.is_empty(), "{d}");
    n
}

#[test]
fn positions_are_one_based() {
    let n = parse_ok("a: 1\nb:\n  - x\n  - 'y'\n");
    let mut d = Diagnostics::new("t.yaml");
    let e = n.entries("root", &mut d);
    assert_eq!(e[0].1.pos, Pos::new(1, 4));
    let Kind::Seq(items) = &e[1].1.kind else {
        panic!()
    };
    assert_eq!(items[1].pos, Pos::new(4, 5));
}

#[test]
fn syntax_error_has_position() {
    let mut d = Diagnostics::new("bad.yaml");
    assert!(parse("a: [1, 2\nb: 3\n", &mut d).is_none());
    assert_eq!(d.len(), 1);
    assert!(d.to_string().starts_with("bad.yaml:"), "{d}");
}

#[test]
fn unknown_and_duplicate_keys_are_all_reported() {
    let n = parse_ok("name: a\nnmae: b\nname: c\nother: 1\n");
    let mut d = Diagnostics::new("t.yaml");
    let _f = n.fields("job", &["name", "description"], &mut d);
    let text = d.to_string();
    assert_eq!(d.len(), 3, "{text}");
    assert!(text.contains("t.yaml:2:1: job: unknown key `nmae` (did you mean `name`?)"));
    assert!(text.contains("t.yaml:3:1: job: duplicate key `name` (first defined at line 1)"));
    assert!(text.contains("t.yaml:4:1: job: unknown key `other` (expected one of"));
}

#[test]
fn anchors_and_merge_keys() {
    let n = parse_ok("d: &d {port: 22, user: a}\ns:\n  <<: *d\n  user: b\n");
    let mut d = Diagnostics::new("t.yaml");
    let e = n.entries("root", &mut d);
    let s = e[1].1.entries("s", &mut d);
    let got: Vec<_> = s
        .iter()
        .map(|(k, v)| (k.clone(), v.str("v", &mut d).unwrap()))
        .collect();
    assert_eq!(
        got,
        vec![("user".into(), "b".into()), ("port".into(), "22".into())]
    );
}

/// A long scalar aliased many times is refused by the bytes it would copy, not only by
/// the number of values.
#[test]
fn aliases_of_a_long_scalar_are_bounded_by_their_bytes() {
    let big = "x".repeat(1 << 20);
    let mut text = format!("a: &big \"{big}\"\nb: [");
    for _ in 0..100 {
        text.push_str("*big, ");
    }
    text.push_str("]\n");
    let mut d = Diagnostics::new(std::path::Path::new("bomb.yaml"));
    assert!(parse(&text, &mut d).is_none());
    assert!(d.to_string().contains("bytes: refused"), "{d}");
}
