//! The book as a reader sees it: in a real browser, not as HTML text.
//!
//! The other book tests read the Markdown and the HTML the preprocessor writes; none of
//! them would notice a page whose script throws, a chart that draws at zero size, a link
//! to an anchor that a heading's rename removed, a search box that finds nothing because
//! the index was not built, or recorded output a reader cannot read on a dark theme.
//! This test builds the book offline with the `runner` binary (`runner book`), serves
//! `book/book/` over HTTP on 127.0.0.1, and drives headless Chromium over the DevTools
//! protocol (the `headless_chrome` crate) through every page that SUMMARY.md lists:
//!
//! - no JavaScript console error and no uncaught exception on any page;
//! - every link to a local page resolves: the file exists, and so does its `#anchor`;
//! - every inline `<svg>` in a page's content (charts, diagrams) renders with a non-zero
//!   size;
//! - mdBook's search, typed as a reader types it (`s`, then `SyncRep`), lists chapter 2;
//! - recorded output and verified claims keep a WCAG contrast ratio of at least 4.5 on
//!   every mdBook theme, light and dark (light, rust, coal, navy, ayu);
//! - nothing a reader would notice in the layout: no content past the text column, no
//!   table wider than the column (mdBook scrolls it and hides its last columns), no
//!   figure label cut at its SVG's edge;
//! - screenshots for a review, in `target/browser-screenshots/` (CI's artefacts): the
//!   top of every page on the light theme and on navy, every figure of every page in
//!   both (`figures/<page>-<i>-<theme>.png`), a verified check on navy and the search.
//!
//! Every wait is bounded. It needs no Docker, but it needs Chromium, so it is
//! `#[ignore]`d for plain `cargo test` and run by `./course test`, which installs
//! Chromium where it can; without it the test fails and says `apt-get install chromium`.
//! `CHROME=/path/to/chrome` picks another binary.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use headless_chrome::protocol::cdp::Log::LogEntryLevel;
use headless_chrome::protocol::cdp::Page::{CaptureScreenshotFormatOption, Viewport};
use headless_chrome::protocol::cdp::Runtime::ConsoleAPICalledEventTypeOption;
use headless_chrome::protocol::cdp::types::Event;
use headless_chrome::{Browser, LaunchOptions, Tab};
use serde_json::Value;

/// How long one page may take to load, and the search to answer.
const PAGE_LOAD: Duration = Duration::from_secs(20);
const SEARCH: Duration = Duration::from_secs(15);
/// What the search test types, and the page it must find.
const SEARCH_TERM: &str = "SyncRep";
const SEARCH_EXPECTS: &str = "chapter-2-synchronous-replication.html";
/// The page whose recorded output and checks are measured for contrast.
const CONTRAST_PAGE: &str = "chapter-2-synchronous-replication.html";
/// mdBook's themes, all measured; the dark screenshot is taken on navy.
const THEMES: [&str; 5] = ["light", "rust", "coal", "navy", "ayu"];
const DARK_SCREENSHOT: &str = "navy";
/// WCAG 2 AA for normal text.
const MIN_CONTRAST: f64 = 4.5;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The pages SUMMARY.md lists, as their .html names, in order.
fn summary_pages(root: &Path) -> Vec<String> {
    let summary = std::fs::read_to_string(root.join("book/src/SUMMARY.md")).unwrap();
    let mut pages = Vec::new();
    for line in summary.lines() {
        // `[Title](file.md)` or `- [Title](file.md)`.
        let Some(start) = line.find("](") else {
            continue;
        };
        let rest = &line[start + 2..];
        let Some(end) = rest.find(')') else { continue };
        let target = &rest[..end];
        if let Some(stem) = target.strip_suffix(".md") {
            pages.push(format!("{stem}.html"));
        }
    }
    assert!(
        pages.len() >= 3,
        "SUMMARY.md lists only {pages:?}: the parser or the summary is broken"
    );
    pages
}

