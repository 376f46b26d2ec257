//! The storefront in a real browser: headless Chromium driven over WebDriver (chromedriver), as
//! a person would use the shop: following links, typing into the forms' fields, pressing the
//! buttons, and waiting (a bounded time) for what the page should show. The selectors are the
//! ones `storefront/README.md` promises.
//!
//! Each test starts a platform of its own (whatever `E2E_GATEWAY_URL` says) and one browser:
//! chromedriver from `CHROMEDRIVER`, else `PATH` (`scripts/infra.sh chromium` installs Debian's
//! `chromium` and `chromium-driver` and prints the path; `make test` sets `CHROMEDRIVER` from
//! it), the browser from `CHROMIUM` if set, else wherever chromedriver finds one. Without
//! chromedriver these tests fail rather than skip.
//!
//! Screenshots go to `target/screenshots/<name>.png`, and with `UPDATE_SCREENSHOTS=1` to
//! `docs/screenshots/` too; a failed test leaves `failure-<test>.png` there, and its panic
//! message names the page's URL and what its `#content` said.
//!
//! ```text
//! cargo nextest run --workspace -E 'test(/storefront::/)'
//! ```

use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use chrono::Datelike as _;
use fantoccini::elements::Element;
use fantoccini::{Client as WebDriver, ClientBuilder, Locator};
use platform_host::{Platform, Service};
use serde_json::{Value, json};

use crate::helpers::{ADMIN, customer_with_card, free_port, own_platform, unique_sku};

/// How long a page may take to show what the test waits for.
const PAGE: Duration = Duration::from_secs(20);
/// How long an order may take to be confirmed or cancelled (the saga, followed live).
const SAGA: Duration = Duration::from_secs(30);
/// How often a wait looks again.
const POLL: Duration = Duration::from_millis(150);

const GOOD_CARD: &str = "4242 4242 4242 4242";
const DECLINED_CARD: &str = "4000 0000 0000 0002";
const PASSWORD: &str = "correct horse battery staple";

/// The workspace's root (host/..).
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ is in the workspace")
        .to_path_buf()
}

/// Where screenshots always go: `target/screenshots` (or under `CARGO_TARGET_DIR`).
fn screenshot_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace_root().join("target"), PathBuf::from)
        .join("screenshots")
}

/// Writes a screenshot as `<name>.png` under `target/screenshots`, and under `docs/screenshots`
/// too when `UPDATE_SCREENSHOTS=1`.
fn save_png(name: &str, png: &[u8]) {
    let mut dirs = vec![screenshot_dir()];
    if std::env::var("UPDATE_SCREENSHOTS").is_ok_and(|value| value == "1") {
        dirs.push(workspace_root().join("docs").join("screenshots"));
    }
    for dir in dirs {
        let path = dir.join(format!("{name}.png"));
        if let Err(error) = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, png))
        {
            eprintln!("could not write the screenshot {}: {error}", path.display());
        }
    }
}

/// `CHROMEDRIVER` if set, else the first `chromedriver` on `PATH`; a failure saying how to get
/// one if neither.
fn chromedriver_path() -> PathBuf {
    const INSTALL: &str = "run `scripts/infra.sh chromium` (it installs Debian's chromium and \
                           chromium-driver and prints chromedriver's path) and set \
                           CHROMEDRIVER=\"$(scripts/infra.sh chromium)\", as `make test` does";
    if let Some(path) = std::env::var_os("CHROMEDRIVER").filter(|path| !path.is_empty()) {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "CHROMEDRIVER={} is not a file: {INSTALL}",
            path.display()
        );
        return path;
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("chromedriver"))
        .find(|path| path.is_file())
        .unwrap_or_else(|| {
            panic!("no chromedriver: CHROMEDRIVER is unset and none is on PATH; {INSTALL}")
        })
}

/// A blocking HTTP/1.1 request to chromedriver (for `Drop`, which cannot await): the body of
/// the answer. Chromedriver answers with a `Content-Length` and keeps the connection open.
fn blocking_request(port: u16, method: &str, path: &str) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(15)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = Vec::new();
    let mut buffer = vec![0; 64 * 1024];
    loop {
        let read = stream.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        response.extend_from_slice(&buffer[..read]);
        if let Some(end) = response.windows(4).position(|window| window == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&response[..end]).to_ascii_lowercase();
            let length = head.lines().find_map(|line| {
                line.strip_prefix("content-length:")
                    .and_then(|value| value.trim().parse::<usize>().ok())
            });
            if let Some(length) = length
                && response.len() >= end + 4 + length
            {
                return Ok(response[end + 4..end + 4 + length].to_vec());
            }
        }
    }
    let end = response
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .map_or(response.len(), |end| end + 4);
    Ok(response[end..].to_vec())
}

