"""Check the built HTML book as a reader sees it: every page in headless Chromium, with screenshots.

    .venv/bin/python tools/check_html.py [BUILD_DIR] [--out DIR] [--width 1280] [--height 800] [--only GLOB]

``BUILD_DIR`` is the folder holding ``index.html`` (default ``_build/html``; a jupyter-book output folder
such as ``_build/test`` or ``_build/test/_build`` is accepted too). The pages are served from a local HTTP
server and opened one by one in Debian's ``chromium`` (set ``CHROMIUM`` to use another binary), driven
through the DevTools protocol, at a laptop's 1280x800 by default. Other hosts are unreachable by default,
as they are for a reader offline or behind a firewall (``--online`` lifts that). Per page it reports:

- ``clipped``: display maths, code, tables, images or outputs whose content is cut off by an ancestor that
  hides overflow (a reader cannot see the rest); ``spills``: content wider than the text column that is not
  in a scrolling box (it runs into the margin, under the table of contents or off the screen). Content that
  scrolls inside its own box is fine and only counted (``scrolls``).
- ``console``: console errors, uncaught exceptions and failed loads.
- ``external``: scripts, styles, fonts or data requested from another host (a CDN): the book should serve
  what it needs itself. Images from other hosts (the Colab badge) are only listed.
- ``search``: the number of search boxes visible at the top of the page outside its text (must be exactly 1).
- ``blank``: empty output areas taller than 40 px (e.g. hidden progress bars).
- ``uncaptioned`` / ``unnumbered``: content images (notebook outputs and figures) without a caption, or
  whose caption has no figure number.
- ``small_text``: images shrunk so far that a 10-pt label drawn at the image's dpi ends up under 8 CSS px
  (an estimate: it assumes matplotlib's default 10-pt tick labels and reads the dpi from the PNG).
- ``raw_latex``: LaTeX commands left as text after MathJax finished (``\\mathcal``, ``\\KL``, ``\\[``), and
  maths that MathJax rendered as an error (undefined macros).
- ``numbering``: the same number on two numbered things of the book ("Theorem 3.2" twice, or "Theorem 1"
  on two pages when the table of contents is not numbered).
- ``paths``: user or machine paths in the page text (``/root/``, ``/home/...``, ``/tmp/``, ``/work/``, ``.venv/...``,
  ``site-packages``), folded text included.

A full-page screenshot of every page goes to ``DIR/<page>.png`` (default ``DIR`` is ``check-html`` next to
``BUILD_DIR``), and a screenshot of each problem (up to three per check and page) to
``DIR/problems/``; ``DIR/report.json`` holds everything. Exit status 1 when any check fails (``--warn`` lists
checks to report without failing). Not failures, only counted: boxes that scroll sideways (``--scrolls`` lists
the display equations among them, which are worth breaking) and widget outputs (progress bars) in the page.
"""

from __future__ import annotations

import argparse
import fnmatch
import functools
import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from base64 import b64decode
from collections import Counter
from pathlib import Path

FAILING = ("clipped", "spills", "console", "external", "search", "blank", "uncaptioned", "unnumbered",
           "small_text", "raw_latex", "paths", "numbering")
MIN_LABEL_PX = 8.0  # a 10-pt label rendered smaller than this (CSS px, i.e. 6 pt) is too small to read
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

