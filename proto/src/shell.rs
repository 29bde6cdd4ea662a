//! The shell side of the wire: every command a run sends to a server, as POSIX `sh`.
//!
//! Over SSH (and locally) these strings are the whole protocol; the agent runs the same
//! step and collect scripts, switching user natively instead of with sudo:
//!
//! 1. **upload**: one `tar -x` into a fresh per-run folder with every step's script;
//! 2. **step**: reads the environment block from stdin (so option values, secrets
//!    included, never appear on a command line or on disk), changes directory and `exec`s
//!    the script with its arguments;
//! 3. **user switch** (`as_user`): `sudo -n -u`, `su -l … -- USER` or `sudo -n su -l … --
//!    USER`, the user a checked name ([`check_user_name`]);
//! 4. **pid marker**: the shell prints its pid first, so a cancelled command's process
//!    group and session can be killed;
//! 5. **collect**: expands the collect globs, skips links and files over the size limit,
//!    and streams a tar of the rest on stdout;
//! 6. **cleanup**: removes the per-run folder;
//! 7. **kill**: signals a command's whole process group and session.

/// How to become another user from a shell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwitchMethod {
    /// `sudo -n -H -u USER`.
    Sudo,
    /// `su -l … -- USER` (the login user must be root).
    Su,
    /// `sudo -n su -l … -- USER`.
    SudoSu,
}

/// The marker a step prints on stderr before anything else: `\x1eordo-pid <pid>`.
pub const PID_MARKER: &str = "\u{1e}ordo-pid ";
/// Printed on stderr by the collect command for each file over the size limit.
pub const TOO_BIG_MARKER: &str = "ordo-too-big ";

/// Single-quotes `s` for a POSIX shell.
pub fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A glob as a shell word: wildcards stay active, everything else is quoted.
pub fn glob_word(pattern: &str) -> String {
    let mut out = String::new();
    let mut lit = String::new();
    let mut chars = pattern.chars().peekable();
    let flush = |lit: &mut String, out: &mut String| {
        if !lit.is_empty() {
            out.push_str(&format!("'{}'", lit.replace('\'', r"'\''")));
            lit.clear();
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '*' | '?' => {
                flush(&mut lit, &mut out);
                out.push(c);
            }
            '[' => {
                // A bracket expression of plain characters stays active; anything odd is literal.
                let rest: String = chars.clone().collect();
                match rest.find(']') {
                    Some(end)
                        if end > 0
                            && rest[..end]
                                .chars()
                                .all(|x| x.is_ascii_alphanumeric() || "!^-_.".contains(x)) =>
                    {
                        flush(&mut lit, &mut out);
                        out.push('[');
                        out.push_str(&rest[..end]);
                        out.push(']');
                        for _ in 0..=end {
                            chars.next();
                        }
                    }
                    _ => lit.push(c),
                }
            }
            _ => lit.push(c),
        }
    }
    flush(&mut lit, &mut out);
    out
}

/// The folder a glob's matches are stored under: everything before the first wildcard,
/// up to the last `/` (`/var/log/app-*.log` gives `/var/log/`).
pub fn glob_base(pattern: &str) -> &str {
    let first_wild = pattern.find(['*', '?', '[']).unwrap_or(pattern.len());
    match pattern[..first_wild].rfind('/') {
        Some(i) => &pattern[..=i],
        None => "/",
    }
}

/// Who a command runs as, and how a shell gets there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAsSpec {
    pub user: String,
    pub method: SwitchMethod,
}

/// The `$0` of every script the shell transports and the agent run with `sh -c`.
pub const ARGV0: &str = "ordo";

/// Wraps `inner` (a shell script text) so that `/bin/sh` runs it as `run_as`, with `$0`
/// set to [`ARGV0`]. `inner` reads the command's stdin.
pub fn as_user(inner: &str, run_as: Option<&RunAsSpec>) -> String {
    format!("exec {}", switch_user(inner, run_as))
}