/// The chromedriver process: killed on drop, with anything it started and left behind.
struct Driver {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Driver {
    fn start(test: &str) -> Self {
        let path = chromedriver_path();
        let port = free_port();
        let log_dir = std::env::temp_dir().join("storefront-e2e");
        std::fs::create_dir_all(&log_dir).expect("a directory for chromedriver's log");
        let log = log_dir.join(format!("{test}-chromedriver-{port}.log"));
        let file = std::fs::File::create(&log).expect("chromedriver's log file");
        let child = Command::new(&path)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("chromedriver's log file, twice"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|error| panic!("starting {}: {error}", path.display()));
        Self { child, port, log }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Waits until chromedriver answers `GET /status` with `ready: true`.
    async fn wait_ready(&mut self) {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + PAGE;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "chromedriver exited at once ({status}); its log ({}):\n{}",
                    self.log.display(),
                    self.log_tail()
                );
            }
            let answer = http
                .get(format!("{}/status", self.url()))
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            if let Ok(answer) = answer
                && let Ok(status) = answer.json::<Value>().await
                && status["value"]["ready"] == json!(true)
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not answer GET /status within {PAGE:?}; its log ({}):\n{}",
                self.log.display(),
                self.log_tail()
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// The processes below chromedriver (the browser and its helpers), from /proc.
    fn descendants(&self) -> Vec<u32> {
        let mut parents = Vec::new();
        if let Ok(entries) = std::fs::read_dir("/proc") {
            for entry in entries.flatten() {
                let Some(pid) = entry
                    .file_name()
                    .to_str()
                    .and_then(|n| n.parse::<u32>().ok())
                else {
                    continue;
                };
                // /proc/<pid>/stat: "pid (comm) state ppid ..."; comm may hold spaces.
                let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                    continue;
                };
                let ppid = stat
                    .rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                    .and_then(|ppid| ppid.parse::<u32>().ok());
                if let Some(ppid) = ppid {
                    parents.push((pid, ppid));
                }
            }
        }
        let mut found = vec![self.child.id()];
        let mut index = 0;
        while index < found.len() {
            let parent = found[index];
            found.extend(
                parents
                    .iter()
                    .filter(|(_, ppid)| *ppid == parent)
                    .map(|(pid, _)| *pid),
            );
            index += 1;
        }
        found.remove(0);
        found
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Whatever the browser left running (normally nothing: the session is deleted first).
        let left = self.descendants();
        if !left.is_empty() {
            let _ = Command::new("kill")
                .arg("-KILL")
                .args(left.iter().map(u32::to_string))
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Its log is kept only when the test failed.
        if !std::thread::panicking() {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

/// One headless Chromium, on the storefront of a platform.
struct Browser {
    client: WebDriver,
    /// The storefront's base URL (`http://127.0.0.1:<port>`).
    base: String,
    /// The test's name, for its failure screenshot.
    test: &'static str,
    session: Option<String>,
    /// Whether the failure screenshot was taken already.
    failed: AtomicBool,
    driver: Driver,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let Some(session) = self.session.take() else {
            return;
        };
        if std::thread::panicking() && !self.failed.load(Ordering::Relaxed) {
            let shot = blocking_request(
                self.driver.port,
                "GET",
                &format!("/session/{session}/screenshot"),
            );
            if let Ok(body) = shot
                && let Ok(answer) = serde_json::from_slice::<Value>(&body)
                && let Some(png) = answer["value"].as_str()
                && let Ok(png) = base64::engine::general_purpose::STANDARD.decode(png)
            {
                save_png(&format!("failure-{}", self.test), &png);
            }
        }
        // Closes the browser; then the driver is killed (its own Drop).
        let _ = blocking_request(self.driver.port, "DELETE", &format!("/session/{session}"));
    }
}

impl Browser {
    /// Starts chromedriver and opens a session on the storefront of `platform`.
    async fn open(platform: &Platform, test: &'static str) -> Self {
        // The failure screenshot of an earlier run would only mislead.
        let _ = std::fs::remove_file(screenshot_dir().join(format!("failure-{test}.png")));
        let mut driver = Driver::start(test);
        driver.wait_ready().await;
        let mut options = serde_json::Map::new();
        if let Some(binary) = std::env::var_os("CHROMIUM").filter(|binary| !binary.is_empty()) {
            options.insert(
                "binary".to_owned(),
                json!(binary.to_string_lossy().into_owned()),
            );
        }
        options.insert(
            "args".to_owned(),
            json!([
                "--headless=new",
                "--no-sandbox",
                "--disable-dev-shm-usage",
                "--disable-gpu",
                "--window-size=1280,1000"
            ]),
        );
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("goog:chromeOptions".to_owned(), Value::Object(options));
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&driver.url())
            .await
            .unwrap_or_else(|error| {
                panic!(
                    "opening a Chromium session through chromedriver: {error}; its log ({}):\n{}",
                    driver.log.display(),
                    driver.log_tail()
                )
            });
        let session = client
            .session_id()
            .await
            .expect("the WebDriver session's id");
        Self {
            client,
            base: platform.url(Service::STOREFRONT),
            test,
            session,
            failed: AtomicBool::new(false),
            driver,
        }
    }

    /// Navigates to a path of the storefront, as if typed into the address bar.
    async fn visit(&self, path: &str) {
        let url = format!("{}{path}", self.base);
        self.client
            .goto(&url)
            .await
            .unwrap_or_else(|error| panic!("opening {url}: {error}"));
    }

    /// Reloads the page.
    async fn reload(&self) {
        self.client.refresh().await.expect("reloading the page");
    }

    /// The path (and query) of the page shown.
    async fn path(&self) -> String {
        let url = self.client.current_url().await.expect("the page's URL");
        match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        }
    }

    /// Runs a script in the page; returns its value.
    async fn script(&self, script: &str) -> Value {
        self.client
            .execute(script, Vec::new())
            .await
            .unwrap_or_else(|error| panic!("running in the page: {script}: {error}"))
    }

    /// Saves a screenshot of the window as `<name>.png` (see the module's documentation).
    async fn screenshot(&self, name: &str) {
        match self.client.screenshot().await {
            Ok(png) => save_png(name, &png),
            Err(error) => eprintln!("could not take the screenshot {name}: {error}"),
        }
    }

    /// What a failure says: `what`, the page's URL, its flash messages and the start of its
    /// `#content` text; and the failure screenshot, `failure-<test>.png`.
    async fn failure(&self, what: &str) -> String {
        let url = self
            .client
            .current_url()
            .await
            .map_or_else(|error| format!("(no URL: {error})"), |url| url.to_string());
        let page = self
            .client
            .execute(
                "const flashes = [...document.querySelectorAll('.flash')].map(f => f.innerText.trim());
                 const content = document.getElementById('content');
                 const text = content ? content.innerText
                     : '(no #content) ' + (document.body ? document.body.innerText : '(no body)');
                 return {title: document.title, flashes, text: text.trim().slice(0, 800)};",
                Vec::new(),
            )
            .await
            .unwrap_or_else(|error| json!({ "text": format!("(could not read the page: {error})") }));
        self.screenshot(&format!("failure-{}", self.test)).await;
        self.failed.store(true, Ordering::Relaxed);
        let mut message = format!("{what}\n  page: {url}");
        if let Some(title) = page["title"].as_str() {
            let _ = write!(message, " ({title})");
        }
        if let Some(flashes) = page["flashes"].as_array().filter(|f| !f.is_empty()) {
            let _ = write!(message, "\n  flash messages: {flashes:?}");
        }
        let _ = write!(
            message,
            "\n  #content says: {}\n  screenshot: {}",
            page["text"]
                .as_str()
                .unwrap_or_default()
                .replace('\n', " | "),
            screenshot_dir()
                .join(format!("failure-{}.png", self.test))
                .display()
        );
        message
    }

    /// Fails the test with [`Browser::failure`]'s message.
    async fn fail(&self, what: &str) -> ! {
        let message = self.failure(what).await;
        panic!("{message}")
    }

    /// Waits (up to [`PAGE`]) for an element matching `css`.
    async fn find(&self, css: &str) -> Element {
        self.find_within(css, PAGE).await
    }

    /// Waits (up to `timeout`) for an element matching `css`.
    async fn find_within(&self, css: &str, timeout: Duration) -> Element {
        match self
            .client
            .wait()
            .at_most(timeout)
            .every(POLL)
            .for_element(Locator::Css(css))
            .await
        {
            Ok(element) => element,
            Err(error) => {
                self.fail(&format!("waited {timeout:?} for `{css}`: {error}"))
                    .await
            }
        }
    }