# The audit that runs in the page once it has loaded and MathJax has finished. It returns plain JSON and
# leaves the elements it complains about in window.__fe_problems, so that they can be photographed.
AUDIT_JS = r"""
(() => {
  const problems = [];
  const keep = (el, check) => { problems.push(el); return problems.length - 1; };
  const article = document.querySelector('article.bd-article') || document.querySelector('[role=main]')
    || document.body;
  const colRect = article.getBoundingClientRect();
  const colRight = colRect.right;
  const style = el => getComputedStyle(el);
  const visible = el => {
    const r = el.getBoundingClientRect();
    if (r.width <= 0 || r.height <= 0) return false;
    for (let a = el; a; a = a.parentElement) {
      const s = style(a);
      if (s.display === 'none' || s.visibility === 'hidden' || s.opacity === '0') return false;
      if (a.tagName === 'DIALOG' && !a.open) return false;
      if (a.tagName === 'DETAILS' && !a.open && a !== el && !(el.closest('summary'))) return false;
    }
    return true;
  };
  const describe = el => {
    let s = el.tagName.toLowerCase();
    if (el.id) s += '#' + el.id;
    const cls = [...el.classList].slice(0, 3).join('.');
    if (cls) s += '.' + cls;
    return s;
  };
  const snippet = el => (el.innerText || el.textContent || el.getAttribute('alt') || el.getAttribute('src') || '')
    .replace(/\s+/g, ' ').trim().slice(0, 100);
  const kindOf = el => {
    if (el.matches('div.math, .math, mjx-container, .MathJax, .math-wrapper')) return 'maths';
    if (el.matches('pre, div.highlight, div[class*="highlight-"]')) return 'code';
    if (el.matches('table')) return 'table';
    if (el.matches('img, svg, figure')) return 'image';
    if (el.matches('.cell_output, .output')) return 'output';
    return 'block';
  };
  const ox = el => style(el).overflowX;
  // How far right the element's own content reaches: its box, plus overflow it lets show (overflow visible),
  // not counting content that a box inside it scrolls or clips (that box is judged on its own).
  const rightExtent = el => {
    const r = el.getBoundingClientRect();
    if (ox(el) !== 'visible') return r.right;
    let right = Math.max(r.right, r.left + el.scrollWidth);
    const desc = el.querySelectorAll('*');
    for (let i = 0; i < desc.length && i < 600; i++) {
      const d = desc[i];
      let inner = false;
      for (let a = d.parentElement; a && a !== el; a = a.parentElement) {
        if (ox(a) !== 'visible') { inner = true; break; }
      }
      if (inner) continue;
      const dr = d.getBoundingClientRect();
      if (dr.width > 0 && dr.height > 0) right = Math.max(right, dr.right);
    }
    return right;
  };

  // 1. Overflow: each candidate either fits, scrolls in a box, is clipped by a box, or spills out.
  const overflow = [];
  const scrollBoxes = new Set();
  const sel = 'div.math, mjx-container[display="true"], pre, div.highlight, table, img, svg, figure, '
    + '.cell_output, .prf, .admonition, .proof, .exercise, .solution, dl, blockquote, p';
  for (const el of article.querySelectorAll(sel)) {
    if (!visible(el)) continue;
    if (el.closest('.bd-header-article, .prev-next-area, footer, nav')) continue;
    if (el.matches('svg') && el.closest('mjx-container, .fa, i, button, a')) continue;
    if (el.tagName === 'DETAILS' && !el.open) continue;
    const own = ox(el);
    let status = null, by = null;
    if ((own === 'auto' || own === 'scroll') && el.scrollWidth > el.clientWidth + 1) scrollBoxes.add(el);
    if ((own === 'hidden' || own === 'clip') && el.scrollWidth > el.clientWidth + 1) { status = 'clipped'; by = el; }
    const right = rightExtent(el);
    for (let a = el.parentElement; !status && a && a !== document.documentElement; a = a.parentElement) {
      const aox = ox(a);
      const ar = a.getBoundingClientRect();
      if (right > ar.right + 1 && (aox === 'auto' || aox === 'scroll')) { scrollBoxes.add(a); break; }
      if (right > ar.right + 1 && (aox === 'hidden' || aox === 'clip')) { status = 'clipped'; by = a; break; }
      if (a === article) break;
    }
    if (!status && right > Math.min(colRight, window.innerWidth) + 1) { status = 'spills'; by = article; }
    const reach = Math.max(right, el.getBoundingClientRect().left + el.scrollWidth);
    if (status) overflow.push({el, status, by, right: reach});
  }
  const scrolls = [...scrollBoxes].map(b => {
    const inner = b.matches('mjx-container, div.math') ? b : (b.querySelector('mjx-container, pre, table') || b);
    return {kind: kindOf(b.matches('pre, div.highlight, table, div.math, mjx-container') ? b : inner),
            excess_px: b.scrollWidth - b.clientWidth, text: snippet(b).slice(0, 70)};
  });
  // Report the outermost element per clipping box (a clipped equation's spans are the same problem).
  const reported = [];
  for (const o of overflow) {
    if (overflow.some(p => p !== o && p.status === o.status && p.by === o.by && p.el.contains(o.el))) continue;
    reported.push({
      check: o.status, kind: kindOf(o.el), element: describe(o.el), by: describe(o.by),
      excess_px: Math.round(o.right - Math.min(o.by.getBoundingClientRect().right, window.innerWidth, colRight)),
      text: snippet(o.el), problem: keep(o.el),
    });
  }

  // 2. Search boxes visible at the top of the page.
  const searchSel = 'input[type="search"], .search-button-field, .search-button, #searchbox input, form.bd-search';
  let searches = [...document.querySelectorAll(searchSel)].filter(visible)
    .filter(el => !article.contains(el) && el.getBoundingClientRect().top < window.innerHeight);
  searches = searches.filter(el => !searches.some(o => o !== el && o.contains(el)));
  const search = searches.map(el => ({element: describe(el), top: Math.round(el.getBoundingClientRect().top),
    left: Math.round(el.getBoundingClientRect().left), problem: keep(el)}));

  // 3. Blank output areas.
  const blank = [];
  const outputs = [...article.querySelectorAll('.cell_output, .cell_output > *')];
  for (const el of outputs) {
    const r = el.getBoundingClientRect();
    if (r.height <= 40 || !visible(el)) continue;
    if ((el.innerText || '').trim()) continue;
    const media = 'img, svg, canvas, iframe, video, table, input, button, mjx-container';
    if (el.matches(media) || el.querySelector(media)) continue;
    if (blank.some(b => b.el.contains(el))) continue;
    blank.push({el, height: Math.round(r.height)});
  }
  const blanks = blank.map(b => ({height_px: b.height, element: describe(b.el), problem: keep(b.el)}));

  // 4. Content images: caption, number, scale.
  const figures = [];
  for (const img of article.querySelectorAll('img')) {
    if (!visible(img)) continue;
    const r = img.getBoundingClientRect();
    if (r.height < 60 || img.closest('a.reference.external, .badge, nav, .headerlink')) continue;
    const fig = img.closest('figure, div.figure');
    const cap = fig && fig.querySelector('figcaption, p.caption');
    const capText = cap ? cap.innerText.replace(/\s+/g, ' ').trim() : '';
    figures.push({
      src: img.getAttribute('src'), natural_width: img.naturalWidth, width: Math.round(r.width),
      caption: capText.slice(0, 100), numbered: !!(cap && cap.querySelector('.caption-number')),
      in_output: !!img.closest('.cell_output'), problem: keep(img),
    });
  }

  // 5. LaTeX left as text, and maths MathJax could not render.
  const rawLatex = [];
  const skip = 'pre, code, script, style, textarea, mjx-container, .highlight, kbd, samp, mjx-assistive-mml, '
    + '.MathJax, title';
  const walker = document.createTreeWalker(article, NodeFilter.SHOW_TEXT, {acceptNode: n => {
    const p = n.parentElement;
    if (!p || p.closest(skip)) return NodeFilter.FILTER_REJECT;
    return NodeFilter.FILTER_ACCEPT;
  }});
  const latexRe = /\\(?:[A-Za-z]{2,}|[\[\]\(\)])/;
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const m = n.nodeValue.match(latexRe);
    if (!m) continue;
    const i = m.index;
    rawLatex.push({text: n.nodeValue.slice(Math.max(0, i - 30), i + 50).replace(/\s+/g, ' '),
                   problem: rawLatex.length < 50 ? keep(n.parentElement) : null});
  }
  const mathErrors = [];
  const mj = window.MathJax;
  const mathjax = {loaded: !!(mj && mj.startup && mj.startup.document), version: (mj && mj.version) || null};
  if (mathjax.loaded) {
    for (const item of mj.startup.document.math) {
      let mml = '';
      try { mml = mj.startup.toMML(item.root); } catch (e) { mml = '<merror>' + e + '</merror>'; }
      if (/<merror|mathcolor="red"/.test(mml)) {
        const el = item.start && item.start.node && item.start.node.parentElement;
        mathErrors.push({tex: String(item.math).slice(0, 120), problem: el ? keep(el) : null});
      }
    }
  }
  const mathNodes = article.querySelectorAll('.math, mjx-container').length;

  // 6. Every text node of the page (folded ones too) for machine paths.
  const pathRe = new RegExp(String.raw`(^|[\s'"(=:\[,])(\/root\/|\/home\/[\w.-]+|\/Users\/[\w.-]+|\/tmp\/|`
    + String.raw`\/work\/|[A-Za-z]:\\Users\\)|\.venv\/|site-packages`);
  const paths = [];
  const all = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT, {acceptNode: n => {
    const p = n.parentElement;
    if (!p || p.closest('script, style')) return NodeFilter.FILTER_REJECT;
    return NodeFilter.FILTER_ACCEPT;
  }});
  for (let n = all.nextNode(); n; n = all.nextNode()) {
    const m = n.nodeValue.match(pathRe);
    if (!m) continue;
    const i = m.index;
    paths.push({text: n.nodeValue.slice(Math.max(0, i - 40), i + 60).replace(/\s+/g, ' '),
                problem: paths.length < 20 ? keep(n.parentElement) : null});
  }

  // 7. The numbers of numbered things (theorems, definitions, figures, exercises), for duplicates across the book.
  // Theorems, lemmas, definitions... (sphinx-proof) share one sequence: "Theorem 1" next to "Lemma 1" is a duplicate.
  const numbers = [...article.querySelectorAll('.caption-number')]
    .filter(el => !el.closest('.solution, nav, .toctree-wrapper'))
    .map(el => {
      const text = el.textContent.replace(/\s+/g, ' ').trim();
      const num = (text.match(/\d+(\.\d+)*/) || [''])[0];
      return {text, key: el.closest('div.proof') ? 'statement ' + num : text};
    }).filter(n => /\d/.test(n.text));

  window.__fe_problems = problems;
  return JSON.stringify({
    overflow: reported, scrolls, search, blank: blanks, figures, raw_latex: rawLatex, math_errors: mathErrors,
    mathjax, math_nodes: mathNodes, paths, numbers,
    widgets: document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]').length,
    column: {left: Math.round(colRect.left), right: Math.round(colRight)},
    size: {width: document.documentElement.scrollWidth, height: document.documentElement.scrollHeight},
    notes: [...document.querySelectorAll('.flowedu-mathjax-note')].filter(visible).map(e => e.innerText.trim()),
  });
})()
"""

