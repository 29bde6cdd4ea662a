//! A real headless Chromium driven over WebDriver (Debian's `chromium` and
//! `chromium-driver`, through fantoccini), for the web console's tests. Each test saves
//! screenshots of its pages under `target/screenshots/` (kept as CI artifacts).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};

use crate::{free_port, require, wait_for_port};

/// chromedriver and one browser session; both end on drop.
pub struct Browser {
    pub client: Client,
    driver: Child,
    pub rt: tokio::runtime::Runtime,
    name: String,
}

/// Where screenshots go: `<workspace>/target/screenshots`.
pub fn screenshot_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots");
    std::fs::create_dir_all(&dir).expect("screenshots folder");
    dir
}

impl Browser {
    /// A headless Chromium with a phone or desktop window (`width` x `height`); `name`
    /// prefixes its screenshots. It trusts any certificate: the controller's is checked by
    /// the API tests with curl and the project's CA.
    pub fn start(name: &str, width: u32, height: u32) -> Browser {
        require("chromedriver", "chromium-driver");
        require("chromium", "chromium");
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        wait_for_port(port, "chromedriver");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({"args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                format!("--window-size={width},{height}"),
            ]}),
        );
        caps.insert("acceptInsecureCerts".into(), true.into());
        let client = rt
            .block_on(
                ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                    .capabilities(caps)
                    .connect(&format!("http://127.0.0.1:{port}")),
            )
            .expect("a Chromium session");
        Browser {
            client,
            driver,
            rt,
            name: name.to_string(),
        }
    }

    pub fn goto(&self, url: &str) {
        self.rt.block_on(self.client.goto(url)).expect("navigate");
    }

    pub fn url(&self) -> String {
        self.rt
            .block_on(self.client.current_url())
            .expect("url")
            .to_string()
    }

    /// Waits (10 s at most) until the page's address satisfies `ok` (after a click that
    /// navigates: the click returns before the new page is there).
    pub fn wait_url(&self, ok: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let u = self.url();
            if ok(&u) {
                return u;
            }
            if std::time::Instant::now() > deadline {
                self.screenshot("timeout");
                panic!("the page stayed at {u}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The element matching `css`, waiting for it (10 s at most).
    pub fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.rt
            .block_on(
                self.client
                    .wait()
                    .at_most(Duration::from_secs(10))
                    .for_element(Locator::Css(css)),
            )
            .unwrap_or_else(|e| {
                self.screenshot("missing");
                panic!("no `{css}` on {}: {e}", self.url())
            })
    }

    pub fn exists(&self, css: &str) -> bool {
        self.rt
            .block_on(self.client.find(Locator::Css(css)))
            .is_ok()
    }

    /// The text of `css` (found again if the page changed under it).
    pub fn text(&self, css: &str) -> String {
        for _ in 0..20 {
            if let Ok(t) = self.rt.block_on(self.find(css).text()) {
                return t;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("cannot read `{css}` on {}", self.url())
    }

    /// Types into a field (clearing it first).
    pub fn fill(&self, css: &str, value: &str) {
        let e = self.find(css);
        self.rt.block_on(e.clear()).expect("clear");
        self.rt.block_on(e.send_keys(value)).expect("type");
    }

    pub fn select(&self, css: &str, value: &str) {
        let e = self.find(css);
        self.rt.block_on(e.select_by_value(value)).expect("select");
    }

    pub fn click(&self, css: &str) {
        let e = self.find(css);
        self.rt.block_on(e.click()).expect("click");
    }

    /// A DOM property (`value` of a select or an input as it is now).
    pub fn prop(&self, css: &str, name: &str) -> Option<String> {
        self.rt
            .block_on(self.find(css).prop(name))
            .expect("property")
    }

    pub fn attr(&self, css: &str, name: &str) -> Option<String> {
        self.rt
            .block_on(self.find(css).attr(name))
            .expect("attribute")
    }

    /// Waits (`secs` at most) until `css`'s text satisfies `ok`; its last text.
    pub fn wait_text(&self, css: &str, secs: u64, ok: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let t = self
                .rt
                .block_on(async {
                    match self.client.find(Locator::Css(css)).await {
                        Ok(e) => e.text().await.ok(),
                        Err(_) => None,
                    }
                })
                .unwrap_or_default();
            if ok(&t) {
                return t;
            }
            if std::time::Instant::now() > deadline {
                self.screenshot("timeout");
                panic!("`{css}` on {} still reads {t:?}", self.url());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs a script in the page; its result.
    pub fn eval(&self, js: &str) -> serde_json::Value {
        self.rt
            .block_on(self.client.execute(js, vec![]))
            .expect("script")
    }

    /// The session cookie's value, to call the API as this browser does.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.rt
            .block_on(self.client.get_named_cookie(name))
            .ok()
            .map(|c| c.value().to_string())
    }

    /// Saves a PNG of the page as `target/screenshots/<test>-<label>.png`.
    pub fn screenshot(&self, label: &str) -> PathBuf {
        let path = screenshot_dir().join(format!("{}-{label}.png", self.name));
        if let Ok(png) = self.rt.block_on(self.client.screenshot()) {
            let _ = std::fs::write(&path, png);
        }
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.screenshot("last");
        let c = self.client.clone();
        let _ = self.rt.block_on(c.close());
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