    /// The elements matching `css` now (no wait).
    async fn all(&self, css: &str) -> Vec<Element> {
        self.client
            .find_all(Locator::Css(css))
            .await
            .unwrap_or_else(|error| panic!("looking for `{css}`: {error}"))
    }

    /// Whether an element matches `css` now (no wait).
    async fn has(&self, css: &str) -> bool {
        !self.all(css).await.is_empty()
    }

    /// Asks `probe` every `every` until it gives `Ok`; after `timeout`, fails the test with
    /// what its last `Err` says it saw.
    async fn until<T>(
        &self,
        timeout: Duration,
        every: Duration,
        mut probe: impl AsyncFnMut() -> Result<T, String>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            let last = match probe().await {
                Ok(found) => return found,
                Err(last) => last,
            };
            if Instant::now() >= deadline {
                self.fail(&last).await;
            }
            tokio::time::sleep(every).await;
        }
    }

    /// Waits (up to `timeout`) until the text of the first element matching `css` satisfies
    /// `wanted` (described by `what`); returns that text. Elements replaced while it looks (a
    /// page loading, the script updating it) are looked up again.
    async fn wait_text(
        &self,
        css: &str,
        what: &str,
        timeout: Duration,
        wanted: impl Fn(&str) -> bool,
    ) -> String {
        let mut last = None;
        self.until(timeout, POLL, async || {
            if let Some(element) = self.all(css).await.into_iter().next()
                && let Ok(text) = element.text().await
            {
                if wanted(&text) {
                    return Ok(text);
                }
                last = Some(text);
            }
            Err(format!(
                "waited {timeout:?} for the text of `{css}` to be {what}; it was {last:?}"
            ))
        })
        .await
    }

    /// Waits (up to `timeout`) until the first element matching `css` has `attribute` with a
    /// value satisfying `wanted` (described by `what`); returns the value.
    async fn wait_attr(
        &self,
        css: &str,
        attribute: &str,
        what: &str,
        timeout: Duration,
        wanted: impl Fn(&str) -> bool,
    ) -> String {
        let mut last = None;
        self.until(timeout, POLL, async || {
            if let Some(element) = self.all(css).await.into_iter().next()
                && let Ok(value) = element.attr(attribute).await
            {
                if let Some(value) = &value
                    && wanted(value)
                {
                    return Ok(value.clone());
                }
                last = Some(value);
            }
            Err(format!(
                "waited {timeout:?} for `{css}`'s {attribute} to be {what}; it was {last:?}"
            ))
        })
        .await
    }

    /// Waits (up to `timeout`) until `count(number of elements matching css)` holds.
    async fn wait_count(
        &self,
        css: &str,
        what: &str,
        timeout: Duration,
        wanted: impl Fn(usize) -> bool,
    ) -> Vec<Element> {
        self.until(timeout, POLL, async || {
            let found = self.all(css).await;
            if wanted(found.len()) {
                return Ok(found);
            }
            Err(format!(
                "waited {timeout:?} for {what} `{css}`; there were {}",
                found.len()
            ))
        })
        .await
    }

    /// Reloads the page until (up to `timeout`) the number of elements matching `css` satisfies
    /// `wanted` (for what the page shows only once something happened elsewhere, such as an
    /// e-mail sent or a catalogue read again); returns them.
    async fn wait_reloading(
        &self,
        css: &str,
        what: &str,
        timeout: Duration,
        wanted: impl Fn(usize) -> bool,
    ) -> Vec<Element> {
        let mut first = true;
        self.until(timeout, Duration::from_secs(1), async || {
            if !std::mem::take(&mut first) {
                self.reload().await;
            }
            let found = self.all(css).await;
            if wanted(found.len()) {
                return Ok(found);
            }
            Err(format!(
                "reloaded the page for {timeout:?} waiting for {what} `{css}`; there were {}",
                found.len()
            ))
        })
        .await
    }

    /// The text of the element matching `css` (waiting for it; looking it up again if the page
    /// replaced it meanwhile).
    async fn text(&self, css: &str) -> String {
        let deadline = Instant::now() + PAGE;
        loop {
            let element = self.find(css).await;
            match element.text().await {
                Ok(text) => return text,
                Err(error) if error.is_stale_element_reference() && Instant::now() < deadline => {}
                Err(error) => {
                    self.fail(&format!("reading the text of `{css}`: {error}"))
                        .await;
                }
            }
        }
    }

    /// The text of `#content`, the page's main part.
    async fn content(&self) -> String {
        self.text("main#content").await
    }

    /// Leaves a mark in the page shown, for [`Browser::wait_new_page`].
    async fn mark_page(&self) {
        self.script("window.__storefrontE2eOldPage = true; return null;")
            .await;
    }

    /// Waits until the page marked by [`Browser::mark_page`] has been replaced by another.
    async fn wait_new_page(&self) {
        self.until(PAGE, POLL, async || {
            let old = self
                .client
                .execute("return window.__storefrontE2eOldPage === true;", Vec::new())
                .await;
            // An error: the page is being replaced right now.
            if matches!(old, Ok(Value::Bool(false))) {
                return Ok(());
            }
            Err(format!("waited {PAGE:?} for another page to load"))
        })
        .await;
    }

    /// Waits until the page's path and query hold `part`; returns them.
    async fn wait_path(&self, part: &str) -> String {
        self.until(PAGE, POLL, async || {
            let path = self.path().await;
            if path.contains(part) {
                return Ok(path);
            }
            Err(format!(
                "waited {PAGE:?} for a page whose address holds {part}; still on {path}"
            ))
        })
        .await
    }

    /// Clicks the element matching `css` (waiting for it first; looking it up again if the page
    /// replaced it meanwhile, as an order's page does once the order is settled).
    async fn click(&self, css: &str) {
        let deadline = Instant::now() + PAGE;
        loop {
            let element = self.find(css).await;
            match element.click().await {
                Ok(()) => return,
                Err(error) if error.is_stale_element_reference() && Instant::now() < deadline => {}
                Err(error) => self.fail(&format!("clicking `{css}`: {error}")).await,
            }
        }
    }

