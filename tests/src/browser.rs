//! A real browser for the dashboard's end-to-end tests: Debian's headless
//! Chromium driven over WebDriver (`chromedriver`) with `fantoccini`.
//!
//! When Chromium or ChromeDriver is missing the tests skip with a message
//! saying how to install them — unless `PIGEON_E2E_REQUIRED` is set (as CI
//! does), where a missing browser fails the test instead.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};

const CHROMIUM: &[&str] = &["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"];
const CHROMEDRIVER: &[&str] = &["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"];

/// Chromium's flags for a closed, headless machine: without the networking
/// ones it tries to reach the internet at every start and stalls.
const FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,1000",
];

fn find(candidates: &[&str], name: &str) -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join(name)).collect::<Vec<_>>())
        .unwrap_or_default();
    candidates.iter().map(PathBuf::from).chain(on_path).find(|p| p.is_file())
}

/// A headless Chromium session; the driver dies with it.
pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts ChromeDriver and a headless Chromium session, or `None` (with
    /// a message) when they are not installed and the test may skip.
    pub async fn start() -> Option<Browser> {
        let (Some(chromium), Some(chromedriver)) = (find(CHROMIUM, "chromium"), find(CHROMEDRIVER, "chromedriver"))
        else {
            let help = "Chromium and ChromeDriver are needed for the dashboard's browser tests: \
                        `sudo apt-get install chromium chromium-driver`";
            crate::skip(help);
            return None;
        };
        Some(Self::launch(&chromium, &chromedriver).await)
    }

    async fn launch(chromium: &Path, chromedriver: &Path) -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let profile = tempfile::tempdir().expect("temp dir");
        let mut args: Vec<String> = FLAGS.iter().map(|f| f.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({ "binary": chromium.display().to_string(), "args": args }),
        );
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + crate::PATIENCE;
        let client = loop {
            // The driver needs a moment to listen.
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector).capabilities(caps.clone()).connect(&url).await {
                Ok(client) => break client,
                Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(100)).await,
                Err(e) => panic!("cannot start a Chromium session through {url}: {e}"),
            }
        };
        Browser { client, driver, _profile: profile }
    }

    /// Waits until the text of the element at `css` satisfies `test`;
    /// returns that text. Panics with the last text seen at the deadline.
    pub async fn wait_text(&self, css: &str, test: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + crate::PATIENCE;
        let mut last = String::from("(no such element)");
        while Instant::now() < deadline {
            let text = match self.client.find(Locator::Css(css)).await {
                Ok(element) => element.text().await.ok(),
                Err(_) => None,
            };
            if let Some(text) = text {
                if test(&text) {
                    return text;
                }
                last = text;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("`{css}` never showed the expected text; last seen: {last:?}")
    }

    /// Clicks the element at `css` once it exists.
    pub async fn click(&self, css: &str) {
        self.element(css).await.click().await.unwrap_or_else(|e| panic!("cannot click `{css}`: {e}"));
    }

    /// Replaces the value of the input at `css` with `text`.
    pub async fn type_into(&self, css: &str, text: &str) {
        let element = self.element(css).await;
        // Emptied and told so in one script: WebDriver's `clear` fires no
        // `input` event, and a render between a `clear` and a later event
        // (the live feed re-renders twice a second) puts the old value back
        // into the controlled input before the page hears of the change.
        let clear =
            "arguments[0].value = ''; arguments[0].dispatchEvent(new Event('input', { bubbles: true })); return null;";
        let target = serde_json::to_value(&element).expect("an element reference");
        self.client.execute(clear, vec![target]).await.unwrap_or_else(|e| panic!("cannot clear `{css}`: {e}"));
        element.send_keys(text).await.unwrap_or_else(|e| panic!("cannot type into `{css}`: {e}"));
    }

    /// The element at `css`, waiting for it to appear.
    pub async fn element(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(crate::PATIENCE)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("`{css}` never appeared: {e}"))
    }

    /// Opens `url` (a full page load).
    pub async fn open(&self, url: &str) {
        self.client.goto(url).await.unwrap_or_else(|e| panic!("cannot open {url}: {e}"));
    }

    /// Moves within the page: changes the `#hash` without reloading.
    pub async fn route(&self, hash: &str) {
        let script = "location.hash = arguments[0];";
        self.client.execute(script, vec![hash.into()]).await.unwrap_or_else(|e| panic!("cannot go to {hash}: {e}"));
    }

    /// Writes a PNG of the window to `path`.
    pub async fn screenshot(&self, path: &Path) {
        let png = self.client.screenshot().await.expect("a screenshot");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("screenshot directory");
        }
        std::fs::write(path, png).expect("screenshot written");
    }

    /// Ends the session and the driver.
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
    }
}
