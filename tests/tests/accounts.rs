//! Accounts and the authenticated API against a real `controller serve` over HTTPS (its
//! certificate from the project's CA, checked by curl), with a real SMTP server that
//! receives the login codes.

use std::collections::HashSet;
use std::time::Duration;

use ordo_tests::api::{Api, Reply};
use ordo_tests::project::{PASSWORD, Project};
use ordo_tests::smtp::SmtpServer;
use ordo_tests::{free_port, sh, wait_for_port};

const TENANT_KEY: &str = "s3cret-acme-key";

/// A project mailing through `smtp`, with a tenant `acme`, a job in folder `tests` (with a
/// required option) and one at the top level.
fn project(smtp: &SmtpServer, backoff: &str) -> Project {
    let p = Project::new();
    p.write("acme.key", &format!("{TENANT_KEY}\n"));
    p.write(
        "ordo.yaml",
        &format!(
            "mail:\n  from: ordo@example.com\n  smtp: {{ host: 127.0.0.1, port: {}, tls: none }}\n\
             serve:\n  auth:\n    login_backoff: {backoff}\n    tenants:\n      acme: {{ key_file: acme.key }}\n",
            smtp.port
        ),
    );
    p.write("inventory.yaml", "servers:\n  s1: { transport: local }\n");
    p.write(
        "jobs/tests/hello.yaml",
        "description: says hello\ntargets: all\noptions:\n  who: { required: true }\nsteps:\n  - command: echo hello ${option.who}\n",
    );
    p.write(
        "jobs/vip.yaml",
        "description: the VIP job\ntargets: all\nsteps:\n  - command: echo vip\n",
    );
    p
}

/// `serve` on HTTPS; the API, trusting the project's CA.
fn start(p: &Project) -> (ordo_tests::project::Serve, Api) {
    let port = free_port();
    let s = p.serve(&[], &["--listen", &format!("127.0.0.1:{port}")]);
    wait_for_port(port, "the API");
    (s, Api::https(port, &p.path().join("data/pki/ca.pem")))
}

/// The code of the one mail `smtp` received since `seen`, to `to`.
fn new_code(smtp: &SmtpServer, seen: &mut HashSet<Vec<u8>>, to: &str) -> String {
    let n = seen.len() + 1;
    let mails = smtp.wait_for(n);
    let fresh: Vec<_> = mails
        .into_iter()
        .filter(|m| !seen.contains(&m.raw))
        .collect();
    assert_eq!(fresh.len(), 1, "one new mail");
    let m = &fresh[0];
    seen.insert(m.raw.clone());
    let parsed = m.parsed();
    let rcpt = parsed
        .to()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .unwrap_or("");
    assert_eq!(rcpt, to);
    let body = parsed.body_text(0).unwrap_or_default().to_string();
    body.split_whitespace()
        .find(|w| w.len() == 6 && w.bytes().all(|b| b.is_ascii_digit()))
        .unwrap_or_else(|| panic!("no code in {body}"))
        .to_string()
}

fn login(api: &Api, user: &str, password: &str) -> Reply {
    api.post(
        "/api/v1/login",
        &serde_json::json!({"user": user, "password": password}).to_string(),
    )
}

fn code(api: &Api, ticket: &str, code: &str) -> Reply {
    api.post(
        "/api/v1/login/code",
        &serde_json::json!({"ticket": ticket, "code": code}).to_string(),
    )
}