/// Serves `dir` on 127.0.0.1 (an ephemeral port) from a thread of its own; the
/// server lives as long as the test process.
fn serve(dir: PathBuf) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let app =
                axum::Router::new().fallback_service(tower_http::services::ServeDir::new(dir));
            axum::serve(listener, app).await.unwrap();
        });
    });
    format!("http://{addr}")
}

/// Chromium's binary (`CHROME`, else the first Chrome or Chromium on PATH), or a
/// failure that says how to get it.
fn chromium() -> PathBuf {
    match headless_chrome::browser::default_executable() {
        Ok(path) => path,
        Err(err) => panic!(
            "this test drives a real browser and found none ({err}): apt-get install chromium \
             (./course test installs it when it runs as root), or set CHROME to a Chrome binary"
        ),
    }
}

/// Headless Chromium with a window of a laptop's size.
fn launch(path: PathBuf) -> Browser {
    let options = LaunchOptions::default_builder()
        .path(Some(path.clone()))
        .headless(true)
        // Root (CI) cannot use Chromium's sandbox; the pages are our own.
        .sandbox(false)
        .window_size(Some((1280, 900)))
        .idle_browser_timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    Browser::new(options)
        .unwrap_or_else(|err| panic!("starting {} failed: {err:#}", path.display()))
}

/// What the page's scripts reported: console errors and uncaught exceptions.
#[derive(Default)]
struct Console {
    errors: Mutex<Vec<String>>,
}

impl Console {
    fn listen(self: &Arc<Self>, tab: &Tab) {
        tab.enable_runtime().unwrap();
        tab.enable_log().unwrap();
        let console = Arc::clone(self);
        tab.add_event_listener(Arc::new(move |event: &Event| {
            let error = match event {
                Event::RuntimeConsoleAPICalled(e)
                    if matches!(e.params.Type, ConsoleAPICalledEventTypeOption::Error) =>
                {
                    let args: Vec<String> = e
                        .params
                        .args
                        .iter()
                        .map(|a| match &a.value {
                            Some(Value::String(s)) => s.clone(),
                            Some(v) => v.to_string(),
                            None => a.description.clone().unwrap_or_default(),
                        })
                        .collect();
                    Some(format!("console.error: {}", args.join(" ")))
                }
                Event::RuntimeExceptionThrown(e) => {
                    let d = &e.params.exception_details;
                    let what = d
                        .exception
                        .as_ref()
                        .and_then(|x| x.description.clone())
                        .unwrap_or_else(|| d.text.clone());
                    Some(format!(
                        "uncaught exception at {}:{}: {what}",
                        d.url.clone().unwrap_or_default(),
                        d.line_number + 1
                    ))
                }
                Event::LogEntryAdded(e) if matches!(e.params.entry.level, LogEntryLevel::Error) => {
                    Some(format!(
                        "browser log error: {} ({})",
                        e.params.entry.text,
                        e.params.entry.url.clone().unwrap_or_default()
                    ))
                }
                _ => None,
            };
            if let Some(error) = error {
                console.errors.lock().unwrap().push(error);
            }
        }))
        .unwrap();
    }

    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.errors.lock().unwrap())
    }
}

/// Evaluates `js` (an expression; a promise is awaited) and returns its value as JSON.
fn eval(tab: &Tab, js: &str) -> Value {
    // Serialised in the page: headless_chrome asks for values by reference.
    let wrapped = format!("(async () => JSON.stringify(await ({js})) ?? 'null')()");
    let result = tab
        .evaluate(&wrapped, true)
        .unwrap_or_else(|err| panic!("evaluating {js}: {err:#}"));
    match result.value {
        Some(Value::String(json)) => serde_json::from_str(&json).unwrap(),
        other => panic!(
            "evaluating {js} returned {other:?} ({:?})",
            result.description
        ),
    }
}

