use super::*;

#[test]
fn shell_scripts_run_inline_other_interpreters_are_uploaded() {
    assert_eq!(inline_interpreter(b"echo hi"), Some("/bin/sh"));
    assert_eq!(inline_interpreter(b"#!/bin/sh\necho hi"), Some("/bin/sh"));
    assert_eq!(
        inline_interpreter(b"#!/usr/bin/env bash\necho hi"),
        Some("bash")
    );
    assert_eq!(inline_interpreter(b"#!/usr/bin/python3\nprint(1)"), None);
    assert_eq!(inline_interpreter(b"#!/bin/sh -e\necho hi"), None);
    assert_eq!(inline_interpreter(&vec![b'x'; INLINE_MAX + 1]), None);
    assert_eq!(inline_interpreter(b"\xff\xfe"), None);
    let cmd = inline_step_script("bash", "echo \"$0\" '$1'", 1, None);
    assert!(
        cmd.ends_with("exec bash -c 'echo \"$0\" '\\''$1'\\''' ordo \"${ORDO_ARG_1}\" </dev/null"),
        "{cmd}"
    );
}
