#!/usr/bin/env python3
"""Loads pages in headless Chromium and reports what a person would see go wrong.

Drives Chromium over the DevTools protocol on a pipe (`--remote-debugging-pipe`: commands on
fd 3, answers on fd 4, each a JSON message ended by a NUL byte), so it needs nothing but the
Python standard library and the browser: no WebDriver, no websocket package, no port. For each
page and each viewport (desktop 1280x900, phone 390x844 with touch and a mobile layout) it
records console errors and uncaught exceptions, every request the page makes other than the
page itself, the rendered size of every chart (`svg.chart`), charts without a text
alternative, and whether the page is wider than the viewport, and saves a full-page PNG
screenshot. It prints one JSON object; the caller (tests/html_report_browser.rs) judges it.

    browser_check.py --chromium /usr/bin/chromium --out target/browser-check \
        file=file:///…/reports/index.html api=http://127.0.0.1:8123/report
"""

import argparse
import base64
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time

VIEWPORTS = {
    "desktop": {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False},
    "phone": {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True},
}

# What the page exposes to the check, evaluated in the page after it has loaded.
INSPECT = r"""
(() => {
  const charts = [...document.querySelectorAll('svg.chart')].map((svg) => {
    const box = svg.getBoundingClientRect();
    const ids = (svg.getAttribute('aria-labelledby') || '').split(/\s+/).filter(Boolean);
    const text = ids.map((id) => (document.getElementById(id) || {}).textContent || '').join(' ').trim();
    return {
      id: ids[0] || '',
      width: box.width,
      height: box.height,
      role: svg.getAttribute('role'),
      text_alternative: text.length,
    };
  });
  const tables = [...document.querySelectorAll('table')];
  return JSON.stringify({
    title: document.title,
    charts,
    tables: tables.length,
    tables_without_headers: tables.filter((t) => !t.querySelector('th')).length,
    scripts: document.scripts.length,
    scroll_width: document.documentElement.scrollWidth,
    inner_width: window.innerWidth,
    sections: [...document.querySelectorAll('main > section')].map((s) => s.id),
  });
})()
"""