/// Polls `js` until it is true; false when `within` passed first.
fn wait_until(tab: &Tab, js: &str, within: Duration) -> bool {
    let started = Instant::now();
    loop {
        if eval(tab, js) == Value::Bool(true) {
            return true;
        }
        if started.elapsed() > within {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Opens `url` and waits (bounded) until it has loaded, fonts and all.
fn open(tab: &Tab, url: &str) {
    tab.navigate_to(url)
        .and_then(|t| t.wait_until_navigated())
        .unwrap_or_else(|err| panic!("opening {url}: {err:#}"));
    assert!(
        wait_until(
            tab,
            "document.readyState === 'complete' && document.fonts.status === 'loaded'",
            PAGE_LOAD
        ),
        "{url} did not finish loading within {PAGE_LOAD:?}"
    );
}

/// Opens `url` and returns what its scripts reported while it loaded. Chromium aborts
/// even a loopback request when the machine's network changes (Docker creating a
/// network, say: `ERR_NETWORK_CHANGED`); such a load says nothing about the book, so it
/// is repeated, twice at most.
fn visit(tab: &Tab, console: &Console, url: &str) -> Vec<String> {
    let mut attempts = 0;
    loop {
        attempts += 1;
        console.take();
        open(tab, url);
        // Late errors (a script run on load's last tick) are caught too.
        std::thread::sleep(Duration::from_millis(200));
        let errors = console.take();
        if attempts < 3 && errors.iter().any(|e| e.contains("ERR_NETWORK_CHANGED")) {
            eprintln!("browser: {url}: the network changed while it loaded; loading it again");
            continue;
        }
        return errors;
    }
}

/// The page's links (resolved by the browser), the ids in it, and its content's
/// top-level inline SVGs with their rendered size.
const SURVEY: &str = r#"(() => {
  // A chart inside a closed <details> is drawn when opened: open them to measure it.
  document.querySelectorAll('main details').forEach(d => d.open = true);
  const links = [...document.querySelectorAll('a[href]')]
    .map(a => ({ text: a.textContent.trim().slice(0, 60), href: a.href }));
  const ids = [...document.querySelectorAll('[id]')].map(e => e.id);
  const svgs = [...document.querySelectorAll('#mdbook-content main svg')]
    .filter(s => !s.parentElement.closest('svg'))
    .map(s => {
      const r = s.getBoundingClientRect();
      const box = s.closest('[class]');
      return { width: r.width, height: r.height, shapes: s.querySelectorAll('*').length,
               container: box ? box.className : '' };
    });
  // What the reader reads in the sidebar, and in each "Before you start" box.
  const sidebar = [...document.querySelectorAll('#mdbook-sidebar a, nav.sidebar a')]
    .map(a => a.textContent.replace(/\s+/g, ' ').trim()).filter(t => t);
  const preconditions = [...document.querySelectorAll('.lab-precondition')].map(d => d.textContent);
  // Layout a reader would notice. What it is: a tag and the start of its text.
  const main = document.querySelector('#mdbook-content main');
  const what = (e) => e.tagName.toLowerCase() + ' "' +
    (e.textContent || '').replace(/\s+/g, ' ').trim().slice(0, 50) + '"';
  const column = main.getBoundingClientRect();
  const scrolls = (e) => ['auto', 'scroll', 'hidden'].includes(getComputedStyle(e).overflowX);
  const contained = (e) => {
    for (let a = e.parentElement; a && a !== main; a = a.parentElement) if (scrolls(a)) return true;
    return false;
  };
  // Content that spills out of the text column (and under the page's edge).
  const spills = [...main.querySelectorAll('*')]
    .filter(e => e.getBoundingClientRect().right > column.right + 1 && !contained(e))
    .filter(e => !e.parentElement.closest('svg'))
    .map(e => ({ what: what(e), over: Math.round(e.getBoundingClientRect().right - column.right) }));
  // Tables wider than the column: mdBook scrolls them, hiding their last columns. Not a
  // pixel of slack: a table 1 px too wide already shows a scroll bar (chapter 4's k6
  // table did, at 751 px in a 750 px column).
  const wide_tables = [...main.querySelectorAll('.table-wrapper')]
    .filter(w => w.scrollWidth > w.clientWidth)
    .map(w => ({ what: what(w.querySelector('tr') || w), need: w.scrollWidth, have: w.clientWidth }));
  // Recorded output wider than the column scrolls too; counted, as code may.
  const wide_code = [...main.querySelectorAll('pre')]
    .filter(p => [p, ...p.children].some(e => e.scrollWidth > e.clientWidth + 1)).length;
  // A label an SVG clips: its text's box reaches past the drawing's own box.
  const cut_labels = [];
  main.querySelectorAll('svg').forEach(svg => {
    if (svg.parentElement.closest('svg')) return;
    const r = svg.getBoundingClientRect();
    svg.querySelectorAll('text').forEach(t => {
      const b = t.getBoundingClientRect();
      if (b.width === 0) return;
      if (b.left < r.left - 0.5 || b.right > r.right + 0.5 || b.top < r.top - 0.5 || b.bottom > r.bottom + 0.5)
        cut_labels.push(what(t) + ' in .' + (svg.closest('[class]') || svg).getAttribute('class'));
    });
  });
  return { links, ids, svgs, sidebar, preconditions, spills, wide_tables, wide_code, cut_labels };
})()"#;

/// Marks what the review screenshots one by one (`data-shot="0"`, `"1"`, …): every
/// top-level figure (inline SVG: charts, diagrams) of the content. Returns how many it
/// marked; the order is the page's, so both themes name them alike.
const MARK_SHOTS: &str = r#"(() => {
  document.querySelectorAll('main details').forEach(d => d.open = true);
  const main = document.querySelector('#mdbook-content main');
  const marked = [...main.querySelectorAll('svg')].filter(s => !s.parentElement.closest('svg'));
  marked.forEach((e, i) => e.setAttribute('data-shot', String(i)));
  return marked.length;
})()"#;