    /// Types `value` into the field `name` of the form `form` (after clearing it), or chooses
    /// the option whose value (else label) is `value` when the field is a `select`.
    async fn fill(&self, form: &str, name: &str, value: &str) {
        let css = format!("{form} [name=\"{name}\"]");
        let field = self.find(&css).await;
        // A person finds the field by what it says next to it.
        let labelled = self
            .client
            .execute(
                "const field = arguments[0];
                 return [...(field.labels || [])].some(label => label.innerText.trim() !== '')
                     || (field.getAttribute('aria-label') || '').trim() !== ''
                     || !!field.getAttribute('aria-labelledby');",
                vec![json!(field)],
            )
            .await;
        if labelled.as_ref().ok() != Some(&json!(true)) {
            self.fail(&format!(
                "`{css}` has no label (nor aria-label): {labelled:?}"
            ))
            .await;
        }
        let tag = field.tag_name().await.unwrap_or_default();
        let done = if tag.eq_ignore_ascii_case("select") {
            match field.select_by_value(value).await {
                Ok(()) => Ok(()),
                Err(_) => field.select_by_label(value).await,
            }
        } else {
            match field.clear().await {
                Ok(()) => field.send_keys(value).await,
                Err(error) => Err(error),
            }
        };
        if let Err(error) = done {
            self.fail(&format!("typing {value:?} into `{css}`: {error}"))
                .await;
        }
    }

    /// Presses the submit button of the form `form`.
    async fn submit(&self, form: &str) {
        self.click(&format!(
            "{form} button[type=submit], {form} input[type=submit], {form} button:not([type])"
        ))
        .await;
    }

    /// Accepts a confirmation dialog if the page opened one (a `confirm()` before cancelling).
    async fn accept_dialog(&self) {
        let _ = self.client.accept_alert().await;
    }

    /// The number of items in the header's cart.
    async fn wait_cart_count(&self, count: u32) {
        self.wait_text("#nav-cart #cart-count", &format!("{count}"), PAGE, |text| {
            text.trim() == count.to_string()
        })
        .await;
    }

    /// The SKUs of the products listed, in order.
    async fn skus(&self) -> Vec<String> {
        let mut skus = Vec::new();
        for product in self.all("article.product[data-sku]").await {
            if let Ok(Some(sku)) = product.attr("data-sku").await {
                skus.push(sku);
            }
        }
        skus
    }

    /// Waits until the catalogue lists products, all of them satisfying `wanted`; returns
    /// their SKUs.
    async fn wait_listing(&self, what: &str, wanted: impl Fn(&[String]) -> bool) -> Vec<String> {
        self.until(PAGE, POLL, async || {
            let skus = self.skus().await;
            if !skus.is_empty() && wanted(&skus) {
                return Ok(skus);
            }
            Err(format!(
                "waited {PAGE:?} for the catalogue to list {what}; it listed {skus:?}"
            ))
        })
        .await
    }

    // ------------------------------------------------------------------ what a person does ---

    /// On a product's page, adds `quantity` to the cart (the header's count goes from `before`
    /// to `before + quantity`).
    async fn add_to_cart_from_product_page(&self, quantity: u32, before: u32) {
        self.find("form#add-to-cart").await;
        self.fill("form#add-to-cart", "quantity", &quantity.to_string())
            .await;
        self.submit("form#add-to-cart").await;
        self.wait_cart_count(before + quantity).await;
    }

    /// Opens the page of `sku` from the catalogue (searching for `words`, as a person would for
    /// its name) and adds `quantity`.
    async fn buy(&self, sku: &str, words: &str, quantity: u32, before: u32) {
        self.visit("/").await;
        self.fill("form#search", "q", words).await;
        self.submit("form#search").await;
        self.wait_listing(sku, |skus| skus.iter().any(|found| found == sku))
            .await;
        self.click(&format!(
            "article.product[data-sku=\"{sku}\"] a.product-link"
        ))
        .await;
        self.wait_path(&format!("/products/{sku}")).await;
        self.add_to_cart_from_product_page(quantity, before).await;
    }

    /// Registers a new customer from the header's link; returns the e-mail. Signed in after.
    async fn register(&self, who: &str) -> String {
        let email = email(who);
        self.click("a#nav-register").await;
        self.fill_registration(&email, who).await;
        email
    }

    /// Fills and sends `form#register`, then waits to be signed in as `email`.
    async fn fill_registration(&self, email: &str, name: &str) {
        self.find("form#register").await;
        self.fill("form#register", "email", email).await;
        self.fill("form#register", "display_name", name).await;
        self.fill("form#register", "password", PASSWORD).await;
        self.submit("form#register").await;
        self.wait_text(
            "span#nav-user",
            &format!("the e-mail {email}"),
            PAGE,
            |text| text.contains(email),
        )
        .await;
    }

    /// Signs in from the header's link.
    async fn sign_in(&self, email: &str, password: &str) {
        self.click("a#nav-login").await;
        self.find("form#login").await;
        self.fill("form#login", "email", email).await;
        self.fill("form#login", "password", password).await;
        self.submit("form#login").await;
    }

    /// Adds a card from the header's "cards" link (exp. 12/next year, CVC 123); waits for it in
    /// the list of saved cards.
    async fn add_card(&self, number: &str) {
        self.click("a#nav-cards").await;
        self.wait_path("/account/cards").await;
        self.click("#content a[href$=\"/account/cards/new\"]").await;
        self.find("form#add-card").await;
        let next_year = (chrono::Utc::now().date_naive().year_ce().1 + 1).to_string();
        self.fill("form#add-card", "card_number", number).await;
        self.fill("form#add-card", "exp_month", "12").await;
        self.fill("form#add-card", "exp_year", &next_year).await;
        self.fill("form#add-card", "cvc", "123").await;
        self.submit("form#add-card").await;
        let last4: String = number
            .chars()
            .filter(char::is_ascii_digit)
            .skip(12)
            .collect();
        self.wait_text("li.card", &format!("a card ending {last4}"), PAGE, |text| {
            text.contains(&last4)
        })
        .await;
    }

    /// Goes to the cart from the header and places the order with the first saved card; waits
    /// for the order's page and returns the order's id (from its URL).
    async fn place_order(&self) -> String {
        self.click("a#nav-cart").await;
        self.find("form#checkout").await;
        let method = self
            .find("form#checkout select[name=payment_method_id]")
            .await;
        method
            .select_by_index(0)
            .await
            .expect("choosing the first saved card");
        self.click("button#place-order").await;
        self.order_page().await
    }

    /// Waits for an order's page; returns the order's id.
    async fn order_page(&self) -> String {
        self.find("#order-status").await;
        let path = self.wait_path("/orders/").await;
        path.trim_start_matches("/orders/")
            .split(['/', '?'])
            .next()
            .unwrap_or_default()
            .to_owned()
    }

