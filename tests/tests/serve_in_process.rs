//! `serve::run` driven in-process, as an embedder or a test would: a listener on port 0,
//! reloads and shutdown from the caller. Checks the API's answers (202, 404, 400, 422)
//! and that a shutdown returns with the instance gone from the database; a slow client's
//! connection is cut.

use std::time::{Duration, Instant};

use ordo_controller::project::{Env, Loaded, ProjectConfig};
use ordo_tests::project::{PASSWORD, Project};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

/// One HTTP/1.1 request; the status code and the JSON body.
async fn http(addr: std::net::SocketAddr, token: &str, method: &str, path: &str) -> (u16, Value) {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status: u16 = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text}"));
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
    // Small bodies come in one chunk when chunked: take the JSON between the braces.
    let json = match (body.find('{'), body.rfind('}')) {
        (Some(a), Some(b)) => &body[a..=b],
        _ => "null",
    };
    (status, serde_json::from_str(json).unwrap_or(Value::Null))
}

#[test]
fn serve_runs_in_process_answers_the_api_reloads_and_stops() {
    let p = Project::new();
    p.write("inventory.yaml", "servers:\n  s1: { transport: local }\n");
    p.write(
        "jobs/hello.yaml",
        "targets: all\nsteps:\n  - command: echo hello from $ORDO_NODE_NAME\n",
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let cfg = ProjectConfig::load(p.path()).expect("ordo.yaml");
        let url = ordo_controller::project::database_url(&cfg);
        let loaded = Loaded::all(cfg).expect("project");
        let cfg = loaded.cfg.clone();
        let (env, me) = Env::open(loaded, "serve").await.expect("open");
        let instance = me.id.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut listening = ordo_web::http::listening(&cfg, addr, true).unwrap();
        // 30 s in production; short here to see a slow client cut.
        listening.header_timeout = Duration::from_secs(1);
        let new = ordo_controller::auth::users::NewUser {
            name: "root".into(),
            role: "admin".into(),
            email: "root@example.com".into(),
            top: true,
            ..Default::default()
        };
        ordo_controller::auth::users::add(&env.store, new, PASSWORD)
            .await
            .unwrap();
        let (_, token) =
            ordo_controller::auth::users::create_token(&env.store, "root", "test", None)
                .await
                .unwrap();
        let http = |method: &'static str, path: String| {
            let token = token.clone();
            async move { http(addr, &token, method, &path).await }
        };
        let (reload_tx, reloads) = mpsc::channel(1);
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let served = tokio::spawn(ordo_controller::serve::run(
            env,
            me,
            Some(ordo_web::front_door(listener, listening)),
            reloads,
            async {
                let _ = stop_rx.await;
            },
        ));

        let (code, body) = http("POST", "/api/v1/jobs/hello".to_string()).await;
        assert_eq!(code, 202, "{body}");
        let id = body["execution"]
            .as_str()
            .expect("execution id")
            .to_string();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (code, e) = http("GET", format!("/api/v1/executions/{id}")).await;
            if code == 200 && e["status"] == "succeeded" {
                assert_eq!(e["nodes"][0]["server"], "s1", "{e}");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "execution {id} did not succeed: {code} {e}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        // Errors are mapped once: missing is 404, bad input 400, a refused reload 422.
        let (code, e) = http("GET", "/api/v1/executions/20000101-nope".to_string()).await;
        assert_eq!(code, 404, "{e}");
        assert!(
            e["error"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("no execution matches"),
            "{e}"
        );
        for bad in ["lots", "-1", "0", "1001"] {
            let (code, e) = http("GET", format!("/api/v1/executions?limit={bad}")).await;
            assert_eq!(code, 400, "limit={bad}: {e}");
        }
        let (code, e) = http("POST", "/api/v1/jobs/nope".to_string()).await;
        assert_eq!(code, 404, "{e}");
        p.write("jobs/broken.yaml", "targets: all\nsteps: 3\n");
        let (code, e) = http("POST", "/api/v1/reload".to_string()).await;
        assert_eq!(code, 422, "{e}");
        assert!(
            e["error"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("broken.yaml"),
            "{e}"
        );

        // A reload asked by the caller (SIGHUP in the CLI) picks up a new job.
        std::fs::remove_file(p.path().join("jobs/broken.yaml")).unwrap();
        p.write(
            "jobs/second.yaml",
            "targets: all\nsteps:\n  - command: true\n",
        );
        reload_tx.send(()).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (code, _) = http("POST", "/api/v1/jobs/second".to_string()).await;
            if code == 202 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the reload did not load jobs/second.yaml"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        // A client that sends its headers a little at a time, and never their end, is cut
        // (plain HTTP on loopback as on HTTPS): it does not hold a connection for ever.
        let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
        slow.write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            .await
            .unwrap();
        let mut buf = Vec::new();
        let cut = tokio::time::timeout(Duration::from_secs(10), slow.read_to_end(&mut buf)).await;
        assert!(
            cut.is_ok(),
            "a client that never ends its headers still holds its connection after 10 s"
        );

        stop_tx.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(40), served)
            .await
            .expect("serve stopped within 40 s")
            .unwrap()
            .expect("serve ended without error");
        // serve closed its store; look with a connection of our own.
        let store = ordo_controller::store::Store::open(&url).await.unwrap();
        let alive: Vec<String> = store
            .controllers()
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.0)
            .collect();
        assert!(
            !alive.contains(&instance),
            "{instance} still registered: {alive:?}"
        );
        assert!(
            tokio::net::TcpStream::connect(addr).await.is_err(),
            "the API still listens"
        );
    });
}
