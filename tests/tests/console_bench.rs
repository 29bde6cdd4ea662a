//! Benchmark, not a test (ignored; `bench/console.sh` runs it in release): a run on N
//! servers writing LINES lines each, followed live in a real headless Chromium, then its
//! execution page opened again. Prints how far behind the browser was, how long the page
//! takes to serve and to load, and what the controller used. Nothing here is asserted
//! against a time.

use std::time::{Duration, Instant};

use ordo_tests::api::Api;
use ordo_tests::browser::Browser;
use ordo_tests::project::{PASSWORD, Project};
use ordo_tests::{free_port, wait_for_port};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// (peak resident KiB, CPU seconds) of a process.
fn usage(pid: u32) -> (u64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    let ticks = f.get(11).copied().unwrap_or(0.0) + f.get(12).copied().unwrap_or(0.0);
    (hwm, ticks / 100.0)
}

#[test]
#[ignore = "a benchmark: bench/console.sh"]
fn console_follows_a_large_run() {
    let n = env("N", 1000);
    let lines = env("LINES", 100);
    let p = Project::new();
    let mut inv = String::from("servers:\n");
    for i in 0..n {
        inv.push_str(&format!("  s{i:04}: {{ transport: local }}\n"));
    }
    p.write("inventory.yaml", &inv);
    p.write(
        "jobs/big.yaml",
        &format!(
            "targets: all\nparallelism: 64\narchive: false\nsteps:\n  - command: 'i=0; while [ $i -lt {lines} ]; do echo \"line $i of $ORDO_NODE_NAME: the quick brown fox jumps over the lazy dog\"; i=$((i+1)); done'\n"
        ),
    );
    p.add_user("bench", "admin", &[]);
    let token = p.token("bench");
    let port = free_port();
    let serve = p.serve(&[], &["--listen", &format!("127.0.0.1:{port}")]);
    wait_for_port(port, "serve");
    let base = format!("https://localhost:{port}");
    let api = Api::https(port, &p.path().join("data/pki/ca.pem"));
    let admin = api.token(&token);

    // The browser logs in through the pages; the code is in the outbox (no SMTP here).
    let b = Browser::start("bench-console", 1280, 900);
    b.goto(&format!("{base}/login"));
    b.fill("#user", "bench");
    b.fill("#password", PASSWORD);
    b.click("#login");
    b.find("#code");
    let outbox = p.path().join("data/outbox");
    let mail = std::fs::read_dir(&outbox)
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();
    let text = std::fs::read_to_string(mail).unwrap();
    let at = text.find("login code is ").unwrap() + 14;
    b.fill("#code", &text[at..at + 6]);
    b.click("#verify");
    b.find("#who");
    let cookie = b.cookie("__Host-ordo_session").expect("a session");

    let (_, cpu0) = usage(serve.pid());
    let started = Instant::now();
    let r = admin.post("/api/v1/jobs/big", "{}");
    let id = r.json["execution"]
        .as_str()
        .expect("an execution")
        .to_string();
    b.goto(&format!("{base}/executions/{id}"));
    let opened_running = started.elapsed();
    let mut ended = None;
    while ended.is_none() {
        if admin.get(&format!("/api/v1/executions/{id}")).json["status"] != "running" {
            ended = Some(started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let ended = ended.unwrap();
    b.wait_text("#status", 600, |t| t != "Running");
    let shown = started.elapsed();
    b.find("#summary[data-running=false]");
    let (hwm, cpu1) = usage(serve.pid());

    // The finished page: served (curl, with the session) and loaded (the browser).
    let mut served = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let r = api
            .header(&format!("Cookie: __Host-ordo_session={cookie}"))
            .get(&format!("/executions/{id}"));
        assert_eq!(r.status, 200);
        served.push(t.elapsed().as_secs_f64() * 1000.0);
        if served.len() == 1 {
            eprintln!("page size: {} KB", r.text.len() / 1024);
        }
    }
    served.sort_by(f64::total_cmp);
    let mut loaded = Vec::new();
    for _ in 0..5 {
        b.goto(&format!("{base}/executions/{id}"));
        let v = b.eval("return performance.getEntriesByType('navigation')[0].duration");
        loaded.push(v.as_f64().unwrap_or(0.0));
    }
    loaded.sort_by(f64::total_cmp);
    let total_lines = admin
        .get(&format!("/api/v1/executions/{id}/log?after=-1"))
        .json["lines"]
        .as_array()
        .map_or(0, Vec::len);
    println!(
        "# console benchmark: {n} servers x {lines} lines ({total_lines} lines recorded)\n\
         run: {:.2} s (start to end, the browser following live)\n\
         browser showed the end: {:.0} ms after it (SSE `end` event)\n\
         execution page opened while running: {:.0} ms\n\
         finished page, served (median of 5, curl): {:.0} ms\n\
         finished page, loaded in Chromium (median of 5, navigation): {:.0} ms\n\
         controller: {:.2} s CPU for the run and the live log, peak RSS {} MB",
        ended.as_secs_f64(),
        (shown - ended).as_secs_f64() * 1000.0,
        opened_running.as_secs_f64() * 1000.0,
        served[2],
        loaded[2],
        cpu1 - cpu0,
        hwm / 1024
    );
    drop(b);
    drop(serve);
}
