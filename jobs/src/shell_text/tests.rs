use super::*;

fn at_end(text: &str) -> ShellContext {
    let mut l = ShellLexer::new();
    l.feed(text);
    l.context()
}

fn unsafe_at_end(text: &str) -> bool {
    matches!(at_end(text), ShellContext::Unsafe(_))
}

fn rests(text: &str) -> bool {
    let mut l = ShellLexer::new();
    l.feed(text);
    l.at_rest()
}

#[test]
fn contexts() {
    use ShellContext::*;
    assert_eq!(at_end("echo "), Unquoted);
    assert_eq!(at_end("echo \"a "), Double);
    assert_eq!(at_end("echo 'a "), Single);
    assert_eq!(at_end("echo 'a' \"b\" c"), Unquoted);
    assert_eq!(at_end("echo \"it's "), Double);
    assert_eq!(at_end("echo 'say \"hi "), Single);
    assert_eq!(at_end("x=$(echo \"a "), Double);
    assert_eq!(at_end("x=\"$(echo 'a "), Single);
    assert_eq!(at_end("x=\"$(echo a) "), Double);
    assert_eq!(at_end("echo `date` "), Unquoted);
    assert_eq!(at_end("echo \\\" "), Unquoted);
    assert_eq!(at_end("# it's a comment "), Comment);
    assert_eq!(at_end("# it's\necho "), Unquoted);
    assert_eq!(at_end("echo a#b "), Unquoted);
    assert_eq!(at_end("echo $(date)#"), Unquoted);
    assert_eq!(at_end("echo ${x#*/} "), Unquoted);
    assert_eq!(at_end("echo ${x:-'a "), Single);
    assert!(matches!(at_end("echo \"${X:-Don't} "), Unsafe(_)));
    assert_eq!(at_end("echo $'it\\'s' "), Unquoted);
    assert_eq!(at_end("cat <<EOF\nhello "), HereDoc);
    assert_eq!(at_end("cat <<EOF\nhello\nEOF\necho "), Unquoted);
    assert_eq!(at_end("cat <<-\"END\" >f\n\tx\n\tEND\necho \""), Double);
    assert_eq!(at_end("cat <<<'x' \""), Double);
    assert_eq!(at_end("cat <<EOF | tr a b\n$(echo \"x "), Double);
    assert_eq!(at_end("( cat <<EOF\nx "), HereDoc);
    assert_eq!(at_end("echo $(( 1 + (2) )) \""), Double);
    assert_eq!(at_end("echo $(( 1 << 2 )) \""), Double);
    assert_eq!(at_end("k=\"$(case x in x) printf '%s' \"f "), Double);
    assert_eq!(at_end("k=$(case x in x) echo a;; esac) "), Unquoted);
}

/// Where a reference would be unsafe, or the lexer could be misled, nothing is placed.
#[test]
fn unsafe_places_are_refused() {
    assert!(unsafe_at_end("cat <<'EOF'\nit's "));
    assert!(unsafe_at_end("n=$(( "));
    assert!(unsafe_at_end("(( n = "));
    assert!(unsafe_at_end("echo `printf x "));
    assert!(unsafe_at_end("echo \\"));
    assert!(unsafe_at_end("echo $'a "));
    assert!(unsafe_at_end("cat <<"));
}

/// A here-document inside backticks is read where it is: the rest of the script is
/// code again (it was once taken for a quoted here-document).
#[test]
fn a_here_document_in_backticks_ends_in_them() {
    assert!(rests("msg=`cat <<'EOF'\nhello\nEOF\n`\necho \"got\"\n"));
    assert_eq!(
        at_end("msg=`cat <<'EOF'\nhello\nEOF\n`\necho \"got: "),
        ShellContext::Double
    );
    assert!(!rests("echo \"open"));
    assert!(!rests("cat <<EOF\nnever closed\n"));
}