# Wait until MathJax (if the page loads it) has typeset the page and the fonts are in.
SETTLE_JS = r"""
(async () => {
  const sleep = ms => new Promise(r => setTimeout(r, ms));
  const t0 = performance.now();
  const wants = !!document.querySelector('script[src*="mathjax" i], script[src*="tex-" i]');
  while (wants && !(window.MathJax && MathJax.startup && MathJax.startup.promise) && performance.now() - t0 < 3000) {
    await sleep(100);
  }
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    try { await Promise.race([MathJax.startup.promise, sleep(30000)]); } catch (e) {}
  }
  if (document.fonts) { await Promise.race([document.fonts.ready, sleep(5000)]); }
  await sleep(300);
  return true;
})()
"""


class CDPError(RuntimeError):
    pass


class Browser:
    """A headless Chromium with one tab, driven through the DevTools protocol over a WebSocket."""

    def __init__(self, binary: str, online: bool = False, timeout: float = 60.0):
        import websocket  # websocket-client

        self.profile = tempfile.mkdtemp(prefix="check_html_")
        args = [binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--mute-audio",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--force-device-scale-factor=1", f"--user-data-dir={self.profile}", "--remote-debugging-port=0",
                "about:blank"]
        if not online:
            args.insert(1, "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1")
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        port_file = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while not (port_file.exists() and port_file.read_text().strip()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise CDPError(f"{binary} did not start (exit status {self.proc.returncode})")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as resp:
                    targets = json.load(resp)
                page = next(t for t in targets if t.get("type") == "page")
                break
            except (OSError, StopIteration):
                if time.monotonic() > deadline:
                    self.close()
                    raise CDPError("no page target in the browser") from None
                time.sleep(0.2)
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=timeout, suppress_origin=True,
                                              enable_multithread=False)
        self.timeout = timeout
        self.next_id = 0
        self.events: list[dict] = []

    def send(self, method: str, timeout: float | None = None, **params):
        self.next_id += 1
        msg_id = self.next_id
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        deadline = time.monotonic() + (timeout or self.timeout)
        while time.monotonic() < deadline:
            data = json.loads(self.ws.recv())
            if data.get("id") == msg_id:
                if "error" in data:
                    raise CDPError(f"{method}: {data['error']}")
                return data.get("result", {})
            if "method" in data:
                self.events.append(data)
        raise CDPError(f"{method}: no answer within {timeout or self.timeout} s")

    def wait_for(self, event: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            if any(e["method"] == event for e in self.events):
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.ws.settimeout(left)
            try:
                data = json.loads(self.ws.recv())
            except Exception:  # websocket timeout
                return False
            finally:
                self.ws.settimeout(self.timeout)
            if "method" in data:
                self.events.append(data)

    def evaluate(self, expression: str, timeout: float | None = None):
        result = self.send("Runtime.evaluate", timeout=timeout, expression=expression, awaitPromise=True,
                           returnByValue=True)
        if "exceptionDetails" in result:
            raise CDPError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, clip: dict | None = None) -> bytes:
        params = {"format": "png"}
        if clip is not None:
            params.update(clip=dict(clip, scale=1))
        return b64decode(self.send("Page.captureScreenshot", timeout=120, **params)["data"])

    def close(self):
        try:
            if getattr(self, "ws", None) is not None:
                self.ws.close()
        finally:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
            shutil.rmtree(self.profile, ignore_errors=True)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def serve(root: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def find_html_root(path: Path) -> Path:
    for candidate in (path, path / "html", path / "_build" / "html"):
        if (candidate / "index.html").exists() or list(candidate.glob("*.html")):
            if (candidate / "_static").exists() or candidate == path:
                return candidate
    raise SystemExit(f"no built HTML book in {path} (expected index.html)")


def find_chromium() -> str:
    for name in filter(None, (os.environ.get("CHROMIUM"), *CHROMIUM_NAMES)):
        found = shutil.which(name)
        if found:
            return found
    raise SystemExit("headless Chromium not found: install Debian's `chromium` or set CHROMIUM=/path/to/chrome")


def list_pages(root: Path, only: list[str] | None) -> list[str]:
    pages = []
    for path in sorted(root.rglob("*.html")):
        rel = path.relative_to(root).as_posix()
        if rel.split("/")[0] in ("_static", "_sources", "_images", "_downloads") or rel.startswith("."):
            continue
        if rel == "index.html" and path.stat().st_size < 500:  # the redirect to the first page
            continue
        if only and not any(fnmatch.fnmatch(rel, pattern) for pattern in only):
            continue
        pages.append(rel)
    return pages


def png_dpi(path: Path) -> float | None:
    """The dpi a PNG was saved with (matplotlib writes it into the pHYs chunk), or None."""
    try:
        from PIL import Image

        with Image.open(path) as image:
            dpi = image.info.get("dpi")
        return float(dpi[0]) if dpi and dpi[0] > 1 else None
    except Exception:
        return None


def _clean(value):
    """Strings from the page with surrogate pairs joined and lone halves (a snippet cut mid-character) replaced."""
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    return value


def console_problems(events: list[dict], base: str) -> tuple[list[str], list[str], list[str]]:
    """Console errors, external scripts/styles/fonts/data, and external images (badges) from the page's events.

    A failed load from another host is reported once, as external, not again as a console error.
    """
    local = (base, "data:", "blob:", "about:", "chrome")
    errors, external, images = [], [], []
    for event in events:
        method, params = event["method"], event.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            text = details.get("exception", {}).get("description") or details.get("text", "")
            errors.append(f"uncaught: {text.splitlines()[0] if text else details}"[:300])
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            args = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
            errors.append(f"console.error: {args}"[:300])
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            if entry.get("url", "").startswith(("http:", "https:")) and not entry["url"].startswith(base):
                continue
            errors.append(f"{entry.get('source', 'log')}: {entry.get('text', '')} {entry.get('url', '')}".strip()[:300])
        elif method == "Network.requestWillBeSent":
            url = params.get("request", {}).get("url", "")
            if not url.startswith(local):
                (images if params.get("type") == "Image" else external).append(url)
    return list(dict.fromkeys(errors)), list(dict.fromkeys(external)), list(dict.fromkeys(images))


def save_full_page(browser: Browser, out: Path, width: int, height: int, max_height: int = 32000) -> None:
    """Full-page screenshot: the viewport is made as tall as the page, then painted in tiles of 4000 px that
    Pillow stitches together (Chromium does not paint very tall areas in one go)."""
    full = min(max(height, int(browser.evaluate("document.documentElement.scrollHeight"))), max_height)
    browser.send("Emulation.setDeviceMetricsOverride", width=width, height=full, deviceScaleFactor=1, mobile=False)
    time.sleep(0.3)
    tile = 4000
    shots = [browser.screenshot({"x": 0, "y": top, "width": width, "height": min(tile, full - top)})
             for top in range(0, full, tile)]
    browser.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)
    try:
        from io import BytesIO

        from PIL import Image
    except ImportError:  # no Pillow: keep the tiles
        for i, data in enumerate(shots):
            out.with_name(f"{out.stem}_{i:02d}.png").write_bytes(data)
        return
    images = [Image.open(BytesIO(data)) for data in shots]
    canvas = Image.new("RGB", (width, sum(im.height for im in images)), "white")
    y = 0
    for im in images:
        canvas.paste(im, (0, y))
        y += im.height
    canvas.save(out, optimize=True)