class Browser:
    """One headless Chromium and its DevTools pipe."""

    def __init__(self, chromium, profile):
        to_browser_read, self.to_browser = os.pipe()
        self.from_browser, from_browser_write = os.pipe()
        args = [
            chromium,
            "--headless",
            "--remote-debugging-pipe",
            f"--user-data-dir={profile}",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-default-apps",
            "--disable-extensions",
            "--disable-sync",
            "--disable-features=Translate,MediaRouter,OptimizationHints",
            "--hide-scrollbars",
            "--mute-audio",
            "about:blank",
        ]
        # The shell puts the two pipe ends on fds 3 and 4, where Chromium expects them.
        command = " ".join(f"'{a}'" for a in args)
        self.process = subprocess.Popen(
            ["sh", "-c", f"exec {command} 3<&{to_browser_read} 4>&{from_browser_write}"],
            pass_fds=(to_browser_read, from_browser_write),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        os.close(to_browser_read)
        os.close(from_browser_write)
        self.messages = queue.Queue()
        self.events = []
        self.next_id = 0
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._drain_stderr, daemon=True).start()

    def _read(self):
        buffer = b""
        while True:
            chunk = os.read(self.from_browser, 1 << 16)
            if not chunk:
                self.messages.put(None)
                return
            buffer += chunk
            while b"\0" in buffer:
                message, buffer = buffer.split(b"\0", 1)
                self.messages.put(json.loads(message))

    def _drain_stderr(self):
        self.stderr = self.process.stderr.read()

    def send(self, method, params=None, session=None, timeout=30):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            answer = self._next(deadline, f"{method} answer")
            if answer.get("id") == self.next_id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer.get("result", {})
            self.events.append(answer)

    def wait_for(self, method, session, timeout=30):
        for index, event in enumerate(self.events):
            if event.get("method") == method and event.get("sessionId") == session:
                return self.events.pop(index)
        deadline = time.monotonic() + timeout
        while True:
            event = self._next(deadline, method)
            if event.get("method") == method and event.get("sessionId") == session:
                return event
            self.events.append(event)

    def _next(self, deadline, waiting_for):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"no {waiting_for} from Chromium in time")
        try:
            message = self.messages.get(timeout=remaining)
        except queue.Empty:
            raise TimeoutError(f"no {waiting_for} from Chromium in time") from None
        if message is None:
            raise RuntimeError("Chromium closed the DevTools pipe")
        return message

    def close(self):
        try:
            self.send("Browser.close", timeout=5)
        except Exception:
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def check(browser, label, url, viewport_name, out_dir, max_height):
    viewport = VIEWPORTS[viewport_name]
    target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    for domain in ("Page", "Runtime", "Log", "Network"):
        browser.send(f"{domain}.enable", session=session)
    browser.send("Emulation.setDeviceMetricsOverride", viewport, session=session)
    if viewport["mobile"]:
        browser.send("Emulation.setTouchEmulationEnabled", {"enabled": True}, session=session)
    browser.events = [e for e in browser.events if e.get("sessionId") != session]
    navigation = browser.send("Page.navigate", {"url": url}, session=session)
    if navigation.get("errorText"):
        raise RuntimeError(f"{url}: {navigation['errorText']}")
    browser.wait_for("Page.loadEventFired", session)
    inspected = json.loads(
        browser.send(
            "Runtime.evaluate", {"expression": INSPECT, "returnByValue": True}, session=session
        )["result"]["value"]
    )
    metrics = browser.send("Page.getLayoutMetrics", session=session)
    size = metrics.get("cssContentSize") or metrics["contentSize"]
    shot = browser.send(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": viewport["width"],
                     "height": min(size["height"], max_height), "scale": 1},
        },
        session=session,
        timeout=60,
    )
    path = os.path.join(out_dir, f"{label}-{viewport_name}.png")
    with open(path, "wb") as file:
        file.write(base64.b64decode(shot["data"]))

    # Everything the page did, from the events collected while it loaded and was inspected.
    console_errors, requests = [], []
    for event in [e for e in browser.events if e.get("sessionId") == session]:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            console_errors.append(" ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", [])))
        elif method == "Runtime.exceptionThrown":
            console_errors.append(params.get("exceptionDetails", {}).get("text", "exception"))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            console_errors.append(params["entry"].get("text", ""))
        elif method == "Network.requestWillBeSent":
            requests.append(params.get("request", {}).get("url", ""))
    browser.events = [e for e in browser.events if e.get("sessionId") != session]
    browser.send("Target.closeTarget", {"targetId": target})
    return {
        "label": label,
        "url": url,
        "viewport": viewport_name,
        "console_errors": console_errors,
        "requests": requests,
        "outside_requests": [r for r in requests if r != url and not r.startswith("data:")],
        "screenshot": path,
        "page_height": size["height"],
        **inspected,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    parser.add_argument("--out", required=True, help="directory for the screenshots")
    parser.add_argument("--viewports", default="desktop,phone")
    parser.add_argument("--max-height", type=int, default=16000,
                        help="screenshots stop this many CSS pixels down the page")
    parser.add_argument("pages", nargs="+", help="label=url")
    options = parser.parse_args()
    os.makedirs(options.out, exist_ok=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="risk-browser-") as profile:
        browser = Browser(options.chromium, profile)
        try:
            browser.send("Target.setDiscoverTargets", {"discover": False}, timeout=30)
            for page in options.pages:
                label, url = page.split("=", 1)
                for viewport in options.viewports.split(","):
                    results.append(check(browser, label, url, viewport, options.out, options.max_height))
        finally:
            browser.close()
    json.dump({"chromium": options.chromium, "pages": results}, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
