"""Headless Chromium driven through the DevTools protocol (one websocket, no driver binary, no browser
download): navigate, evaluate JavaScript, take screenshots. Tests skip when Chromium is missing."""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import websocket  # websocket-client

from tests.support.processes import stop


def chromium_binary() -> str | None:
    return os.environ.get("CHROMIUM_BIN") or shutil.which("chromium") or shutil.which("chromium-browser")


class BrowserError(RuntimeError):
    pass


class Browser:
    def __init__(self, ws_url: str) -> None:
        self._ws = websocket.create_connection(ws_url, timeout=30, suppress_origin=True)
        self._ids = itertools.count(1)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        call_id = next(self._ids)
        self._ws.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:  # events (no id) and late answers are skipped
            message = json.loads(self._ws.recv())
            if message.get("id") == call_id:
                if "error" in message:
                    raise BrowserError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result

    def goto(self, url: str, timeout: float = 20) -> None:
        self.call("Page.navigate", url=url)
        self.wait_for("document.readyState === 'complete' && location.href === " + json.dumps(url), timeout,
                      what=f"{url} to load")

    def eval(self, expression: str) -> Any:
        """The value of `expression` in the page; a page reloading itself raises BrowserError."""
        answer = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in answer:
            raise BrowserError(f"{expression}: {answer['exceptionDetails'].get('text')}")
        return answer["result"].get("value")

    def wait_for(self, expression: str, timeout: float, *, what: str) -> Any:
        """Poll until `expression` is truthy; the page may reload meanwhile (that is what we test)."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            with contextlib.suppress(BrowserError):
                last = self.eval(expression)
                if last:
                    return last
            time.sleep(0.2)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value: {last!r}")

    def poll(self, expression: str, accept: Callable[[Any], bool], timeout: float, *, what: str) -> Any:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            with contextlib.suppress(BrowserError):
                last = self.eval(expression)
                if accept(last):
                    return last
            time.sleep(0.2)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value: {last!r}")

    def screenshot(self, path: Path, *, full_page: bool = True) -> Path:
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            height = int(self.eval("Math.ceil(document.documentElement.scrollHeight)") or 800)
            params["clip"] = {"x": 0, "y": 0, "width": 1280, "height": min(height, 4000), "scale": 1}
            params["captureBeyondViewport"] = True
        data = self.call("Page.captureScreenshot", **params)["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._ws.close()


def _devtools_port(profile: Path, proc: subprocess.Popen[bytes], timeout: float) -> int:
    marker = profile / "DevToolsActivePort"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"chromium exited with code {proc.returncode}")
        with contextlib.suppress(FileNotFoundError, ValueError, IndexError):
            return int(marker.read_text().splitlines()[0])
        time.sleep(0.1)
    raise RuntimeError(f"chromium opened no DevTools port within {timeout}s")


@contextlib.contextmanager
def headless_chromium(timeout: float = 60) -> Iterator[Browser]:
    binary = chromium_binary()
    assert binary is not None, "check chromium_binary() first and skip"
    with tempfile.TemporaryDirectory(prefix="probe-agent-chromium-") as tmp:
        profile = Path(tmp)
        proc = subprocess.Popen(
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", f"--user-data-dir={profile}",
             "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", "--window-size=1280,800",
             "--disable-extensions", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--no-default-browser-check", "--hide-scrollbars", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        browser: Browser | None = None
        try:
            port = _devtools_port(profile, proc, timeout)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as response:
                targets = json.load(response)
            page = next(t for t in targets if t.get("type") == "page")
            browser = Browser(page["webSocketDebuggerUrl"])
            browser.call("Page.enable")
            browser.call("Emulation.setDeviceMetricsOverride", width=1280, height=800, deviceScaleFactor=1,
                         mobile=False)
            yield browser
        finally:
            if browser is not None:
                browser.close()
            stop(proc)