def check_page(browser: Browser, base: str, rel: str, root: Path, out: Path, width: int, height: int,
               crops: int) -> dict:
    browser.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)
    # Every page as on a first visit: no stored theme choice, no cached favicon or scripts.
    browser.send("Storage.clearDataForOrigin", origin=base.rstrip("/"), storageTypes="all")
    browser.send("Network.clearBrowserCache")
    browser.events.clear()
    browser.send("Page.navigate", url=base + rel)
    loaded = browser.wait_for("Page.loadEventFired", 90)
    browser.evaluate(SETTLE_JS, timeout=60)
    audit = _clean(json.loads(browser.evaluate(AUDIT_JS, timeout=120)))
    errors, external, external_images = console_problems(browser.events, base)
    if not loaded:
        errors.append("the page did not finish loading within 90 s")

    problems: dict[str, list] = {name: [] for name in FAILING}
    for item in audit["overflow"]:
        problems[item["check"]].append(item)
    problems["console"] = [{"text": e} for e in errors]
    problems["external"] = [{"text": u} for u in external]
    if len(audit["search"]) != 1:
        problems["search"] = [dict(s, text=f"{len(audit['search'])} search boxes at the top") for s in audit["search"]]
        if not audit["search"]:
            problems["search"] = [{"text": "no visible search box at the top of the page"}]
    problems["blank"] = audit["blank"]
    page_dir = (root / rel).parent
    for fig in audit["figures"]:
        src = (fig.get("src") or "").split("?")[0]
        if not fig["caption"]:
            problems["uncaptioned"].append(dict(fig, text=src))
        elif not fig["numbered"]:
            problems["unnumbered"].append(dict(fig, text=f"{src}: {fig['caption']}"))
        dpi = png_dpi((page_dir / src).resolve()) if src and not src.startswith("data:") else None
        if dpi and fig["natural_width"]:
            label_px = 10 * dpi / 72 * fig["width"] / fig["natural_width"]
            fig["label_px"] = round(label_px, 1)
            if label_px < MIN_LABEL_PX:
                problems["small_text"].append(dict(fig, text=f"{src}: {fig['natural_width']} px at {dpi:.0f} dpi "
                                                   f"shown {fig['width']} px wide, 10-pt labels -> {label_px:.1f} px"))
    problems["raw_latex"] = audit["raw_latex"] + [
        dict(e, text=f"MathJax error in: {e['tex']}") for e in audit["math_errors"]]
    problems["paths"] = audit["paths"]

    name = rel.removesuffix(".html").replace("/", "__")
    shots = out / "problems"
    for check, items in problems.items():
        for k, item in enumerate([i for i in items if i.get("problem") is not None][:crops]):
            browser.evaluate(f"window.__fe_problems[{item['problem']}].scrollIntoView({{block: 'center'}})")
            time.sleep(0.1)
            shots.mkdir(parents=True, exist_ok=True)
            item["screenshot"] = str(shots / f"{name}__{check}_{k + 1}.png")
            Path(item["screenshot"]).write_bytes(browser.screenshot())
    browser.evaluate("window.scrollTo(0, 0)")
    save_full_page(browser, out / f"{name}.png", width, height)
    for items in problems.values():
        for item in items:
            item.pop("problem", None)
    return {
        "page": rel, "problems": problems, "scrolls": audit["scrolls"], "mathjax": audit["mathjax"],
        "math_nodes": audit["math_nodes"], "figures": len(audit["figures"]), "notes": audit["notes"],
        "external_images": external_images, "numbers": audit["numbers"], "widgets": audit["widgets"],
        "size": audit["size"], "screenshot": str(out / f"{name}.png"),
    }