/// Like [`as_user`], then, when `inner` succeeded, `then` (as the login user) in the same
/// command: a step and the collect that follows it cost one command on the server. Before
/// `then` starts, `marker` is printed on a line of its own on stdout and on stderr, after a
/// newline (the step's last line may lack one); without the marker, `then` did not run
/// and the status is the step's. With it, the step ended with 0 and the status is `then`'s.
pub fn as_user_then(inner: &str, run_as: Option<&RunAsSpec>, then: &str, marker: &str) -> String {
    format!(
        "{}\nst=$?\n[ $st -eq 0 ] || exit $st\nprintf '\\n%s\\n' {m}\nprintf '\\n%s\\n' {m} >&2\n{then}",
        switch_user(inner, run_as),
        m = quote(marker)
    )
}

/// Is `name` a user name a switch may take? Letters, digits, `_`, `.`, `-`, starting
/// with a letter, a digit or `_` (never `-`, which `su` and `sudo` would read as an
/// option, nor `#`, which is a uid to sudo), an optional `$` at the end (machine
/// accounts), 1 to 64 characters.
pub fn check_user_name(name: &str) -> Result<(), String> {
    let body = name.strip_suffix('$').unwrap_or(name);
    let ok = !body.is_empty()
        && name.len() <= 64
        && body
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not a user name (letters, digits, `_`, `.`, `-`, not starting with `-`; 64 characters at most)",
            name.escape_debug()
        ))
    }
}

fn switch_user(inner: &str, run_as: Option<&RunAsSpec>) -> String {
    let sh = format!("/bin/sh -c {} {ARGV0}", quote(inner));
    match run_as {
        None => sh,
        Some(r) => match r.method {
            SwitchMethod::Sudo => format!("sudo -n -H -u {} -- {sh}", quote(&r.user)),
            // `--` before the user: whatever it is, never an option of su.
            SwitchMethod::Su => format!(
                "su -l -s /bin/sh -c {} -- {}",
                quote(&format!("exec {sh}")),
                quote(&r.user)
            ),
            SwitchMethod::SudoSu => format!(
                "sudo -n -- su -l -s /bin/sh -c {} -- {}",
                quote(&format!("exec {sh}")),
                quote(&r.user)
            ),
        },
    }
}

/// Prefixes a command with the pid marker (see [`PID_MARKER`]): the shell that reads the
/// command prints its pid on stderr first, with its start time (field 22 of
/// `/proc/<pid>/stat`, taken after the `(comm)` field, which may hold spaces) and the
/// machine's boot ID, read by the shell itself (no process more): a later kill tells the
/// process from another given the same pid, or from before a reboot.
pub fn with_pid_marker(command: &str) -> String {
    format!(
        "ordo_st=; ordo_b=; read -r ordo_st < /proc/$$/stat 2>/dev/null; read -r ordo_b < /proc/sys/kernel/random/boot_id 2>/dev/null; ordo_st=${{ordo_st##*) }}; set -f; set -- $ordo_st; set +f; printf '\\036ordo-pid %s %s %s\\n' $$ \"${{20:-}}\" \"$ordo_b\" >&2; set --; unset ordo_st ordo_b; {command}"
    )
}

/// The highest pid Linux gives.
const PID_MAX: u32 = 4_194_304;

/// What the pid marker line says: the pid, and `START BOOT` (its start time and the boot
/// ID) when the server told them (empty otherwise).
pub fn parse_pid_marker(rest: &str) -> Option<(u32, String)> {
    let mut words = rest.split_whitespace();
    let pid: u32 = words.next()?.parse().ok().filter(|p| *p <= PID_MAX)?;
    let start = words
        .next()
        .filter(|s| s.bytes().all(|b| b.is_ascii_digit()));
    let boot = words
        .next()
        .filter(|b| b.len() <= 64 && b.bytes().all(|c| c.is_ascii_hexdigit() || c == b'-'));
    let started = match (start, boot) {
        (Some(s), Some(b)) => format!("{s} {b}"),
        (Some(s), None) => s.to_string(),
        _ => String::new(),
    };
    Some((pid, started))
}