/// Screenshots of the elements [`MARK_SHOTS`] marked, as `<dir>/<stem>-<i>-<theme>.png`.
fn element_shots(tab: &Tab, dir: &Path, stem: &str, theme: &str) -> usize {
    let marked = eval(tab, MARK_SHOTS).as_u64().unwrap_or(0) as usize;
    for i in 0..marked {
        // The element's box on the page (the clip is in page coordinates; headless_chrome's
        // own element screenshot clips in the viewport's, blank once the page scrolled).
        let rect = eval(
            tab,
            &format!(
                "(() => {{ const e = document.querySelector(\"[data-shot='{i}']\"); \
                 e.scrollIntoView({{ block: 'center' }}); const r = e.getBoundingClientRect(); \
                 return {{ x: r.left + window.scrollX, y: r.top + window.scrollY, \
                 width: r.width, height: r.height }}; }})()"
            ),
        );
        let clip = Viewport {
            x: rect["x"].as_f64().unwrap(),
            y: rect["y"].as_f64().unwrap(),
            width: rect["width"].as_f64().unwrap().max(1.0),
            height: rect["height"].as_f64().unwrap().max(1.0),
            scale: 1.0,
        };
        let png = tab
            .capture_screenshot(CaptureScreenshotFormatOption::Png, None, Some(clip), true)
            .unwrap_or_else(|err| panic!("{stem}: screenshot of figure {i}: {err:#}"));
        std::fs::write(dir.join(format!("{stem}-{i}-{theme}.png")), png).unwrap();
    }
    marked
}