    /// Waits (up to [`SAGA`]) for the order's page to show `status`. If the page was following
    /// the order (`data-live`) when it was opened, its script must have set `status` on
    /// `#order-status` itself, without the page reloading: an observer left in the page records
    /// what the script sets, in the tab's `sessionStorage`, which outlives the reload the page
    /// may do once the order is settled (to show the refund, the reason, the cancel button).
    async fn wait_status_live(&self, status: &str) {
        let watched = self
            .script(
                "const key = 'storefront-e2e-live-statuses';
                 sessionStorage.setItem(key, '[]');
                 const element = document.getElementById('order-status');
                 if (!element || element.dataset.live !== 'true') return 'settled';
                 new MutationObserver(() => {
                     const seen = JSON.parse(sessionStorage.getItem(key) || '[]');
                     seen.push(element.dataset.status);
                     sessionStorage.setItem(key, JSON.stringify(seen));
                 }).observe(element, {attributes: true, attributeFilter: ['data-status']});
                 return 'live';",
            )
            .await;
        self.wait_attr("#order-status", "data-status", status, SAGA, |value| {
            value == status
        })
        .await;
        eprintln!("the order's page was {watched} when it was opened; waiting for {status}");
        if watched == json!("live") {
            let seen = self
                .script(
                    "return JSON.parse(\
                     sessionStorage.getItem('storefront-e2e-live-statuses') || '[]');",
                )
                .await;
            let live = seen
                .as_array()
                .is_some_and(|seen| seen.iter().any(|seen| seen == status));
            if !live {
                self.fail(&format!(
                    "the order's page was following the order, but reached {status} without its \
                     script setting it on #order-status (it saw {seen}): reloaded, not live"
                ))
                .await;
            }
        }
    }
}

/// A platform of the test's own and a browser on its storefront.
async fn shop(test: &'static str) -> (Platform, platform_host::Client, Browser) {
    let (platform, gateway) = own_platform(|_| {}).await;
    let browser = Browser::open(&platform, test).await;
    (platform, gateway, browser)
}

/// A new customer's address: `{who}.{8 hex digits}@example.com` (short, for the screenshots;
/// each test's platform has its own users anyway).
fn email(who: &str) -> String {
    let unique = uuid::Uuid::new_v4().simple().to_string();
    format!("{}.{}@example.com", who.to_lowercase(), &unique[..8])
}

/// The amount in a price's words, in cents: "€149.00" -> 14900.
fn cents(text: &str) -> i64 {
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("no amount in {text:?}"))
}

