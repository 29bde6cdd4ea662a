//! Ansible host patterns: a port after the name (`web1:2222`, `[2001:db8::1]:2222`) and
//! ranges (`web[01:03]`, `db-[a:c]`).

/// A host pattern as Ansible reads it: `name:port`, `[v6::addr]:port`, a bare IPv6
/// address (no port), or a name with ranges (`web[01:03]:2222`). Returns the name
/// pattern and the port, if any.
pub(crate) fn host_pattern(pattern: &str) -> Result<(String, Option<u16>), String> {
    let bad_port =
        |p: &str| format!("host `{pattern}`: `{p}` after the last `:` is not a valid port");
    let parse_port = |p: &str| match p.parse::<u16>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(bad_port(p)),
    };
    // `[2001:db8::1]:2222` or `[2001:db8::1]`: an IPv6 address in brackets.
    if let Some(rest) = pattern.strip_prefix('[')
        && let Some((inner, after)) = rest.split_once(']')
        && inner.matches(':').count() >= 2
    {
        return match after {
            "" => Ok((inner.to_string(), None)),
            _ => match after.strip_prefix(':') {
                Some(p) => Ok((inner.to_string(), Some(parse_port(p)?))),
                None => Err(format!("host `{pattern}`: unexpected `{after}` after `]`")),
            },
        };
    }
    // Colons outside the ranges' brackets.
    let mut depth = 0usize;
    let mut colons = Vec::new();
    for (i, c) in pattern.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            ':' if depth == 0 => colons.push(i),
            _ => {}
        }
    }
    match colons.as_slice() {
        [i] => Ok((
            pattern[..*i].to_string(),
            Some(parse_port(&pattern[i + 1..])?),
        )),
        // No colon, or a bare IPv6 address (several colons): no port.
        _ => Ok((pattern.to_string(), None)),
    }
}

/// Expands Ansible host ranges: `web[01:03]` gives web01, web02, web03.
pub(crate) fn expand_range(pattern: &str) -> Result<Vec<String>, String> {
    let Some(open) = pattern.find('[') else {
        return Ok(vec![pattern.to_string()]);
    };
    let close = pattern[open..]
        .find(']')
        .map(|i| open + i)
        .ok_or_else(|| format!("unclosed `[` in host pattern `{pattern}`"))?;
    let inner = &pattern[open + 1..close];
    let (range, step) = match inner
        .split_once(':')
        .map(|(a, rest)| (a, rest.split_once(':')))
    {
        Some((a, Some((b, s)))) => (
            (a, b),
            s.parse::<usize>()
                .map_err(|_| format!("bad step `{s}` in `{pattern}`"))?,
        ),
        Some((a, None)) => ((a, &inner[a.len() + 1..]), 1),
        None => return Err(format!("host range `[{inner}]` needs a `:` in `{pattern}`")),
    };
    let (start, end) = range;
    let mut items = Vec::new();
    if let (Ok(s), Ok(e)) = (start.parse::<u64>(), end.parse::<u64>()) {
        if s > e || step == 0 {
            return Err(format!("empty host range `[{inner}]` in `{pattern}`"));
        }
        let width = if start.starts_with('0') {
            start.len()
        } else {
            0
        };
        for i in (s..=e).step_by(step) {
            items.push(format!("{i:0width$}"));
        }
    } else if start.len() == 1 && end.len() == 1 && start <= end && step > 0 {
        let (s, e) = (start.as_bytes()[0], end.as_bytes()[0]);
        for c in (s..=e).step_by(step) {
            items.push((c as char).to_string());
        }
    } else {
        return Err(format!("invalid host range `[{inner}]` in `{pattern}`"));
    }
    let (pre, post) = (&pattern[..open], &pattern[close + 1..]);
    let mut out = Vec::new();
    for item in items {
        for rest in expand_range(post)? {
            out.push(format!("{pre}{item}{rest}"));
        }
    }
    Ok(out)
}