#[test]
fn two_step_login_over_https_with_the_mailed_code() {
    let smtp = SmtpServer::start();
    let p = project(&smtp, "1s");
    p.add_user("alice", "admin", &[]);
    let (serve, api) = start(&p);
    let jar = p.path().join("cookies");
    let browser = api.cookies(&jar);
    let mut seen = HashSet::new();
    let mut secrets = vec![PASSWORD.to_string()];

    // Step one: the password; a code goes to alice's address.
    let r = login(&browser, "alice", PASSWORD);
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(r.json["sent_to"], "a***@example.com");
    assert!(r.header("strict-transport-security").is_some(), "HSTS");
    let ticket = r.json["ticket"].as_str().unwrap().to_string();
    let c1 = new_code(&smtp, &mut seen, "alice@example.com");
    secrets.extend([ticket.clone(), c1.clone()]);

    // Step two: the code opens a session (a cookie the client cannot read or send elsewhere).
    let r = code(&browser, &ticket, &c1);
    assert_eq!(r.status, 200, "{}", r.text);
    let cookie = r.header("set-cookie").unwrap().to_string();
    for attr in [
        "__Host-ordo_session=",
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
        "Path=/",
    ] {
        assert!(cookie.contains(attr), "{attr} in {cookie}");
    }
    secrets.push(cookie.split(['=', ';']).nth(1).unwrap().to_string());
    let csrf = r.json["csrf"].as_str().unwrap().to_string();
    // A code works once.
    let again = code(&api, &ticket, &c1);
    assert_eq!(again.status, 401, "{}", again.text);

    let me = browser.get("/api/v1/me");
    assert_eq!(
        (me.status, me.json["user"].as_str()),
        (200, Some("alice")),
        "{}",
        me.text
    );
    assert_eq!(me.json["via"], "session");

    // A state-changing request needs the CSRF token, from this site, to this host.
    let r = browser.post("/api/v1/reload", "{}");
    assert_eq!((r.status, r.code()), (403, "forbidden"), "{}", r.text);
    let with_csrf = browser.header(&format!("X-CSRF-Token: {csrf}"));
    let r = with_csrf.post("/api/v1/reload", "{}");
    assert_eq!(r.status, 200, "{}", r.text);
    let r = with_csrf
        .header("Origin: https://evil.example")
        .post("/api/v1/reload", "{}");
    assert_eq!(r.status, 403, "a cross-site POST: {}", r.text);
    // Another service on the same host (another port) is another site.
    let port = api.base.rsplit(':').next().unwrap().parse::<u16>().unwrap();
    let r = with_csrf
        .header(&format!("Origin: https://localhost:{}", port + 1))
        .post("/api/v1/reload", "{}");
    assert_eq!(r.status, 403, "a POST from another port: {}", r.text);
    let r = with_csrf
        .header(&format!("Origin: https://localhost:{port}"))
        .post("/api/v1/reload", "{}");
    assert_eq!(r.status, 200, "a POST from our own origin: {}", r.text);
    let r = with_csrf.header("Host: evil.example").get("/api/v1/me");
    assert_eq!(
        (r.status, r.json["error"]["field"].as_str()),
        (400, Some("Host")),
        "{}",
        r.text
    );

    // Logout ends the session on the server: the old cookie is refused.
    let r = with_csrf.post("/api/v1/logout", "{}");
    assert_eq!(r.status, 200, "{}", r.text);
    let old = api.header(&format!("Cookie: {}", cookie.split(';').next().unwrap()));
    assert_eq!(old.get("/api/v1/me").status, 401);

    // "Send a new code": the first one stops working, the new one works.
    let r = login(&browser, "alice", PASSWORD);
    let ticket = r.json["ticket"].as_str().unwrap().to_string();
    let old_code = new_code(&smtp, &mut seen, "alice@example.com");
    let r = browser.post(
        "/api/v1/login/resend",
        &serde_json::json!({ "ticket": ticket }).to_string(),
    );
    assert_eq!(r.status, 202, "{}", r.text);
    let new = new_code(&smtp, &mut seen, "alice@example.com");
    secrets.extend([ticket.clone(), old_code.clone(), new.clone()]);
    if old_code != new {
        let r = code(&browser, &ticket, &old_code);
        assert_eq!(r.status, 401, "the replaced code: {}", r.text);
        // A wrong code is not a wrong password: no wait (codes have their own count).
    }
    let r = code(&browser, &ticket, &new);
    assert_eq!(r.status, 200, "{}", r.text);

    // Nothing secret is in the log or the database in clear.
    drop(serve);
    let mut haystack = std::fs::read(p.path().join("data/ordo.db")).unwrap();
    haystack.extend(std::fs::read(p.path().join("data/ordo.db-wal")).unwrap_or_default());
    for entry in std::fs::read_dir(p.path()).unwrap().flatten() {
        if entry.file_name().to_string_lossy().starts_with("serve-") {
            haystack.extend(std::fs::read(entry.path()).unwrap());
        }
    }
    let text = String::from_utf8_lossy(&haystack);
    for s in &secrets {
        assert!(
            !text.contains(s.as_str()),
            "`{s}` found in the database or the log"
        );
    }
}

#[test]
fn failed_logins_wait_longer_each_time_even_across_a_restart() {
    let smtp = SmtpServer::start();
    let p = project(&smtp, "100s");
    p.add_user("alice", "operator", &["--projects", "tests"]);
    let (serve, api) = start(&p);
    let r = login(&api, "alice", "not the password");
    assert_eq!((r.status, r.code()), (401, "unauthenticated"), "{}", r.text);
    // The right password during the wait is refused too, and does not end the wait.
    let r = login(&api, "alice", PASSWORD);
    assert_eq!((r.status, r.code()), (429, "too_many_tries"), "{}", r.text);
    let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((99..=100).contains(&wait), "Retry-After {wait}");
    drop(serve);
    let (_serve, api) = start(&p);
    let r = login(&api, "alice", PASSWORD);
    assert_eq!(r.status, 429, "the wait survives a restart: {}", r.text);
    // An unknown account answers as a wrong password does, and waits the same (found by
    // an attacker's review: a wait only for known names told which names exist).
    let r = login(&api, "nobody", "whatever it is");
    assert_eq!(r.json["error"]["message"], "wrong user name or password");
    let r = login(&api, "nobody", "whatever it is");
    assert_eq!((r.status, r.code()), (429, "too_many_tries"), "{}", r.text);
    // Regression (security review 2026-12-07): someone else's wrong password locked the
    // holder out. From another client (127.0.0.2), alice logs in at once.
    let r = login(&api.from_address("127.0.0.2"), "alice", PASSWORD);
    assert_eq!(r.status, 202, "the holder elsewhere: {}", r.text);
}