/// Sets the theme as mdBook's theme picker does (localStorage) and reloads; fails when
/// the page did not take it. Returns what the page's scripts reported.
fn set_theme(tab: &Tab, console: &Console, url: &str, theme: &str) -> Vec<String> {
    eval(
        tab,
        &format!("localStorage.setItem('mdbook-theme', '{theme}')"),
    );
    let errors = visit(tab, console, url);
    assert!(
        wait_until(
            tab,
            &format!("document.documentElement.classList.contains('{theme}')"),
            PAGE_LOAD
        ),
        "{url}: the {theme} theme was not applied"
    );
    errors
}

/// The WCAG contrast of the text against its effective background (translucent
/// backgrounds composited up the tree) of the recorded output and the checks' styles.
/// A failed check and an unexpected output rarely appear in the book: probes with
/// their classes are added to the page to measure them.
const CONTRAST: &str = r#"(() => {
  const main = document.querySelector('#mdbook-content main');
  const probe = document.createElement('div');
  probe.innerHTML = '<div class="lab-check failed"><span class="lab-mark">✘ did not hold:</span> ' +
    'probe <span class="lab-figure">(<code>x</code> = <strong>1</strong>)</span></div>' +
    '<div class="lab-output lab-unexpected"><pre><code class="language-text">probe</code></pre>' +
    '<div class="lab-meta">probe</div></div>';
  main.appendChild(probe);
  const parse = (s) => {
    const m = s.match(/^rgba?\(([^)]*)\)$/);
    if (!m) throw new Error('unparsed colour ' + s);
    const p = m[1].split(/[\s,\/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const over = (top, bottom) => [0, 1, 2].map(i => top[i] * top[3] + bottom[i] * (1 - top[3])).concat([1]);
  const background = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) layers.push(parse(getComputedStyle(e).backgroundColor));
    let bg = [255, 255, 255, 1];
    for (const layer of layers.reverse()) bg = over(layer, bg);
    return bg;
  };
  const lum = (c) => {
    const [r, g, b] = c.slice(0, 3).map(v => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const hex = (c) => '#' + c.slice(0, 3).map(v => Math.round(v).toString(16).padStart(2, '0')).join('');
  const targets = {
    'recorded output': '.lab-output:not(.lab-unexpected) pre > code',
    'recorded output meta': '.lab-output:not(.lab-unexpected) .lab-meta',
    'psql location': '.lab-where',
    'unexpected output': '.lab-output.lab-unexpected pre > code',
    'verified check text': '.lab-check.passed',
    'verified check mark': '.lab-check.passed .lab-mark',
    'verified check figure': '.lab-check.passed .lab-figure code',
    'failed check text': '.lab-check.failed',
    'failed check mark': '.lab-check.failed .lab-mark',
    'failed check figure': '.lab-check.failed .lab-figure code',
  };
  const out = {};
  for (const [name, selector] of Object.entries(targets)) {
    const el = main.querySelector(selector);
    if (!el) { out[name] = null; continue; }
    const bg = background(el);
    const fg = over(parse(getComputedStyle(el).color), bg);
    const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
    out[name] = { ratio: (a + 0.05) / (b + 0.05), fg: hex(fg), bg: hex(bg) };
  }
  probe.remove();
  return out;
})()"#;

/// A file the link points to, and its anchor, when it is a page of the book.
fn local_target(base: &str, href: &str) -> Option<(String, Option<String>)> {
    let rest = href.strip_prefix(base)?.trim_start_matches('/');
    let (path, anchor) = match rest.split_once('#') {
        Some((p, a)) => (p, Some(a.to_string())),
        None => (rest, None),
    };
    let path = path.split('?').next().unwrap();
    let path = if path.is_empty() || path.ends_with('/') {
        format!("{path}index.html")
    } else {
        path.to_string()
    };
    path.ends_with(".html").then_some((path, anchor))
}

/// Decodes %XX in an anchor (the browser encodes non-ASCII ids in `a.href`).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(hex) = std::str::from_utf8(&bytes[i + 1..i + 3])
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The ids of a page the test did not open (print.html, say), read from its text.
/// Whether a sidebar entry reads like `7. 6. Automatic failover`.
fn starts_with_two_numbers(entry: &str) -> bool {
    let mut words = entry.split_whitespace();
    let numbered = |w: Option<&str>| {
        w.and_then(|w| w.strip_suffix('.'))
            .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
    };
    numbered(words.next()) && numbered(words.next())
}