def mark_duplicate_numbers(results: list[dict]) -> None:
    """The same number ("Theorem 3.2", "Fig. 4.1") on two numbered things anywhere in the book is a problem."""
    where: dict[str, list[tuple[str, str]]] = {}
    for res in results:
        for number in res.get("numbers", []):
            where.setdefault(number["key"], []).append((number["text"], res["page"]))
    for res in results:
        for key in dict.fromkeys(n["key"] for n in res.get("numbers", [])):
            uses = where[key]
            if len(uses) > 1:
                listed = "; ".join(f"{text} ({page})" for text, page in uses)
                text = f"number {key.split()[-1]} used {len(uses)} times: {listed}"
                res["problems"]["numbering"].append({"text": text})


def format_report(results: list[dict], show_scrolls: bool = False) -> tuple[str, dict[str, int]]:
    totals = {name: 0 for name in FAILING}
    lines = []
    for res in results:
        counts = {name: len(items) for name, items in res["problems"].items()}
        for name, n in counts.items():
            totals[name] += n
        bad = {name: n for name, n in counts.items() if n}
        status = "ok" if not bad else "FAIL " + ", ".join(f"{name} {n}" for name, n in bad.items())
        kinds = Counter(item["kind"] for item in res["scrolls"])
        scrolling = ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items())) or "none"
        widgets = f"; widget outputs {res['widgets']} (progress bars?)" if res.get("widgets") else ""
        lines.append(f"{res['page']}: {status} (boxes that scroll sideways: {scrolling}; figures {res['figures']}"
                     f"{widgets})")
        for name, items in res["problems"].items():
            for item in items[:8]:
                text = item.get("text", "")
                where = f" [{item['kind']} {item['element']} in {item['by']}, +{item['excess_px']} px]" \
                    if "excess_px" in item else ""
                height = f" [{item['height_px']} px {item['element']}]" if "height_px" in item else ""
                lines.append(f"    {name}:{where}{height} {text}".rstrip())
            if len(items) > 8:
                lines.append(f"    {name}: ... and {len(items) - 8} more")
        for note in res["notes"]:
            lines.append(f"    note shown on the page: {note}")
        if show_scrolls:
            for item in [i for i in res["scrolls"] if i["kind"] == "maths"]:
                lines.append(f"    (scrolls) maths +{item['excess_px']} px: {item['text']}")
    lines.append("")
    lines.append("totals: " + ", ".join(f"{name} {n}" for name, n in totals.items()))
    return "\n".join(lines), totals


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("build", nargs="?", type=Path, default=Path("_build/html"))
    parser.add_argument("--out", type=Path, default=None, help="screenshots and report.json (default: check-html "
                        "next to the HTML folder)")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=800)
    parser.add_argument("--only", action="append", help="check only pages matching this glob (repeatable)")
    parser.add_argument("--online", action="store_true", help="let pages reach other hosts (CDNs)")
    parser.add_argument("--crops", type=int, default=3, help="problem screenshots per check and page")
    parser.add_argument("--warn", default="", help="comma-separated checks to report without failing (e.g. "
                        "uncaptioned,small_text while the chapters are being captioned)")
    parser.add_argument("--scrolls", action="store_true", help="also list display maths that scroll sideways "
                        "(not a failure, but an equation a reader must scroll is worth breaking)")
    args = parser.parse_args(argv)

    root = find_html_root(args.build.resolve())
    out = (args.out or root.parent / "check-html").resolve()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    pages = list_pages(root, args.only)
    if not pages:
        raise SystemExit(f"no pages to check in {root}")
    server, base = serve(root)
    browser = Browser(find_chromium(), online=args.online)
    results = []
    try:
        for domain in ("Page", "Runtime", "Log", "Network"):
            browser.send(f"{domain}.enable")
        for rel in pages:
            t0 = time.monotonic()
            try:
                res = check_page(browser, base, rel, root, out, args.width, args.height, args.crops)
            except CDPError as exc:
                res = {"page": rel, "problems": {name: [] for name in FAILING}, "scrolls": [], "figures": 0,
                       "notes": [], "mathjax": None}
                res["problems"]["console"].append({"text": f"checker could not inspect the page: {exc}"})
            res["seconds"] = round(time.monotonic() - t0, 1)
            results.append(res)
            print(f"checked {rel} ({res['seconds']} s)", file=sys.stderr)
    finally:
        browser.close()
        server.shutdown()
    mark_duplicate_numbers(results)
    text, totals = format_report(results, args.scrolls)
    (out / "report.json").write_text(json.dumps({"root": str(root), "width": args.width, "height": args.height,
                                                 "totals": totals, "pages": results}, indent=1))
    print(text)
    print(f"screenshots and report.json in {out}")
    warn = {name.strip() for name in args.warn.split(",") if name.strip()}
    unknown = warn - set(FAILING)
    if unknown:
        raise SystemExit(f"--warn: unknown checks {sorted(unknown)}; the checks are {', '.join(FAILING)}")
    failed = sum(n for name, n in totals.items() if name not in warn)
    warned = sum(n for name, n in totals.items() if name in warn)
    print("check_html: " + ("all checks passed" if not failed else f"{failed} problems")
          + (f" ({warned} more reported, not failing: {', '.join(sorted(warn))})" if warned else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