/// Behind a reverse proxy every client has the proxy's address: one client's guesses
/// waited for all of them. A proxy listed in `trusted_proxies` names the client in
/// `X-Forwarded-For`; anyone else's header is ignored.
#[test]
fn behind_a_trusted_proxy_each_client_waits_for_itself() {
    let smtp = SmtpServer::start();
    let p = project(&smtp, "100s");
    let cfg = std::fs::read_to_string(p.path().join("ordo.yaml")).unwrap();
    p.write(
        "ordo.yaml",
        &cfg.replace(
            "    login_backoff: 100s\n",
            "    login_backoff: 100s\n    trusted_proxies: [127.0.0.1]\n",
        ),
    );
    p.add_user("alice", "operator", &["--projects", "tests"]);
    let (_serve, api) = start(&p);
    let proxy = |client: &str| api.header(&format!("X-Forwarded-For: {client}"));
    // Made-up names from one client behind the proxy: it waits, after 5 free failures.
    for i in 0..6 {
        let r = login(&proxy("198.51.100.7"), &format!("ghost{i}"), "nope");
        assert_eq!(r.status, 401, "{}", r.text);
    }
    let r = login(&proxy("198.51.100.7"), "alice", PASSWORD);
    assert_eq!(r.status, 429, "the guessing client: {}", r.text);
    // Another client behind the same proxy does not.
    let r = login(&proxy("198.51.100.8"), "alice", PASSWORD);
    assert_eq!(r.status, 202, "another client: {}", r.text);
    // A client that is not a trusted proxy cannot choose its address: its header is
    // ignored, its guesses count for 127.0.0.2.
    let direct = api.from_address("127.0.0.2");
    for i in 0..6 {
        let r = login(
            &direct.header("X-Forwarded-For: 198.51.100.9"),
            &format!("ghost{i}"),
            "nope",
        );
        assert_eq!(r.status, 401, "{}", r.text);
    }
    let r = login(
        &direct.header("X-Forwarded-For: 198.51.100.10"),
        "alice",
        PASSWORD,
    );
    assert_eq!(r.status, 429, "a forged header: {}", r.text);
    let r = login(&proxy("198.51.100.9"), "alice", PASSWORD);
    assert_eq!(r.status, 202, "the address it claimed: {}", r.text);
    // The audit log names each client, not the proxy.
    let admin = api.token(&p.admin_token());
    let r = admin.get("/api/v1/audit?action=login.failed&limit=100");
    let from: HashSet<&str> = r.json["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["address"].as_str().unwrap())
        .collect();
    assert_eq!(
        from,
        HashSet::from(["198.51.100.7", "127.0.0.2"]),
        "{}",
        r.text
    );
}

/// `sso:<YYMMDD>:<HHmm>:<sha256 hex of key + login + date + time>`, computed by the shell.
fn sso_token(login: &str, minutes_ago: i64) -> String {
    let at = format!("-{minutes_ago} min");
    let d = sh(&format!("date -u -d '{at}' +%y%m%d")).trim().to_string();
    let t = sh(&format!("date -u -d '{at}' +%H%M")).trim().to_string();
    let mac = sh(&format!(
        "printf %s '{TENANT_KEY}{login}{d}{t}' | sha256sum"
    ));
    format!("sso:{d}:{t}:{}", mac.split_whitespace().next().unwrap())
}

/// Computes an `X-WSSE` header (OASIS UsernameToken: base64 of the SHA-1 of the nonce's
/// bytes, the Created text and the account's password, hex HMAC-SHA256 of its name with
/// the tenant's key) with Python's hashlib and hmac, independently of ordo.
const WSSE_PY: &str = r#"
import base64, datetime, hashlib, hmac, os, sys
user, minutes_ago, key = sys.argv[1], int(sys.argv[2]), sys.argv[3]
password = hmac.new(key.encode(), user.encode(), hashlib.sha256).hexdigest()
nonce = os.urandom(16)
now = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=minutes_ago)
created = now.strftime("%Y-%m-%dT%H:%M:%SZ")
digest = base64.b64encode(hashlib.sha1(nonce + created.encode() + password.encode()).digest()).decode()
print(f'UsernameToken Username="{user}", PasswordDigest="{digest}", Nonce="{base64.b64encode(nonce).decode()}", Created="{created}"')
"#;

fn wsse(p: &Project, user: &str, minutes_ago: i64) -> String {
    let script = p.write("wsse.py", WSSE_PY);
    sh(&format!(
        "python3 {} {user} {minutes_ago} {TENANT_KEY}",
        script.display()
    ))
    .trim()
    .to_string()
}