/// The demo product the first journey buys two of: €149.00, 28 in stock.
const DAC: (&str, &str, i64, &str) = (
    "AUD-DAC-AMP",
    "Portable DAC and headphone amp",
    14_900,
    "28",
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_browses_registers_adds_a_card_checks_out_and_cancels_for_a_refund() {
    let (_platform, _gateway, browser) =
        shop("a_customer_browses_registers_adds_a_card_checks_out_and_cancels_for_a_refund").await;
    browse_the_catalogue(&browser).await;
    put_two_in_the_cart(&browser).await;
    register_from_the_cart(&browser).await;
    browser.add_card(GOOD_CARD).await;
    let order = check_out(&browser).await;
    cancel_for_a_refund(&browser).await;
    find_it_in_the_history_and_the_mail(&browser, &order).await;
}

/// The catalogue, its paging, search, sorting and categories, as far as the product to buy.
async fn browse_the_catalogue(browser: &Browser) {
    // The demo products, each with its name, price, stock and a link.
    browser.visit("/").await;
    let first_page = browser
        .wait_listing("the demo catalogue", |skus| skus.len() >= 6)
        .await;
    let incomplete = browser
        .script(
            "return [...document.querySelectorAll('article.product[data-sku]')]
                .filter(p => !['a.product-link', '.product-name', '.product-price', '.product-stock']
                    .every(part => p.querySelector(part)))
                .map(p => p.dataset.sku);",
        )
        .await;
    assert_eq!(
        incomplete,
        json!([]),
        "products without a.product-link, .product-name, .product-price or .product-stock"
    );
    let categories = browser.all("nav#categories a[data-category]").await.len();
    assert!(
        categories >= 5,
        "nav#categories: four demo categories and `all`, found {categories} links"
    );
    browser.find("nav#categories a[data-category=\"\"]").await;
    browser.screenshot("catalogue").await;

    // Paging, when the 24 demo products do not fit on one page.
    if browser.has("a[rel=next]").await {
        browser.click("a[rel=next]").await;
        browser
            .wait_listing("the second page", |skus| {
                skus.iter().all(|sku| !first_page.contains(sku))
            })
            .await;
        browser.find("a[rel=prev]").await;
    }

    // Search: one product, then none.
    browser.fill("form#search", "q", "turntable").await;
    browser.submit("form#search").await;
    browser
        .wait_listing("only the turntable", |skus| skus == ["AUD-TURNTABLE"])
        .await;
    browser
        .fill("form#search", "q", "a lawnmower for the moon")
        .await;
    browser.submit("form#search").await;
    browser.find("p#no-results").await;
    assert!(
        browser.skus().await.is_empty(),
        "no product listed with p#no-results"
    );

    // Sorted by price, the most expensive first.
    browser.fill("form#search", "q", "").await;
    browser.fill("form#search", "sort", "-price").await;
    browser.submit("form#search").await;
    browser.wait_path("sort=-price").await;
    browser.find("article.product").await;
    let mut prices = Vec::new();
    for price in browser.all("article.product .product-price").await {
        prices.push(cents(&price.text().await.expect("a product's price")));
    }
    assert!(
        prices.len() > 1 && prices.windows(2).all(|pair| pair[0] >= pair[1]),
        "sorted by -price, the prices were {prices:?}"
    );

    // A category.
    browser
        .click("nav#categories a[data-category=\"audio\"]")
        .await;
    let audio = browser
        .wait_listing("the audio category only", |skus| {
            skus.iter().all(|sku| sku.starts_with("AUD-"))
        })
        .await;
    assert!(audio.iter().any(|sku| sku == DAC.0), "{audio:?}");
}

/// From the product's page, two in the cart; the cart's quantities changed and changed back.
async fn put_two_in_the_cart(browser: &Browser) {
    browser
        .click(&format!(
            "article.product[data-sku=\"{}\"] a.product-link",
            DAC.0
        ))
        .await;
    browser
        .wait_text("h1#product-name", DAC.1, PAGE, |name| name.trim() == DAC.1)
        .await;
    assert_eq!(cents(&browser.text("#product-price").await), DAC.2);
    browser
        .wait_attr("#product-stock", "data-available", DAC.3, PAGE, |n| {
            n == DAC.3
        })
        .await;
    browser.screenshot("product").await;
    browser.add_to_cart_from_product_page(2, 0).await;

    browser.click("a#nav-cart").await;
    let line = format!("tr.cart-line[data-sku=\"{}\"]", DAC.0);
    browser.find(&line).await;
    browser
        .wait_text("#cart-total", "€298.00", PAGE, |total| {
            cents(total) == 2 * DAC.2
        })
        .await;
    let quantity = format!("{line} form.cart-update input[name=quantity]");
    for (count, total) in [(3, 3 * DAC.2), (2, 2 * DAC.2)] {
        browser
            .fill(
                &format!("{line} form.cart-update"),
                "quantity",
                &count.to_string(),
            )
            .await;
        browser
            .find(&quantity)
            .await
            .send_keys(&char::from(fantoccini::key::Key::Enter).to_string())
            .await
            .expect("pressing Enter in the quantity field");
        browser
            .wait_text("#cart-total", &format!("{total} cents"), PAGE, |text| {
                cents(text) == total
            })
            .await;
        browser.wait_cart_count(count).await;
    }
    assert!(
        !browser.has("form#checkout").await,
        "form#checkout offered to a visitor who is not signed in"
    );
    browser.find("a#checkout-login").await;
    browser.screenshot("cart").await;
}

/// From the cart to signing in, then to registering; the cart is still there.
async fn register_from_the_cart(browser: &Browser) {
    browser.click("a#checkout-login").await;
    browser.find("form#login").await;
    if browser.has("#content a[href*=\"/register\"]").await {
        browser.click("#content a[href*=\"/register\"]").await;
    } else {
        browser.click("a#nav-register").await;
    }
    let email = email("ada");
    browser.fill_registration(&email, "Ada").await;
    browser.wait_cart_count(2).await;
}

/// Places the order with the saved card; it is confirmed, live. Returns its id.
async fn check_out(browser: &Browser) -> String {
    let order = browser.place_order().await;
    browser.wait_status_live("CONFIRMED").await;
    assert_eq!(cents(&browser.text("#order-total").await), 2 * DAC.2);
    browser.find("form#cancel-order").await;
    browser.wait_cart_count(0).await;
    browser.screenshot("order-confirmed").await;
    order
}

/// Cancelled by the customer: refunded.
async fn cancel_for_a_refund(browser: &Browser) {
    browser.submit("form#cancel-order").await;
    browser.accept_dialog().await;
    browser
        .wait_count("form#cancel-order", "no more", PAGE, |count| count == 0)
        .await;
    browser.wait_status_live("CANCELLED").await;
    let refund = browser.find("#order-refund").await;
    assert!(
        refund.is_displayed().await.unwrap_or(false),
        "#order-refund is on the page but hidden"
    );
    assert!(
        !browser.has("form#cancel-order").await,
        "form#cancel-order still offered for a cancelled order"
    );
    browser.screenshot("order-refunded").await;
}

/// The history lists the order, cancelled; the e-mails about it (and the welcome) are listed.
async fn find_it_in_the_history_and_the_mail(browser: &Browser, order: &str) {
    browser.click("a#nav-orders").await;
    let row = format!("tr.order[data-order-id=\"{order}\"]");
    browser
        .wait_text(
            &format!("{row} .order-status"),
            "cancelled",
            PAGE,
            |status| status.to_lowercase().contains("cancel"),
        )
        .await;
    browser.screenshot("order-history").await;

    // Welcome, confirmed, cancelled.
    browser.click("a#nav-notifications").await;
    browser
        .wait_reloading("li.notification", "three e-mails", SAGA, |count| count >= 3)
        .await;
    let mut subjects = Vec::new();
    for subject in browser.all("li.notification .notification-subject").await {
        subjects.push(subject.text().await.expect("an e-mail's subject"));
    }
    for wanted in ["welcome", "confirmed", "cancelled"] {
        assert!(
            subjects
                .iter()
                .any(|subject| subject.to_lowercase().contains(wanted)),
            "no e-mail about {wanted:?} among {subjects:?}"
        );
    }
    browser.screenshot("notifications").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_card_cancels_the_order_with_the_reason_in_words() {
    let (_platform, _gateway, browser) =
        shop("a_declined_card_cancels_the_order_with_the_reason_in_words").await;
    browser.visit("/").await;
    browser.register("Bob").await;
    browser.add_card(DECLINED_CARD).await;

    // Two lines, one removed.
    browser
        .buy("KIT-ENAMEL-MUG", "enamel camping mug", 1, 0)
        .await;
    browser
        .buy("BOOK-RUST-PROG", "programming in rust", 1, 1)
        .await;
    browser.click("a#nav-cart").await;
    browser
        .wait_count("tr.cart-line", "two lines", PAGE, |count| count == 2)
        .await;
    browser
        .submit("tr.cart-line[data-sku=\"BOOK-RUST-PROG\"] form.cart-remove")
        .await;
    browser
        .wait_count("tr.cart-line", "one line", PAGE, |count| count == 1)
        .await;
    browser
        .find("tr.cart-line[data-sku=\"KIT-ENAMEL-MUG\"]")
        .await;
    browser.wait_cart_count(1).await;

    browser.place_order().await;
    browser.wait_status_live("CANCELLED").await;
    let reason = browser.text("#order-cancellation").await;
    assert!(
        reason.to_lowercase().contains("declined"),
        "#order-cancellation should say the card was declined; it says {reason:?}"
    );
    assert!(
        !browser.has("#order-refund").await,
        "#order-refund shown, but nothing was charged"
    );
    browser.screenshot("order-declined").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_for_more_than_the_stock_is_cancelled_as_out_of_stock() {
    let (_platform, gateway, browser) =
        shop("an_order_for_more_than_the_stock_is_cancelled_as_out_of_stock").await;
    // The last one of a product.
    let admin = gateway
        .sign_in(ADMIN.0, ADMIN.1)
        .await
        .expect("the administrator signs in through the gateway");
    let sku = unique_sku("E2E-LANTERN");
    let created = gateway
        .post(
            "/api/v1/products",
            Some(&admin.token),
            &json!({
                "sku": sku,
                "name": "Brass storm lantern",
                "description": "The last one in the shop.",
                "price": {"minor": 3900, "currency": "EUR"},
                "category": "outdoors",
                "initial_stock": 1,
                "low_stock_threshold": 0
            }),
        )
        .await
        .expect("creating a product with one in stock");
    assert_eq!(
        created.status(),
        reqwest::StatusCode::CREATED,
        "creating {sku}: {}",
        created.text().await.unwrap_or_default()
    );

    browser.visit(&format!("/products/{sku}")).await;
    browser
        .wait_attr("#product-stock", "data-available", "1", PAGE, |n| n == "1")
        .await;
    browser.visit("/").await;
    browser.register("Carol").await;
    browser.add_card(GOOD_CARD).await;
    browser.buy(&sku, "storm lantern", 1, 0).await;

    // Meanwhile, someone else buys it.
    let (other, card) = customer_with_card(&gateway, GOOD_CARD).await;
    let id = gateway
        .order_id(&other, &[(sku.as_str(), 1)], card)
        .await
        .expect("the other customer's order");
    let theirs = gateway
        .finished(&other, id, SAGA)
        .await
        .expect("the other customer's order finishes");
    assert_eq!(theirs["status"], "CONFIRMED", "{theirs}");

    // The cart may refuse it at once; else the order is cancelled, out of stock.
    browser.click("a#nav-cart").await;
    browser.find("tr.cart-line").await;
    let can_order = match browser.all("button#place-order").await.first() {
        Some(button) => button.is_enabled().await.unwrap_or(false),
        None => false,
    };
    let said = if can_order {
        browser.click("button#place-order").await;
        browser.find("#order-status, .flash-error").await;
        if browser.has("#order-status").await {
            browser.wait_status_live("CANCELLED").await;
            browser.text("#order-cancellation").await
        } else {
            browser.text(".flash-error").await
        }
    } else {
        browser.content().await
    };
    browser.screenshot("order-out-of-stock").await;
    assert!(
        said.to_lowercase().contains("stock"),
        "the order (or the cart) should say it is out of stock; it says {said:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_told_and_nothing_is_signed_in() {
    let (_platform, _gateway, browser) =
        shop("a_wrong_password_is_told_and_nothing_is_signed_in").await;
    browser.visit("/").await;
    let email = browser.register("Dave").await;
    browser.click("button#nav-logout").await;
    browser.find("a#nav-login").await;
    assert!(
        !browser.has("span#nav-user").await,
        "still signed in after signing out"
    );

    browser.sign_in(&email, "not my password at all").await;
    let said = browser.text(".flash-error, .field-error").await;
    assert!(
        !said.trim().is_empty(),
        "an empty error for a wrong password"
    );
    browser.find("a#nav-login").await;
    assert!(
        !browser.has("span#nav-user").await,
        "signed in with a wrong password"
    );
    browser.screenshot("sign-in-refused").await;

    // The right one works.
    if !browser.has("form#login").await {
        browser.click("a#nav-login").await;
    }
    browser.fill("form#login", "email", &email).await;
    browser.fill("form#login", "password", PASSWORD).await;
    browser.submit("form#login").await;
    browser
        .wait_text("span#nav-user", &email, PAGE, |text| text.contains(&email))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_double_submitted_checkout_places_one_order() {
    let (_platform, _gateway, browser) = shop("a_double_submitted_checkout_places_one_order").await;
    browser.visit("/").await;
    browser.register("Erin").await;
    browser.add_card(GOOD_CARD).await;
    browser.buy("KIT-CHEF-KNIFE-20", "chef's knife", 1, 0).await;
    browser.click("a#nav-cart").await;
    browser.find("form#checkout").await;
    browser
        .find("form#checkout select[name=payment_method_id]")
        .await
        .select_by_index(0)
        .await
        .expect("choosing the saved card");

    // Two posts of the filled form at once (a double click), then two submits of the form
    // itself (an impatient second click), all with what the form holds.
    browser.mark_page().await;
    let statuses = browser
        .client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             const form = document.getElementById('checkout');
             const post = () => fetch(form.action, {
                 method: 'POST', body: new URLSearchParams(new FormData(form)),
                 redirect: 'manual', credentials: 'same-origin',
             }).then(r => r.type + ' ' + r.status, e => String(e));
             Promise.all([post(), post()]).then(statuses => {
                 form.requestSubmit();
                 form.requestSubmit();
                 done(statuses);
             });",
            Vec::new(),
        )
        .await
        .expect("posting the checkout form twice, then submitting it twice");
    eprintln!("the two posts answered: {statuses}");
    browser.wait_new_page().await;
    browser.find("#order-status, .flash").await;
    if browser.has("#order-status").await {
        browser.wait_status_live("CONFIRMED").await;
    }
    // And the page reloaded.
    browser.reload().await;
    browser.accept_dialog().await;
    browser.find("main#content").await;

    browser.click("a#nav-orders").await;
    let orders = browser
        .wait_count("tr.order[data-order-id]", "an order", PAGE, |count| {
            count >= 1
        })
        .await;
    if orders.len() != 1 {
        browser
            .fail(&format!(
                "one checkout, submitted four times, placed {} orders",
                orders.len()
            ))
            .await;
    }
    let status = browser.text("tr.order .order-status").await;
    assert!(
        status.to_lowercase().contains("confirmed"),
        "the one order: {status:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_adds_a_product_and_restocks_it() {
    let (_platform, _gateway, browser) = shop("the_admin_adds_a_product_and_restocks_it").await;
    browser.visit("/").await;
    assert!(
        !browser.has("a#nav-admin").await,
        "a#nav-admin shown to a visitor"
    );
    browser.sign_in(ADMIN.0, ADMIN.1).await;
    browser
        .wait_text("span#nav-user", ADMIN.0, PAGE, |text| {
            text.contains(ADMIN.0)
        })
        .await;
    browser.click("a#nav-admin").await;

    let sku = unique_sku("E2E-LAMP");
    let form = "form#new-product";
    browser.find(form).await;
    browser.fill(form, "sku", &sku).await;
    browser.fill(form, "name", "Solar garden lamp").await;
    browser
        .fill(form, "description", "Charges by day, glows all night.")
        .await;
    browser.fill(form, "category", "garden").await;
    browser.fill(form, "price", "12.50").await;
    browser.fill(form, "currency", "EUR").await;
    browser.fill(form, "initial_stock", "5").await;
    browser.submit(form).await;
    let row = format!("tr.admin-product[data-sku=\"{sku}\"]");
    browser.find(&row).await;
    browser.screenshot("admin").await;

    // Restocked by 7: 12.
    let restock = format!("{row} form.restock");
    browser.fill(&restock, "quantity", "7").await;
    browser.submit(&restock).await;
    browser
        .wait_text(&row, "showing 12 in stock", PAGE, |text| {
            text.contains("12")
        })
        .await;

    // In the catalogue, in its new category, with the new stock.
    browser.visit("/").await;
    browser
        .wait_reloading(
            "nav#categories a[data-category=\"garden\"]",
            "the new category",
            PAGE,
            |count| count == 1,
        )
        .await;
    browser
        .click("nav#categories a[data-category=\"garden\"]")
        .await;
    let product = format!("article.product[data-sku=\"{sku}\"]");
    browser
        .wait_text(
            &format!("{product} .product-stock"),
            "in stock",
            PAGE,
            |text| {
                let text = text.to_lowercase();
                !text.is_empty() && !text.contains("out of") && !text.contains("sold out")
            },
        )
        .await;
    assert_eq!(
        cents(&browser.text(&format!("{product} .product-price")).await),
        1250
    );
    browser.click(&format!("{product} a.product-link")).await;
    browser
        .wait_attr("#product-stock", "data-available", "12", PAGE, |n| {
            n == "12"
        })
        .await;
    browser
        .wait_text("h1#product-name", "Solar garden lamp", PAGE, |name| {
            name.trim() == "Solar garden lamp"
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_without_its_csrf_token_is_refused_and_the_pages_are_light() {
    const BUDGET: u64 = 300 * 1024;
    let (_platform, _gateway, browser) =
        shop("a_form_without_its_csrf_token_is_refused_and_the_pages_are_light").await;

    // The catalogue, its stylesheet and its script, as the browser fetched them (no cache).
    browser.visit("/").await;
    browser.find("article.product").await;
    let weight = browser
        .script(
            "const size = e => Math.max(e.transferSize || 0, e.encodedBodySize || 0);
             const nav = performance.getEntriesByType('navigation')[0];
             const resources = performance.getEntriesByType('resource')
                 .map(r => ({name: r.name, bytes: size(r)}));
             return {document: size(nav), origin: location.origin, resources};",
        )
        .await;
    let origin = weight["origin"].as_str().unwrap_or_default();
    let resources = weight["resources"].as_array().cloned().unwrap_or_default();
    let mut total = weight["document"].as_u64().unwrap_or_default();
    for resource in &resources {
        let name = resource["name"].as_str().unwrap_or_default();
        assert!(
            name.starts_with(origin),
            "the catalogue loads {name}, from another origin than {origin}"
        );
        total += resource["bytes"].as_u64().unwrap_or_default();
    }
    for asset in ["/static/app.css", "/static/app.js"] {
        assert!(
            resources.iter().any(|resource| resource["name"]
                .as_str()
                .is_some_and(|name| name.contains(asset))),
            "the catalogue does not load {asset}: {weight}"
        );
    }
    eprintln!("the catalogue with its assets: {total} bytes: {weight}");
    assert!(
        total > 0 && total < BUDGET,
        "the catalogue with its assets weighs {total} bytes (budget {BUDGET}): {weight}"
    );

    // A form sent without its token, in the browser (with a session): refused, nothing added.
    browser.visit("/products/KIT-ENAMEL-MUG").await;
    browser.find("form#add-to-cart").await;
    let removed = browser
        .script(
            "const form = document.getElementById('add-to-cart');
             const tokens = [...form.querySelectorAll('input[type=hidden]')]
                 .filter(input => /csrf/i.test(input.name));
             tokens.forEach(input => input.remove());
             return tokens.map(input => input.name);",
        )
        .await;
    assert!(
        removed.as_array().is_some_and(|names| !names.is_empty()),
        "form#add-to-cart has no hidden CSRF field (an input[type=hidden] named like csrf)"
    );
    browser.submit("form#add-to-cart").await;
    let status = browser
        .wait_text("main#content", "a page", PAGE, |_| true)
        .await;
    let code = browser
        .script("return performance.getEntriesByType('navigation')[0].responseStatus;")
        .await;
    assert_eq!(
        code,
        json!(403),
        "POST /cart/add without its CSRF token answered {code}: {status:?}"
    );
    browser.screenshot("csrf-refused").await;
    browser.visit("/").await;
    browser.wait_cart_count(0).await;

    // And without any session: a 403 page, not an error.
    let answer = reqwest::Client::new()
        .post(format!("{}/cart/add", browser.base))
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body("sku=KIT-ENAMEL-MUG&quantity=1")
        .send()
        .await
        .expect("POST /cart/add");
    let answered = answer.status();
    let html = answer
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/html"));
    let body = answer.text().await.unwrap_or_default();
    assert_eq!(
        answered.as_u16(),
        403,
        "POST /cart/add without a session or token: {body}"
    );
    assert!(html, "the refusal is an HTML page: {body}");
    assert!(
        body.contains("id=\"content\""),
        "the refusal is one of the shop's pages: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_fit_a_phone_and_work_from_the_keyboard() {
    let (_platform, _gateway, browser) =
        shop("the_pages_fit_a_phone_and_work_from_the_keyboard").await;

    // A phone's width: no page scrolls sideways.
    browser
        .client
        .set_window_size(390, 844)
        .await
        .expect("a phone-sized window");
    for path in [
        "/",
        "/products/KIT-ENAMEL-MUG",
        "/cart",
        "/login",
        "/register",
    ] {
        browser.visit(path).await;
        browser.find("main#content").await;
        let widths = browser
            .script(
                "return [document.documentElement.scrollWidth, \
                 document.documentElement.clientWidth];",
            )
            .await;
        let (scroll, client) = (widths[0].as_u64(), widths[1].as_u64());
        assert!(
            scroll.is_some() && scroll <= client,
            "{path} is wider than a phone's screen: {widths}"
        );
        if path == "/" {
            browser.screenshot("catalogue-phone").await;
        }
    }

    // The keyboard alone: the first Tab reaches the skip link, which moves focus to the
    // content; Tab goes on to the form's fields in order; Enter submits.
    browser
        .client
        .set_window_size(1280, 1000)
        .await
        .expect("a desktop-sized window");
    browser.visit("/login").await;
    browser.find("form#login").await;
    let browser = &browser;
    let keys = |keys: &'static str| async move {
        browser
            .client
            .active_element()
            .await
            .expect("the focused element")
            .send_keys(keys)
            .await
            .expect("typing");
    };
    let focused = || async move {
        browser
            .script(
                "const e = document.activeElement; \
                 return e.id || e.className || e.tagName;",
            )
            .await
    };
    keys("\u{e004}").await;
    assert_eq!(focused().await, json!("skip"), "the first Tab");
    keys("\u{e007}").await;
    assert_eq!(focused().await, json!("content"), "the skip link's target");
    let mut seen = Vec::new();
    for _ in 0..12 {
        keys("\u{e004}").await;
        let now = focused().await;
        if now == json!("email") {
            break;
        }
        seen.push(now);
    }
    assert_eq!(
        focused().await,
        json!("email"),
        "Tab from the content reaches the e-mail field (after {seen:?})"
    );
    keys("nobody@example.com").await;
    keys("\u{e004}").await;
    assert_eq!(focused().await, json!("password"));
    keys("not the password").await;
    keys("\u{e007}").await;
    browser
        .wait_text(".flash-error", "the refusal", PAGE, |text| {
            text.contains("Wrong e-mail or password")
        })
        .await;
}