/// Makes the per-run folder and unpacks the scripts' tar (sent on stdin) into it.
pub fn upload_command(run_dir: &str) -> String {
    format!(
        "umask 022 && mkdir -m 0755 {d} && tar -xf - -C {d}",
        d = quote(run_dir)
    )
}

/// The environment variable that carries a step's argument `n` (from 1): arguments reach
/// the step in its environment, never in the command's text (which `ps` and sudo's log
/// show).
pub fn arg_var(n: usize) -> String {
    format!("ORDO_ARG_{n}")
}

/// `"${ORDO_ARG_1}" "${ORDO_ARG_2}" ...`: the step's `nargs` arguments, each one word.
fn arg_refs(nargs: usize) -> String {
    (1..=nargs)
        .map(|n| format!("\"${{{}}}\"", arg_var(n)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The script text that runs one uploaded script with its `nargs` arguments (from the
/// environment, see [`arg_var`]); stdin carries the `export` block, then EOF. `workdir` is
/// already quoted.
pub fn step_script(script: &str, nargs: usize, workdir: Option<&str>) -> String {
    format!(
        "{}\nexec {} {} </dev/null",
        step_prelude(workdir),
        quote(script),
        arg_refs(nargs)
    )
}

/// What every step does first, with shell builtins only (no process is started): reads the
/// `export` block from stdin (one variable per line, see [`env_block`]) and changes to the
/// working folder. The step then runs with stdin closed.
fn step_prelude(workdir: Option<&str>) -> String {
    let cd = match workdir {
        // `w` is one quoted word; it is printed as an argument, never parsed again.
        Some(w) => format!(
            "cd {w} || {{ printf 'ordo: cannot change to working directory %s\\n' {w} >&2; exit 126; }}"
        ),
        None => "cd \"${HOME:-/}\" 2>/dev/null || cd /".to_string(),
    };
    format!("nl='\n'\nwhile IFS= read -r l; do eval \"$l\" || exit 126; done\nunset -v l nl\n{cd}")
}

/// Scripts at most this long may run inline (`sh -c TEXT`) instead of being uploaded: a
/// single argument of a command line holds at most 128 KiB on Linux.
pub const INLINE_MAX: usize = 64 * 1024;

/// The interpreter of a script that can run inline (`INTERPRETER -c TEXT`): none or a
/// POSIX sh / bash shebang. Other interpreters (python, perl...) need the uploaded file.
pub fn inline_interpreter(script: &[u8]) -> Option<&'static str> {
    if script.len() > INLINE_MAX || std::str::from_utf8(script).is_err() || script.contains(&0) {
        return None;
    }
    if !script.starts_with(b"#!") {
        return Some("/bin/sh");
    }
    let first = script.split(|c| *c == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(first);
    let words: Vec<&str> = line[2..].split_whitespace().collect();
    match words.as_slice() {
        ["/bin/sh"] | ["/usr/bin/sh"] | ["/usr/bin/env", "sh"] => Some("/bin/sh"),
        ["/bin/bash"] | ["/usr/bin/bash"] | ["/usr/bin/env", "bash"] => Some("bash"),
        _ => None,
    }
}

/// Whether a script is shell text (no `#!`, or one naming a Bourne-style shell, directly
/// or through `env`): only there are template variables written as shell references.
pub fn is_shell_script(script: &[u8]) -> bool {
    if !script.starts_with(b"#!") {
        return true;
    }
    let first = script.split(|c| *c == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(&first[2..]).into_owned();
    let mut words = line.split_whitespace();
    let mut program = words.next().unwrap_or_default();
    if program.rsplit('/').next() == Some("env") {
        program = words.find(|w| !w.starts_with('-')).unwrap_or_default();
    }
    matches!(
        program.rsplit('/').next(),
        Some("sh" | "bash" | "dash" | "ksh" | "mksh" | "zsh" | "ash" | "busybox")
    )
}

/// Like [`step_script`] for a script run inline. A POSIX sh script runs in the very shell
/// that read the environment (`set -- ARGS`, then the text: one process for the whole
/// step, `$0` is [`ARGV0`], and its arguments are on no command line); a bash one is
/// `exec bash -c TEXT ordo ARGS`.
pub fn inline_step_script(
    interpreter: &str,
    text: &str,
    nargs: usize,
    workdir: Option<&str>,
) -> String {
    if interpreter == "/bin/sh" {
        return format!(
            "{}\nexec </dev/null\nset -- {}\n{text}",
            step_prelude(workdir),
            arg_refs(nargs)
        );
    }
    format!(
        "{}\nexec {interpreter} -c {} {ARGV0} {} </dev/null",
        step_prelude(workdir),
        quote(text),
        arg_refs(nargs)
    )
}

/// The `export` block a step reads from stdin: one line per variable, a value's newlines
/// written as `$nl` (which the step's prelude defines), so that the shell reads it with
/// its builtin `read` instead of starting `cat`.
pub fn env_block(vars: &[(String, String)]) -> String {
    let mut out = String::new();
    for (k, v) in vars {
        let value: Vec<String> = v
            .split('\n')
            .map(|part| format!("'{}'", part.replace('\'', r"'\''")))
            .collect();
        out.push_str(&format!("export {k}={}\n", value.join("\"$nl\"")));
    }
    out
}

/// The script that streams a tar of the files matching `patterns` on stdout; files over
/// `max_file_size` (0: no limit) are named on stderr after [`TOO_BIG_MARKER`] instead.
/// `then` (a command, e.g. the cleanup) runs afterwards, silently; the exit status stays tar's.
///
/// Everything but `tar` is shell builtins, except one `find` per collect (not per file)
/// when there is a size limit: it names the files over the limit, and a builtin `case`
/// takes them out of the list. The login's `TAR_OPTIONS` (`--sparse`, `--xattrs`, another
/// format) is unset: the stream is plain tar, as the controller reads it.
pub fn collect_script(patterns: &[String], max_file_size: u64, then: Option<&str>) -> String {
    let words: Vec<String> = patterns.iter().map(|p| glob_word(p)).collect();
    let tail = match then {
        None => "[ $# -eq 0 ] && exit 0\nexec tar -cf - -- \"$@\"".to_string(),
        Some(cmd) => format!(
            "st=0\nif [ $# -gt 0 ]; then tar -cf - -- \"$@\"; st=$?; fi\n{cmd} >/dev/null 2>&1\nexit $st"
        ),
    };
    // A name that `find` would take for an option (a pattern made relative by a template)
    // gets a `./` in front.
    let mut script = format!(
        "unset TAR_OPTIONS\nset --\n\
         for f in {words}; do\n\
           if [ -f \"$f\" ] && [ ! -L \"$f\" ]; then\n\
             case $f in /*) ;; *) f=./$f ;; esac\n\
             set -- \"$@\" \"$f\"\n\
           fi\n\
         done\n",
        words = words.join(" "),
    );
    if max_file_size > 0 {
        script.push_str(&format!(
            "if [ $# -gt 0 ]; then\n\
               big=$(find \"$@\" -prune -size +{max_file_size}c -print 2>/dev/null)\n\
               if [ -n \"$big\" ]; then\n\
                 nl='\n'\n\
                 for f; do\n\
                   shift\n\
                   case \"$nl$big$nl\" in *\"$nl$f$nl\"*) printf '{TOO_BIG_MARKER}%s\\n' \"$f\" >&2 ;; *) set -- \"$@\" \"$f\" ;; esac\n\
                 done\n\
               fi\n\
             fi\n"
        ));
    }
    script.push_str(&tail);
    script
}

/// Removes the per-run folder.
pub fn cleanup_command(run_dir: &str) -> String {
    format!("rm -rf -- {}", quote(run_dir))
}

/// The command that stops a step's whole process tree: the process group and session of
/// its pid marker, TERM, then KILL after `grace_secs`. With `run_as` the run-as user's
/// processes are signalled as that user (`sudo -n -u USER`: the very right the step ran
/// with, no root needed), then the login user's own (the shell that started the step); a
/// login user allowed root (`sudo -n`) is the fallback when the first is refused.
pub fn kill_command(pid: u32, grace_secs: u32, run_as: Option<&str>) -> Option<String> {
    kill_command_started(pid, "", grace_secs, run_as)
}

/// [`kill_command`] for a process recorded earlier (a run whose controller died), with
/// what the marker said (`START BOOT`, see [`parse_pid_marker`]): after a reboot nothing is
/// signalled, and when a process `pid` lives with another start time the pid was given to
/// another process and nothing is signalled either. (While any process of the group or
/// session lives, Linux gives its id to no new process: a leader gone is no reuse.)
pub fn kill_command_started(
    pid: u32,
    started: &str,
    grace_secs: u32,
    run_as: Option<&str>,
) -> Option<String> {
    let mut words = started.split_whitespace();
    let start = words.next().unwrap_or_default();
    let boot = words.next().unwrap_or_default();
    let ok = pid > 1
        && pid <= PID_MAX
        && start.bytes().all(|b| b.is_ascii_digit())
        && boot.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
        && words.next().is_none();
    if !ok {
        return None;
    }
    let mut guard = String::new();
    if !boot.is_empty() {
        guard.push_str(&format!(
            "b=; read -r b < /proc/sys/kernel/random/boot_id 2>/dev/null; [ \"$b\" = {boot} ] || exit 0; "
        ));
    }
    if !start.is_empty() {
        guard.push_str(&format!(
            "if [ -r /proc/{pid}/stat ]; then read -r st < /proc/{pid}/stat; st=${{st##*) }}; set -f; set -- $st; set +f; [ \"${{20:-}}\" = {start} ] || exit 0; fi; "
        ));
    }
    Some(group_kill(pid, &guard, grace_secs, run_as))
}

/// The script that stops `pid`'s process group, its session and every process below it
/// (`su -c` starts the command in a session of its own), TERM then KILL after
/// `grace_secs`, after `guard`.
fn group_kill(pid: u32, guard: &str, grace_secs: u32, run_as: Option<&str>) -> String {
    let script = quote(&format!(
        "{guard}d() {{ for c in $(pgrep -P \"$1\" 2>/dev/null); do d \"$c\"; echo \"$c\"; done; }}; t=$(d {pid}); \
         kill -TERM -{pid} 2>/dev/null; pkill -TERM -s {pid} 2>/dev/null; [ -z \"$t\" ] || kill -TERM $t 2>/dev/null; \
         i=0; while [ $i -lt {grace_secs} ] && {{ kill -0 -{pid} 2>/dev/null || pgrep -s {pid} >/dev/null 2>&1; }}; do sleep 1; i=$((i+1)); done; \
         kill -KILL -{pid} 2>/dev/null; pkill -KILL -s {pid} 2>/dev/null; [ -z \"$t\" ] || kill -KILL $t 2>/dev/null; exit 0"
    ));
    match run_as {
        Some(user) => format!(
            "sudo -n -u {u} /bin/sh -c {script} 2>/dev/null || sudo -n /bin/sh -c {script} 2>/dev/null; /bin/sh -c {script}",
            u = quote(user)
        ),
        None => format!("/bin/sh -c {script}"),
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod inline_tests;

#[cfg(test)]
mod one_shell_tests;
