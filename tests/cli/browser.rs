//! A real browser on a decision link: headless Chromium (Debian's `chromium`, driven over
//! WebDriver by Debian's `chromium-driver`) opens the link from an email received by a real SMTP
//! server, is stopped by the browser itself while the required comment is empty, types one,
//! confirms and sees the receipt. Screenshots of both pages at desktop and phone width are kept
//! in `target/screenshots/` for people to look at.

use crate::harness::{Running, application, start, tomas};
use crate::mail::decision_links;
use beslut_engine::runtime::Channel;
use beslut_engine::service::Engine;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CONFIRM: &str = "Bekräfta ditt beslut";
const RECEIPT: &str = "Tack, ditt beslut är registrerat";
const SOFIA: &str = "sofia.berg@exempelkommun.se";
/// The action of the first task that takes no form fields but requires a comment.
const ACTION: &str = "Begär komplettering";
const COMMENT: &str = "Bilagan om tillgänglighet saknas – komplettera med en plan för WCAG 2.1 AA, tack.";
/// Viewports the screenshots are taken at: a laptop and a phone.
pub const SIZES: [(&str, u32, u32); 2] = [("desktop", 1280, 900), ("phone", 390, 844)];

/// Waits for the first message to `to` and returns it, raw.
async fn mail_to(running: &Running, to: &str) -> String {
    for _ in 0..100 {
        if let Some(message) = running.smtp.messages().into_iter().find(|m| m.contains(&format!("To: {to}"))) {
            return message;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no mail to {to} among {} messages", running.smtp.messages().len());
}

/// The link in `message` for the action labelled `label`.
fn link_for(message: &str, label: &str) -> String {
    let text = crate::mail::decoded(message);
    let line = text
        .lines()
        .find(|l| l.starts_with(label) && l.contains("/d/"))
        .unwrap_or_else(|| panic!("no {label} link in {text}"));
    decision_links(line).remove(0)
}

/// A running chromedriver on a port of its own; killed when dropped.
pub struct Chromedriver {
    child: Child,
    port: u16,
}

impl Chromedriver {
    /// chromedriver cannot pick a free port itself, so try ports derived from this process's id
    /// until one starts.
    pub fn start() -> Chromedriver {
        for path in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(path).exists(),
                "{path} is missing: the browser test needs Debian's chromium and chromium-driver \
                 (apt-get install -y chromium chromium-driver; scripts/test.sh installs them)"
            );
        }
        let seed = std::process::id();
        let mut failures = Vec::new();
        for attempt in 0..10u32 {
            let port = 20_000 + (seed.wrapping_mul(7919).wrapping_add(attempt.wrapping_mul(4099)) % 20_000) as u16;
            match Chromedriver::on(port) {
                Ok(driver) => return driver,
                Err(why) => failures.push(format!("port {port}: {why}")),
            }
        }
        panic!("chromedriver did not start:\n{}", failures.join("\n"));
    }

    fn on(port: u16) -> Result<Chromedriver, String> {
        let mut child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("{CHROMEDRIVER} does not run: {e}"))?;
        // Read its output on a thread that keeps draining it, so chromedriver never blocks on a full pipe.
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut output = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.contains(&format!("started successfully on port {port}")) => {
                    return Ok(Chromedriver { child, port });
                }
                Ok(line) => output.push(line),
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let why = match e {
                        std::sync::mpsc::RecvTimeoutError::Timeout => "no start within 10 s",
                        std::sync::mpsc::RecvTimeoutError::Disconnected => "exited",
                    };
                    return Err(format!("{why}: {}", output.join(" | ")));
                }
            }
        }
    }

    /// A headless Chromium session with a fresh profile in `profile`.
    pub async fn session(&self, profile: &Path) -> Client {
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), "chrome".into());
        capabilities.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--no-first-run",
                    "--disable-dev-shm-usage",
                    "--hide-scrollbars",
                    format!("--user-data-dir={}", profile.display()),
                ],
            }),
        );
        ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .unwrap_or_else(|e| panic!("{CHROMIUM} did not start under chromedriver: {e}"))
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where screenshots are kept: `screenshots/` in the target directory.
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| if p.is_relative() { crate::root().join(p) } else { p })
        .unwrap_or_else(|| crate::root().join("target"));
    let dir = target.join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn heading(client: &Client) -> String {
    client.find(Locator::Css("h1")).await.expect("the page has a heading").text().await.unwrap()
}