#[test]
fn sso_and_wsse_log_tenants_in_once_and_never_admins() {
    let smtp = SmtpServer::start();
    let p = project(&smtp, "1s");
    p.add_user(
        "eve",
        "operator",
        &["--projects", "tests", "--tenant", "acme"],
    );
    p.add_user(
        "fay",
        "operator",
        &["--projects", "tests", "--tenant", "acme"],
    );
    p.add_user("root", "admin", &["--tenant", "acme"]);
    let (_serve, api) = start(&p);

    // SSO: the token opens a session at once (the front-end checked the user).
    let token = sso_token("eve", 0);
    let jar = p.path().join("sso-cookies");
    let r = login(&api.cookies(&jar), "eve", &token);
    assert_eq!(r.status, 200, "{}", r.text);
    // ... but a session a tenant's front-end opened makes no lasting API token.
    let csrf = r.json["csrf"].as_str().unwrap_or_default().to_string();
    let t = api
        .cookies(&jar)
        .header(&format!("X-CSRF-Token: {csrf}"))
        .post("/api/v1/tokens", r#"{"expires": "365d"}"#);
    assert_eq!((t.status, t.code()), (403, "forbidden"), "{}", t.text);
    assert!(
        r.header("set-cookie")
            .is_some_and(|c| c.contains("__Host-ordo_session="))
    );
    let r = login(&api, "eve", &token);
    assert_eq!(r.status, 401, "a replayed SSO token: {}", r.text);
    let r = login(&api, "fay", &sso_token("fay", 10));
    assert_eq!(r.status, 401, "outside the 5-minute window: {}", r.text);
    let r = login(&api, "root", &sso_token("root", 0));
    assert_eq!(r.status, 403, "an admin through SSO: {}", r.text);
    // A digest with one hex digit changed (eve waits 1 s after her replayed token first).
    let right = sso_token("eve", 0);
    let last = if right.ends_with('0') { "1" } else { "0" };
    let forged = format!("{}{last}", &right[..right.len() - 1]);
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(login(&api, "eve", &forged).status, 401, "a wrong digest");

    // WSSE: each header once, within 5 minutes.
    let h = wsse(&p, "fay", 0);
    let as_fay = api.header(&format!("X-WSSE: {h}"));
    let r = as_fay.get("/api/v1/me");
    assert_eq!(
        (r.status, r.json["via"].as_str()),
        (200, Some("wsse acme")),
        "{}",
        r.text
    );
    let r = as_fay.get("/api/v1/me");
    assert_eq!(r.status, 401, "a replayed nonce: {}", r.text);
    let for_fay = wsse(&p, "fay", 0);
    let r = api
        .header(&format!(
            "X-WSSE: {}",
            for_fay.replace("Username=\"fay\"", "Username=\"eve\"")
        ))
        .get("/api/v1/me");
    assert_eq!(r.status, 401, "fay's header used for eve: {}", r.text);
    // A tenant's integration cannot make itself a lasting token.
    let r = as_fay.header("X-Unused: 1").post("/api/v1/tokens", "{}");
    assert!(r.status == 401 || r.status == 403, "{}", r.text);
    let r = api
        .header(&format!("X-WSSE: {}", wsse(&p, "fay", 0)))
        .post("/api/v1/tokens", "{}");
    assert_eq!(r.status, 403, "a token made through WSSE: {}", r.text);
    let r = api
        .header(&format!("X-WSSE: {}", wsse(&p, "fay", 10)))
        .get("/api/v1/me");
    assert_eq!(r.status, 401, "Created 10 minutes ago: {}", r.text);
    let r = api
        .header(&format!("X-WSSE: {}", wsse(&p, "root", 0)))
        .get("/api/v1/me");
    assert_eq!(r.status, 403, "an admin through WSSE: {}", r.text);
}

#[test]
fn roles_projects_and_the_hierarchy_decide_what_each_account_sees_and_runs() {
    let smtp = SmtpServer::start();
    let p = project(&smtp, "1s");
    p.add_user("admin", "admin", &[]);
    p.add_user("bob", "operator", &["--projects", "tests"]);
    p.add_user(
        "dave",
        "operator",
        &["--projects", "tests", "--primary", "bob"],
    );
    p.add_user("carol", "viewer", &["--projects", "tests"]);
    let tokens: Vec<String> = ["admin", "bob", "dave", "carol"]
        .iter()
        .map(|u| p.token(u))
        .collect();
    let (_serve, api) = start(&p);
    let [admin, bob, dave, carol] = [0, 1, 2, 3].map(|i| api.token(&tokens[i]));
    let run = |who: &Api, job: &str, body: &str| who.post(&format!("/api/v1/jobs/{job}"), body);
    let hello = r#"{"options": {"who": "world"}}"#;

    // A viewer reads but cannot run; an operator runs only in its projects.
    let jobs = carol.get("/api/v1/jobs");
    let names: Vec<&str> = jobs.json["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["tests/hello"], "{}", jobs.text);
    let r = run(&carol, "tests/hello", hello);
    assert_eq!((r.status, r.code()), (403, "forbidden"), "{}", r.text);
    let r = run(&bob, "vip", "{}");
    assert_eq!(r.status, 404, "outside bob's projects: {}", r.text);
    let r = run(&bob, "tests/hello", "{}");
    assert_eq!(
        (r.status, r.json["error"]["field"].as_str()),
        (400, Some("options.who")),
        "{}",
        r.text
    );

    let started = |r: Reply| {
        assert_eq!(r.status, 202, "{}", r.text);
        r.json["execution"].as_str().unwrap().to_string()
    };
    let by_bob = started(run(&bob, "tests/hello", hello));
    let by_dave = started(run(&dave, "tests/hello", hello));
    let by_admin = started(run(&admin, "vip", "{}"));
    let ids = |who: &Api| -> Vec<String> {
        let r = who.get("/api/v1/executions");
        assert_eq!(r.status, 200, "{}", r.text);
        let mut v: Vec<String> = r.json["executions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    // A primary sees its secondaries' runs; a secondary only its own; an admin all.
    assert_eq!(ids(&bob), sorted(vec![by_bob.clone(), by_dave.clone()]));
    assert_eq!(ids(&dave), vec![by_dave.clone()]);
    assert_eq!(ids(&carol), Vec::<String>::new());
    assert_eq!(
        ids(&admin),
        sorted(vec![by_bob.clone(), by_dave.clone(), by_admin.clone()])
    );
    assert_eq!(
        dave.get(&format!("/api/v1/executions/{by_bob}")).status,
        404
    );
    let e = bob.get(&format!("/api/v1/executions/{by_dave}"));
    assert_eq!(e.json["account"], "dave", "{}", e.text);
    assert!(
        e.json["started_by"]
            .as_str()
            .unwrap()
            .starts_with("dave (token "),
        "{}",
        e.text
    );

    // Agents are for operators; transfers are filtered by project like executions.
    assert_eq!(carol.get("/api/v1/agents").status, 403);
    let r = bob.get("/api/v1/agents");
    assert!(r.status == 200 && r.json["agents"].is_array(), "{}", r.text);
    assert_eq!(bob.get("/api/v1/transfers?scenario=vip").status, 404);
    let r = bob.get("/api/v1/transfers?limit=0");
    assert_eq!(
        (r.status, r.json["error"]["field"].as_str()),
        (400, Some("limit"))
    );

    // The audit log says who ran what; only admins read it.
    assert_eq!(bob.get("/api/v1/audit").status, 403);
    let audit = admin.get("/api/v1/audit?action=run");
    assert!(
        audit.text.contains(&format!("tests/hello {by_bob}")),
        "{}",
        audit.text
    );

    // An administrator made by another manages only the accounts it makes.
    let body = |name: &str, role: &str| {
        serde_json::json!({"name": name, "role": role, "email": format!("{name}@example.com"),
            "password": PASSWORD, "projects": ["tests"]})
        .to_string()
    };
    let r = admin.post("/api/v1/users", &body("sub", "admin"));
    assert_eq!(
        (r.status, r.json["manager"].as_str()),
        (201, Some("admin")),
        "{}",
        r.text
    );
    let sub = api.token(&p.token("sub"));
    let r = sub.post("/api/v1/users", &body("zoe", "operator"));
    assert_eq!(
        (r.status, r.json["manager"].as_str()),
        (201, Some("sub")),
        "{}",
        r.text
    );
    let patch = |who: &Api, name: &str| {
        who.call(
            "PATCH",
            &format!("/api/v1/users/{name}"),
            Some(r#"{"projects": ["tests", "vip"]}"#),
        )
        .status
    };
    assert_eq!(
        patch(&sub, "bob"),
        403,
        "sub changed an account it does not manage"
    );
    assert_eq!(patch(&sub, "zoe"), 200);
    assert_eq!(
        patch(&admin, "zoe"),
        200,
        "the top administrator manages every account"
    );
    let listed = sub.get("/api/v1/users").json;
    let names: Vec<&str> = listed["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["sub", "zoe"], "{listed}");

    // A disabled account's token stops working; so does a revoked token.
    let out = p.controller(&["users", "disable", "carol"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(carol.get("/api/v1/me").status, 401);
    let id = tokens[1].split('_').nth(1).unwrap();
    let r = bob.call("DELETE", &format!("/api/v1/tokens/{id}"), None);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(bob.get("/api/v1/me").status, 401);

    // A deleted account's executions stay, marked as a deleted account's: a new account
    // given the same name does not see them.
    let out = p.controller(&["users", "delete", "dave"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    p.add_user("dave", "operator", &["--projects", "tests"]);
    let new_dave = api.token(&p.token("dave"));
    assert_eq!(ids(&new_dave), Vec::<String>::new());
    assert_eq!(
        new_dave
            .get(&format!("/api/v1/executions/{by_dave}"))
            .status,
        404
    );
    let e = admin.get(&format!("/api/v1/executions/{by_dave}"));
    assert_eq!(e.json["account"], "dave (deleted)", "{}", e.text);
}

#[test]
fn no_route_answers_without_credentials_and_the_openapi_document_lists_every_route() {
    let smtp = SmtpServer::start();
    let p = project(&smtp, "1s");
    let token = p.admin_token();
    let (_serve, api) = start(&p);
    let forged = api.header("Cookie: __Host-ordo_session=0123456789abcdef");
    let bad_bearer = api.token("ordo_0123456789abcdef_0123");
    for (method, path, public, _) in ordo_web::api::ROUTES {
        let path = path
            .replace("{*name}", "tests/hello")
            .replace(['{', '}'], "");
        let method = method.to_uppercase();
        for (who, client) in [
            ("nothing", &api),
            ("a forged cookie", &forged),
            ("a bad token", &bad_bearer),
        ] {
            let r = client.call(&method, &path, Some("{}"));
            if *public {
                assert_ne!(r.status / 100, 2, "{method} {path} with {who}: {}", r.text);
            } else {
                assert_eq!(r.status, 401, "{method} {path} with {who}: {}", r.text);
                assert_eq!(r.code(), "unauthenticated");
            }
        }
    }
    let doc = api.token(&token).get("/api/v1/openapi.json");
    assert_eq!(doc.status, 200, "{}", doc.text);
    let mut listed = 0;
    for (path, ops) in doc.json["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            let route = path.replace("{name}", "{*name}");
            assert!(
                ordo_web::api::ROUTES
                    .iter()
                    .any(|(m, p, _, _)| m == method && (*p == route || *p == path.as_str())),
                "{method} {path} is documented but not served"
            );
            listed += 1;
        }
    }
    assert_eq!(listed, ordo_web::api::ROUTES.len());

    // Plain HTTP only on loopback.
    let out = p.controller(&[
        "serve",
        "--listen",
        &format!("http://0.0.0.0:{}", free_port()),
    ]);
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains("plain HTTP is only allowed on a loopback address"),
        "{}",
        out.stderr
    );
}

/// A live log (SSE) stops when its client leaves, and an account may hold 16 at once: a
/// 17th is refused until one closes.
#[test]
fn live_logs_are_bounded_per_account_and_end_with_their_client() {
    let smtp = SmtpServer::start();
    let p = project(&smtp, "1s");
    p.write(
        "jobs/tests/slow.yaml",
        "targets: all\nsteps:\n  - command: 'echo started; sleep 30'\n",
    );
    let token = p.admin_token();
    let (_serve, api) = start(&p);
    let admin = api.token(&token);
    let r = admin.post("/api/v1/jobs/tests/slow", "{}");
    assert_eq!(r.status, 202, "{}", r.text);
    let id = r.json["execution"].as_str().unwrap().to_string();
    let url = format!("{}/api/v1/executions/{id}/events", api.base);
    let ca = p.path().join("data/pki/ca.pem");
    let open = || {
        std::process::Command::new("curl")
            .args(["-sN", "--max-time", "60", "--cacert"])
            .arg(&ca)
            .args(["-H", &format!("Authorization: Bearer {token}"), &url])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut streams: Vec<_> = (0..16).map(|_| open()).collect();
    // Each stream got its first event: all 16 are open.
    for s in &mut streams {
        let mut buf = [0u8; 64];
        let n = std::io::Read::read(s.stdout.as_mut().unwrap(), &mut buf).unwrap();
        assert!(
            String::from_utf8_lossy(&buf[..n]).contains("event:"),
            "a stream"
        );
    }
    let r = admin.get(&format!("/api/v1/executions/{id}/events"));
    assert_eq!(
        (r.status, r.code()),
        (409, "conflict"),
        "a 17th stream: {}",
        r.text
    );
    // Clients that leave free their place (the server notices without writing to them).
    for mut s in streams.drain(..8) {
        let _ = s.kill();
        let _ = s.wait();
    }
    ordo_tests::wait_until("a place for a new stream", Duration::from_secs(10), || {
        let mut s = open();
        let mut buf = [0u8; 64];
        let n = std::io::Read::read(s.stdout.as_mut().unwrap(), &mut buf).unwrap_or(0);
        let _ = s.kill();
        let _ = s.wait();
        String::from_utf8_lossy(&buf[..n]).contains("event:")
    });
    for mut s in streams {
        let _ = s.kill();
        let _ = s.wait();
    }
}

/// A session for `user` as a browser gets one (password, then the mailed code): the API
/// with its cookie and CSRF header.
fn session(
    api: &Api,
    p: &Project,
    smtp: &SmtpServer,
    seen: &mut HashSet<Vec<u8>>,
    user: &str,
) -> Api {
    let jar = p.path().join(format!("cookies-{user}"));
    let browser = api.cookies(&jar);
    let r = login(&browser, user, PASSWORD);
    assert_eq!(r.status, 202, "{}", r.text);
    let ticket = r.json["ticket"].as_str().unwrap().to_string();
    let c = new_code(smtp, seen, &format!("{user}@example.com"));
    let r = code(&browser, &ticket, &c);
    assert_eq!(r.status, 200, "{}", r.text);
    browser.header(&format!(
        "X-CSRF-Token: {}",
        r.json["csrf"].as_str().unwrap()
    ))
}

fn account(name: &str, role: &str, extra: serde_json::Value) -> String {
    let mut v = serde_json::json!({"name": name, "role": role,
        "email": format!("{name}@example.com"), "password": PASSWORD, "projects": ["tests"]});
    v.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    v.to_string()
}

/// An RSA certificate `NAME.pem` in the project folder, its PEM text.
fn certificate(p: &Project, name: &str) -> String {
    let dir = p.path().display();
    sh(&format!(
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout {dir}/{name}.key -out {dir}/{name}.pem -days 365 -subj /CN={name} 2>/dev/null"
    ));
    std::fs::read_to_string(p.path().join(format!("{name}.pem"))).unwrap()
}

/// Regression (security review 2026-12-07): an administrator made by another cleared
/// `manager` on an account it made and so made a top administrator, who could then take
/// every account over. Top administrators are now a fact only they grant.
#[test]
fn a_managed_administrator_stays_in_its_lane() {
    let smtp = SmtpServer::start();
    let p = project(&smtp, "1s");
    // An administrator added on the command line without a manager: a top administrator.
    p.add_user("root", "admin", &[]);
    let (_serve, api) = start(&p);
    let root = api.token(&p.token("root"));
    let me = root.get("/api/v1/me");
    assert_eq!(me.json["top"], true, "{}", me.text);

    let r = root.post(
        "/api/v1/users",
        &account("sub", "admin", serde_json::json!({})),
    );
    assert_eq!(
        (
            r.status,
            r.json["manager"].as_str(),
            r.json["top"].as_bool()
        ),
        (201, Some("root"), Some(false)),
        "{}",
        r.text
    );
    let mut seen = HashSet::new();
    let sub = session(&api, &p, &smtp, &mut seen, "sub");
    let r = sub.post(
        "/api/v1/users",
        &account("zed", "admin", serde_json::json!({})),
    );
    assert_eq!(
        (r.status, r.json["manager"].as_str()),
        (201, Some("sub")),
        "{}",
        r.text
    );
    let patch = |who: &Api, name: &str, body: &str| {
        who.call("PATCH", &format!("/api/v1/users/{name}"), Some(body))
    };

    // The climb: clearing `manager`, on an account it made or on itself.
    let r = patch(&sub, "zed", r#"{"manager": null}"#);
    assert_eq!(
        (r.status, r.json["error"]["field"].as_str()),
        (400, Some("manager")),
        "{}",
        r.text
    );
    let r = patch(&sub, "sub", r#"{"manager": null}"#);
    assert_eq!((r.status, r.code()), (403, "forbidden"), "{}", r.text);
    // Granting the top standing, to an account it made or to a new one.
    let r = patch(&sub, "zed", r#"{"top": true}"#);
    assert_eq!((r.status, r.code()), (403, "forbidden"), "{}", r.text);
    let r = sub.post(
        "/api/v1/users",
        &account("yan", "admin", serde_json::json!({"top": true})),
    );
    assert_eq!((r.status, r.code()), (403, "forbidden"), "{}", r.text);
    // Handing an account to someone outside its lane, or touching a top administrator.
    let r = patch(&sub, "zed", r#"{"manager": "root"}"#);
    assert_eq!(r.status, 403, "{}", r.text);
    let r = patch(&sub, "root", r#"{"email": "mine@example.com"}"#);
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(sub.call("DELETE", "/api/v1/users/root", None).status, 403);
    let r = root.get("/api/v1/users/root");
    assert_eq!(r.json["email"], "root@example.com", "{}", r.text);

    // Tokens: for the accounts it manages, never for others.
    let r = sub.post("/api/v1/tokens", r#"{"user": "root"}"#);
    assert_eq!((r.status, r.code()), (403, "forbidden"), "{}", r.text);
    let r = sub.post("/api/v1/tokens", r#"{"user": "zed", "label": "ci"}"#);
    assert_eq!(r.status, 201, "{}", r.text);
    let zed_token = r.json["token"].as_str().unwrap().to_string();
    assert_eq!(api.token(&zed_token).get("/api/v1/me").status, 200);

    // The audit log: its own lane only; the top administrator reads it all.
    let r = sub.get("/api/v1/audit?limit=1000");
    assert_eq!(r.status, 200, "{}", r.text);
    let rows = r.json["audit"].as_array().unwrap();
    assert!(!rows.is_empty(), "{}", r.text);
    for row in rows {
        let who = row["account"].as_str().unwrap_or_default();
        assert!(who == "sub" || who == "zed", "sub reads {row}");
    }
    let all = root.get("/api/v1/audit?limit=1000");
    assert!(
        all.json["audit"]
            .as_array()
            .unwrap()
            .iter()
            .any(|row| row["account"] == "root"),
        "{}",
        all.text
    );

    // Keys: personal keys it added are its own; backup keys and others' keys are not.
    let cert = |name: &str| certificate(&p, name);
    let key = |name: &str, pem: &str, backup: bool| {
        serde_json::json!({"name": name, "cert": pem, "backup": backup}).to_string()
    };
    let r = sub.post("/api/v1/keys", &key("sub-safe", &cert("subsafe"), true));
    assert_eq!((r.status, r.code()), (403, "forbidden"), "{}", r.text);
    let r = sub.post("/api/v1/keys", &key("sub-key", &cert("subkey"), false));
    assert_eq!(r.status, 200, "{}", r.text);
    let r = root.post("/api/v1/keys", &key("safe", &cert("safe"), true));
    assert_eq!(r.status, 200, "{}", r.text);
    let r = root.post("/api/v1/keys", &key("root-key", &cert("rootkey"), false));
    assert_eq!(r.status, 200, "{}", r.text);
    for (method, path, body) in [
        ("PATCH", "/api/v1/keys/safe", Some(r#"{"backup": false}"#)),
        ("PATCH", "/api/v1/keys/sub-key", Some(r#"{"backup": true}"#)),
        ("DELETE", "/api/v1/keys/safe?force=true", None),
        ("DELETE", "/api/v1/keys/root-key", None),
    ] {
        let r = sub.call(method, path, body);
        assert_eq!(
            (r.status, r.code()),
            (403, "forbidden"),
            "{method} {path}: {}",
            r.text
        );
    }
    assert_eq!(sub.call("DELETE", "/api/v1/keys/sub-key", None).status, 200);
    // The top administrator is told that the backup keys changed.
    ordo_tests::wait_until("the backup keys mail", Duration::from_secs(20), || {
        smtp.messages().iter().any(|m| {
            let m = m.parsed();
            m.subject()
                .is_some_and(|s| s.contains("backup encryption keys changed"))
                && m.to().and_then(|a| a.first()).and_then(|a| a.address())
                    == Some("root@example.com")
                && m.body_text(0).is_some_and(|b| b.contains("`safe`"))
        })
    });

    // A key added on the command line belongs to no account (an account made under the
    // system user's name owns nothing).
    certificate(&p, "clikey");
    p.controller(&[
        "keys",
        "add",
        "cli-key",
        "--cert",
        p.path().join("clikey.pem").to_str().unwrap(),
    ])
    .expect_code(0);
    let r = sub.call("DELETE", "/api/v1/keys/cli-key", None);
    assert_eq!((r.status, r.code()), (403, "forbidden"), "{}", r.text);

    // Promoted by a top administrator, zed leaves sub's lane: the token sub made for it
    // stops working, and sub no longer reads its audit entries.
    let r = patch(&root, "zed", r#"{"top": true}"#);
    assert_eq!(
        (r.status, r.json["manager"].as_str()),
        (200, Some("root")),
        "{}",
        r.text
    );
    assert_eq!(api.token(&zed_token).get("/api/v1/me").status, 401);
    let zed = api.token(&p.token("zed"));
    assert_eq!(zed.get("/api/v1/users").status, 200);
    let r = sub.get("/api/v1/audit?limit=1000");
    assert!(
        r.json["audit"]
            .as_array()
            .unwrap()
            .iter()
            .all(|row| row["account"] != "zed"),
        "{}",
        r.text
    );
    let r = patch(&root, "zed", r#"{"top": false}"#);
    assert_eq!(r.status, 200, "{}", r.text);
    let r = sub.post(
        "/api/v1/users",
        &account("yul", "operator", serde_json::json!({})),
    );
    assert_eq!(r.status, 201, "{}", r.text);

    // The last top administrator cannot stand down; deleting an administrator hands its
    // accounts to the one who deletes it.
    let r = patch(&root, "root", r#"{"top": false}"#);
    assert_eq!((r.status, r.code()), (409, "conflict"), "{}", r.text);
    let r = root.call("DELETE", "/api/v1/users/sub", None);
    assert_eq!(
        (r.status, r.json["accounts_to"].as_str()),
        (200, Some("root")),
        "{}",
        r.text
    );
    let r = root.get("/api/v1/users/yul");
    assert_eq!(r.json["manager"], "root", "{}", r.text);
}

/// Regression (security review 2026-12-07): viewing a job ran its `values_from` command
/// each time on the blocking threads that also check passwords, so a viewer reloading a
/// job whose command is slow stalled every login. Values are now read on their own pool
/// (two at a time), cached, and a slow command leaves the page with "unavailable".
#[test]
fn a_slow_values_command_never_stalls_a_login() {
    let smtp = SmtpServer::start();
    let p = project(&smtp, "1s");
    let marker = format!("ordo-slow-values-{}", free_port());
    p.write(
        "jobs/tests/slow.yaml",
        &format!(
            "targets: all\noptions:\n  env: {{ values_from: {{ command: [/bin/sh, -c, 'sleep 50 # {marker}'], timeout: 60s }} }}\nsteps:\n  - command: 'true'\n"
        ),
    );
    p.add_user("vic", "viewer", &["--projects", "tests"]);
    p.add_user("alice", "operator", &["--projects", "tests"]);
    let (_serve, api) = start(&p);
    let vic = api.token(&p.token("vic"));
    // A viewer opens the job 24 times at once.
    let views: Vec<_> = (0..24)
        .map(|_| {
            let vic = vic.clone();
            std::thread::spawn(move || vic.get("/api/v1/jobs/tests/slow"))
        })
        .collect();
    // Meanwhile a login goes through (curl gives up after 30 s).
    let r = login(&api, "alice", PASSWORD);
    assert_eq!(r.status, 202, "a login while the views wait: {}", r.text);
    for v in views {
        let r = v.join().unwrap();
        assert_eq!(r.status, 200, "{}", r.text);
        let opt = &r.json["options"][0];
        assert!(
            opt["values_error"]
                .as_str()
                .is_some_and(|e| e.contains("has not answered yet")),
            "{}",
            r.text
        );
    }
    // One command at a time for that option, whatever the number of views.
    let running = sh(&format!(
        "pgrep -fc '^/bin/sh -c sleep 50 # {marker}' || true"
    ));
    assert!(
        running.trim().parse::<u32>().unwrap_or(0) <= 1,
        "{running} values commands running"
    );
    sh(&format!(
        "pkill -f '^/bin/sh -c sleep 50 # {marker}' || true"
    ));
}