#[test]
fn two_numbers_are_told_from_one() {
    assert!(starts_with_two_numbers(
        "7. 6. Automatic failover with Patroni"
    ));
    assert!(!starts_with_two_numbers(
        "6. Automatic failover with Patroni"
    ));
    assert!(!starts_with_two_numbers("12. Failover, repeated"));
    assert!(!starts_with_two_numbers("Introduction"));
}

fn ids_in_file(path: &Path) -> BTreeSet<String> {
    let html = std::fs::read_to_string(path).unwrap_or_default();
    html.split(" id=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .map(|s| s.replace("&amp;", "&").replace("&quot;", "\""))
        .collect()
}

fn screenshot(tab: &Tab, path: &Path) {
    let png = tab
        .capture_screenshot(CaptureScreenshotFormatOption::Png, None, None, true)
        .unwrap();
    std::fs::write(path, png).unwrap();
}

#[test]
#[ignore = "needs Chromium: ./course test runs it"]
fn the_book_works_in_a_browser() {
    let started = Instant::now();
    let root = repo_root();
    // Fail on a missing browser first, with the message that says why.
    let chrome = chromium();

    let built = Command::new(env!("CARGO_BIN_EXE_runner"))
        .arg("book")
        .current_dir(&root)
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "runner book failed:\n{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let out_dir = root.join("book/book");
    let index = std::fs::read_dir(&out_dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|name| name.starts_with("searchindex") && name.ends_with(".js"));
    assert!(
        index.is_some(),
        "book/book has no searchindex*.js: mdbook-driver was built without its `search` feature"
    );

    let browser = launch(chrome);
    eprintln!(
        "browser: book built, browser up ({:.1} s)",
        started.elapsed().as_secs_f64()
    );
    let base = serve(out_dir.clone());
    let shots = root.join("target/browser-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let figure_shots = shots.join("figures");
    let _ = std::fs::remove_dir_all(&figure_shots);
    std::fs::create_dir_all(&figure_shots).unwrap();

    let tab = browser.new_tab().unwrap();
    tab.set_default_timeout(PAGE_LOAD);
    let console = Arc::new(Console::default());
    console.listen(&tab);
    let mut problems: Vec<String> = Vec::new();
    for error in visit(&tab, &console, &format!("{base}/index.html")) {
        problems.push(format!("index.html: {error}"));
    }
    // The pages on the light theme, whatever the machine prefers.
    eval(&tab, "localStorage.setItem('mdbook-theme', 'light')");
    let pages = summary_pages(&root);
    let mut ids: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut links: Vec<(String, String, String)> = Vec::new();
    let mut svg_count = 0;
    for page in &pages {
        let page_started = Instant::now();
        let url = format!("{base}/{page}");
        let errors = visit(&tab, &console, &url);
        let survey = eval(&tab, SURVEY);
        for error in errors {
            problems.push(format!("{page}: {error}"));
        }
        ids.insert(
            page.clone(),
            survey["ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect(),
        );
        for link in survey["links"].as_array().unwrap() {
            links.push((
                page.clone(),
                link["text"].as_str().unwrap().to_string(),
                link["href"].as_str().unwrap().to_string(),
            ));
        }
        let svgs = survey["svgs"].as_array().unwrap();
        for (i, svg) in svgs.iter().enumerate() {
            let (w, h) = (
                svg["width"].as_f64().unwrap(),
                svg["height"].as_f64().unwrap(),
            );
            if w < 1.0 || h < 1.0 || svg["shapes"].as_u64().unwrap() == 0 {
                problems.push(format!(
                    "{page}: inline svg #{} (in .{}) renders at {w}×{h} with {} elements",
                    i + 1,
                    svg["container"].as_str().unwrap(),
                    svg["shapes"]
                ));
            }
        }
        svg_count += svgs.len();
        // One chapter number: mdBook's own label and the title's number must not both
        // show ("7. 6. Automatic failover").
        for entry in survey["sidebar"].as_array().unwrap() {
            let entry = entry.as_str().unwrap();
            if starts_with_two_numbers(entry) {
                problems.push(format!(
                    "{page}: sidebar entry {entry:?} carries two numbers"
                ));
            }
        }
        // A precondition is Markdown: its inline code renders as code, not as backticks.
        for text in survey["preconditions"].as_array().unwrap() {
            let text = text.as_str().unwrap();
            if text.contains('`') {
                problems.push(format!(
                    "{page}: a \"Before you start\" box shows Markdown literally: {:?}",
                    text.trim()
                ));
            }
        }
        // What a reader would notice on the page: content out of the column, a table
        // that hides columns behind a scrollbar, a chart's label cut at its edge.
        for spill in survey["spills"].as_array().unwrap() {
            problems.push(format!(
                "{page}: {} reaches {} px past the text column",
                spill["what"].as_str().unwrap(),
                spill["over"]
            ));
        }
        for table in survey["wide_tables"].as_array().unwrap() {
            problems.push(format!(
                "{page}: table {} needs {} px, the column has {}",
                table["what"].as_str().unwrap(),
                table["need"],
                table["have"]
            ));
        }
        for label in survey["cut_labels"].as_array().unwrap() {
            problems.push(format!(
                "{page}: label {} is cut at its figure's edge",
                label.as_str().unwrap()
            ));
        }
        screenshot(&tab, &shots.join(page.replace(".html", ".png")));
        let stem = page.trim_end_matches(".html");
        let figures = element_shots(&tab, &figure_shots, stem, "light");
        eprintln!(
            "browser: {page}: {} links, {} inline svgs, {} figures shot, {} code blocks scroll ({:.1} s)",
            survey["links"].as_array().unwrap().len(),
            svgs.len(),
            figures,
            survey["wide_code"],
            page_started.elapsed().as_secs_f64()
        );
    }

    // Every page again on a dark theme: its top, and each figure, for the review.
    eval(
        &tab,
        &format!("localStorage.setItem('mdbook-theme', '{DARK_SCREENSHOT}')"),
    );
    for page in &pages {
        let url = format!("{base}/{page}");
        for error in set_theme(&tab, &console, &url, DARK_SCREENSHOT) {
            problems.push(format!("{page} ({DARK_SCREENSHOT}): {error}"));
        }
        let stem = page.trim_end_matches(".html");
        screenshot(&tab, &shots.join(format!("{stem}-{DARK_SCREENSHOT}.png")));
        element_shots(&tab, &figure_shots, stem, DARK_SCREENSHOT);
    }
    eval(&tab, "localStorage.setItem('mdbook-theme', 'light')");

    // Every local link: the file exists, and its anchor is an id in it.
    let mut checked = BTreeSet::new();
    for (page, text, href) in &links {
        let Some((path, anchor)) = local_target(&base, href) else {
            continue;
        };
        if !checked.insert((path.clone(), anchor.clone())) {
            continue;
        }
        if !out_dir.join(&path).is_file() {
            problems.push(format!("{page}: link \"{text}\" → {path}: no such page"));
            continue;
        }
        let Some(anchor) = anchor.filter(|a| !a.is_empty()) else {
            continue;
        };
        let anchor = percent_decode(&anchor);
        let found = match ids.get(&path) {
            Some(ids) => ids.contains(&anchor),
            None => ids_in_file(&out_dir.join(&path)).contains(&anchor),
        };
        if !found {
            problems.push(format!(
                "{page}: link \"{text}\" → {path}#{anchor}: no such anchor in {path}"
            ));
        }
    }
    eprintln!(
        "browser: {} pages, {} links ({} distinct local targets checked), {svg_count} inline svgs ({:.1} s)",
        pages.len(),
        links.len(),
        checked.len(),
        started.elapsed().as_secs_f64()
    );

    // Search, as a reader does it: `s` opens the bar, then type.
    let url = format!("{base}/index.html");
    for error in visit(&tab, &console, &url) {
        problems.push(format!("index.html: {error}"));
    }
    tab.press_key("s").unwrap();
    assert!(
        wait_until(
            &tab,
            "document.activeElement && document.activeElement.id === 'mdbook-searchbar'",
            SEARCH
        ),
        "pressing `s` did not open and focus the search bar (#mdbook-searchbar)"
    );
    tab.type_str(SEARCH_TERM).unwrap();
    let found = wait_until(
        &tab,
        &format!(
            "[...document.querySelectorAll('#mdbook-searchresults a')]\
             .some(a => a.getAttribute('href').split(/[?#]/)[0].endsWith('{SEARCH_EXPECTS}'))"
        ),
        SEARCH,
    );
    let results = eval(
        &tab,
        "[...document.querySelectorAll('#mdbook-searchresults a')].map(a => a.getAttribute('href'))",
    );
    let header = eval(
        &tab,
        "(document.getElementById('mdbook-searchresults-header') || {}).innerText || ''",
    );
    eprintln!("browser: search {SEARCH_TERM:?}: {header} {results}");
    if !found {
        problems.push(format!(
            "search for {SEARCH_TERM:?} within {SEARCH:?} listed no link to {SEARCH_EXPECTS}: {results}"
        ));
    }
    screenshot(&tab, &shots.join("search.png"));
    for error in console.take() {
        problems.push(format!("search: {error}"));
    }

    // Contrast of recorded output and checks, light and dark.
    let url = format!("{base}/{CONTRAST_PAGE}");
    for theme in THEMES {
        for error in set_theme(&tab, &console, &url, theme) {
            problems.push(format!("{CONTRAST_PAGE} ({theme}): {error}"));
        }
        let measured = eval(&tab, CONTRAST);
        for (name, m) in measured.as_object().unwrap() {
            if m.is_null() {
                problems.push(format!(
                    "{CONTRAST_PAGE} ({theme}): nothing styled as {name} to measure"
                ));
                continue;
            }
            let ratio = m["ratio"].as_f64().unwrap();
            eprintln!(
                "browser: contrast {theme:5} {name:22} {ratio:5.2} ({} on {})",
                m["fg"].as_str().unwrap(),
                m["bg"].as_str().unwrap()
            );
            if ratio < MIN_CONTRAST {
                problems.push(format!(
                    "{CONTRAST_PAGE} ({theme}): {name} has contrast {ratio:.2} < {MIN_CONTRAST} \
                     ({} on {}): fix theme/",
                    m["fg"].as_str().unwrap(),
                    m["bg"].as_str().unwrap()
                ));
            }
        }
        if theme == DARK_SCREENSHOT {
            // The dark page where it matters: at its first verified claim.
            eval(
                &tab,
                "(document.querySelector('#mdbook-content main .lab-check') || document.body)\
                 .scrollIntoView({ block: 'center' })",
            );
            std::thread::sleep(Duration::from_millis(200));
            screenshot(
                &tab,
                &shots.join(format!(
                    "{}-{theme}-check.png",
                    CONTRAST_PAGE.replace(".html", "")
                )),
            );
        }
        for error in console.take() {
            problems.push(format!("{CONTRAST_PAGE} ({theme}): {error}"));
        }
    }
    eval(&tab, "localStorage.removeItem('mdbook-theme')");
    eprintln!(
        "browser: screenshots in {} ({:.1} s)",
        shots.display(),
        started.elapsed().as_secs_f64()
    );

    assert!(
        problems.is_empty(),
        "{} problem(s) in the book as a browser shows it:\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}