/// Sizes the window so that the page itself, not the window around it, is `width` × `height`.
pub async fn viewport(client: &Client, width: u32, height: u32) {
    let inner = async || {
        let size = client.execute("return [window.innerWidth, window.innerHeight]", vec![]).await.unwrap();
        (size[0].as_u64().unwrap() as u32, size[1].as_u64().unwrap() as u32)
    };
    client.set_window_size(width, height).await.unwrap();
    let (w, h) = inner().await;
    // Headless Chromium still counts room for its invisible toolbars in the window's size.
    client.set_window_size(2 * width - w, 2 * height - h).await.unwrap();
    assert_eq!(inner().await, (width, height), "the viewport is {width} × {height}");
}

/// Screenshots of the page at every size in [`SIZES`], as `<name>-<size>.png`; the page must not
/// scroll sideways at any of them. Leaves the window at desktop size.
pub async fn screenshots(client: &Client, name: &str) {
    let dir = screenshot_dir();
    for (size, width, height) in SIZES {
        viewport(client, width, height).await;
        let scroll = client.execute("return document.documentElement.scrollWidth", vec![]).await.unwrap();
        assert!(scroll.as_u64().unwrap() <= u64::from(width), "{name} scrolls sideways at {width} px: {scroll}");
        let path = dir.join(format!("{name}-{size}.png"));
        let png = client.screenshot().await.unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
        std::fs::write(&path, png).unwrap();
    }
    let (_, width, height) = SIZES[0];
    viewport(client, width, height).await;
}

/// What the person does in the browser: open the link, try to confirm without a comment, write
/// one and confirm.
async fn decide_in_browser(client: Client, url: String, engine: Arc<Engine>, case: String) {
    let (_, width, height) = SIZES[0];
    viewport(&client, width, height).await;
    client.goto(&url).await.unwrap();
    assert_eq!(heading(&client).await, CONFIRM);
    let source = client.source().await.unwrap();
    assert!(source.contains(ACTION), "the page names the action: {source}");
    screenshots(&client, "decision-link-confirm").await;
    let version = engine.case(&case).await.unwrap().version;

    // The comment is required: the browser itself refuses to send the form without one.
    let button = client.find(Locator::Css("form button[type=submit]")).await.unwrap();
    button.click().await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(client.current_url().await.unwrap().as_str(), url);
    assert_eq!(heading(&client).await, CONFIRM, "no receipt without a comment");
    let missing =
        client.execute("return document.getElementById('comment').validity.valueMissing", vec![]).await.unwrap();
    assert_eq!(missing, serde_json::Value::Bool(true));
    let focused = client.active_element().await.unwrap().attr("id").await.unwrap();
    assert_eq!(focused.as_deref(), Some("comment"), "the browser points at the missing comment");
    assert_eq!(engine.case(&case).await.unwrap().version, version, "nothing was posted");

    // With a comment it goes through.
    client.find(Locator::Id("comment")).await.unwrap().send_keys(COMMENT).await.unwrap();
    button.click().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        // Between the click and the new page the old heading may be gone.
        let shown = match client.find(Locator::Css("h1")).await {
            Ok(h1) => h1.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if shown == RECEIPT {
            break;
        }
        assert!(Instant::now() < deadline, "no receipt; the page shows: {}", client.source().await.unwrap());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let receipt = client.source().await.unwrap();
    assert!(receipt.contains(ACTION), "the receipt names the decision: {receipt}");
    screenshots(&client, "decision-link-receipt").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_person_decides_from_an_email_link_in_chromium() {
    let running = start().await;
    let case = running
        .engine
        .start("finansieringsansokan", application(), tomas(&running.engine), Channel::Api, None)
        .await
        .unwrap();
    let url = link_for(&mail_to(&running, SOFIA).await, ACTION);
    assert!(url.starts_with(&running.base), "{url}");

    let driver = Chromedriver::start();
    let profile = tempfile::tempdir().unwrap();
    let client = driver.session(profile.path()).await;
    // Run the browser steps as their own task so the session is closed even when one fails.
    let steps = tokio::spawn(decide_in_browser(client.clone(), url, running.engine.clone(), case.id.clone())).await;
    let _ = client.close().await;
    drop(driver);
    if let Err(failure) = steps {
        std::panic::resume_unwind(failure.into_panic());
    }

    let stored = running.engine.case(&case.id).await.unwrap();
    let task = stored.task(&case.tasks[0].id).unwrap();
    let decision = task.decision.as_ref().expect("the task is decided");
    assert_eq!(decision.action, "komplettering");
    assert_eq!(decision.by, "sofia-berg");
    assert_eq!(decision.channel, Channel::EmailLink);
    assert_eq!(decision.comment.as_deref(), Some(COMMENT), "the comment as typed, non-ASCII included");
}
