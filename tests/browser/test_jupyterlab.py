"""The explorer in a real browser: JupyterLab on 127.0.0.1 driven through Playwright in
Debian's chromium (/usr/bin/chromium; never a downloaded browser).

It opens a copy of notebooks/explorer.ipynb (lake_url injected by papermill's parameterizer,
pointing at a pre-ingested sample lake), runs every cell, screenshots the chart, changes the
resample rule, waits for the redraw, screenshots again and checks the pixels changed and the
kernel saw the change. Then it presses Tab after `df.` in a new cell and expects a column
name among the completions. Screenshots are kept in the test's tmp dir (paths printed).
.ci/run installs chromium; without it this test fails (it does not skip).
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import numpy as np
import pytest
from PIL import Image
from papermill.iorw import load_notebook_node
from papermill.parameterize import parameterize_notebook

import cryptolake as cl

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage"]
KERNEL_IDLE = """() => {
  const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  return !!k && k.status === 'idle';
}"""
# Runs `code` in the notebook's kernel from the page; resolves to its stdout.
KERNEL_EXEC = """async (code) => {
  const k = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
  let out = '';
  const f = k.requestExecute({code});
  f.onIOPub = (msg) => { if (msg.header.msg_type === 'stream') out += msg.content.text; };
  await f.done;
  return out;
}"""
# Replaces the active cell's source (no typing through auto-indent/auto-close) and runs it.
SET_ACTIVE_CELL = """(code) => {
  const nb = window.jupyterapp.shell.currentWidget.content;
  nb.activeCell.model.sharedModel.setSource(code);
}"""
FRAME_CODE = """import pandas as pd, cryptolake
df = pd.DataFrame({"close": [1.0, 2.0], "volume": [3, 4]})   # a plain frame: RangeIndex, no OHLC
print("frame ready")"""


@pytest.fixture(scope="module")
def lab_root(tmp_path_factory) -> Path:
    """A Lab root dir: `sample-lake/` (the bundled sample archive's spot 1m klines ingested)
    and `explorer.ipynb`, a copy of notebooks/explorer.ipynb with lake_url set to it."""
    root = tmp_path_factory.mktemp("lab-root")
    lake = cl.Lake(str(root / "sample-lake"),
                   archive=cl.BinanceArchive((ROOT / "examples" / "sample-archive").as_uri()))
    lake.ingest("spot", "klines", ["BTCUSDT", "ETHUSDT", "SOLUSDT"], interval="1m",
                top_up=False, progress=False)
    nb = load_notebook_node(str(ROOT / "notebooks" / "explorer.ipynb"))
    nb = parameterize_notebook(nb, {"lake_url": str(root / "sample-lake"), "symbol": "ETHUSDT",
                                    "indicators": "bbands"})
    nbformat.write(nb, root / "explorer.ipynb")
    return root


@pytest.fixture(scope="module")
def lab(lab_root, tmp_path_factory):
    """JupyterLab on 127.0.0.1 (port picked by the OS, token auth); yields (base URL, token)."""
    state = tmp_path_factory.mktemp("lab-state")
    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join([str(ROOT)] + [p for p in os.environ.get(
               "PYTHONPATH", "").split(os.pathsep) if p])}
    for var in ("JUPYTER_CONFIG_DIR", "JUPYTER_RUNTIME_DIR", "JUPYTERLAB_SETTINGS_DIR",
                "JUPYTERLAB_WORKSPACES_DIR"):
        env[var] = str(state / var.lower())
        Path(env[var]).mkdir()
    settings = {  # no news toast over the page; kernel completions may take a few s on a busy CI
        "apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
        "completer-extension/manager": {"providerTimeout": 30000},
    }
    for name, value in settings.items():
        path = Path(env["JUPYTERLAB_SETTINGS_DIR"]) / "@jupyterlab" / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))
    token = secrets.token_hex(16)
    log = open(state / "lab.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", "--port=0",
         "--ServerApp.port_retries=0", f"--ServerApp.token={token}",
         f"--ServerApp.root_dir={lab_root}", "--allow-root", "--LabApp.expose_app_in_browser=True",
         "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
         "--LabApp.extension_manager=readonly"],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=lab_root)
    try:
        url = _wait_ready(proc, Path(env["JUPYTER_RUNTIME_DIR"]), token, state / "lab.log")
        yield url, token
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _wait_ready(proc, runtime: Path, token: str, log: Path, timeout: float = 120) -> str:
    """The server's URL from its jpserver-PID.json once /api/status answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        info = runtime / f"jpserver-{proc.pid}.json"
        if info.exists():
            port = json.loads(info.read_text())["port"]
            url = f"http://127.0.0.1:{port}"
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=5) as r:
                    if r.status == 200:
                        return url
            except OSError:
                pass
        time.sleep(0.25)
    raise RuntimeError(f"JupyterLab not ready after {timeout} s:\n{log.read_text()[-3000:]}")


def _pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)


def test_explorer_redraws_in_chromium_and_tab_completes(lab, tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium "
                    "(apt-get install -y chromium; .ci/run does this)")
    from playwright.sync_api import sync_playwright

    url, token = lab
    shots = tmp_path / "screenshots"
    shots.mkdir()
    t0 = time.perf_counter()
    with sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=FLAGS,
            viewport={"width": 1500, "height": 1100})
        try:
            page = ctx.pages[0] if ctx.pages else ctx.new_page()
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{url}/lab/tree/explorer.ipynb?token={token}")
            page.wait_for_selector(".jp-Notebook", timeout=90_000)
            page.wait_for_function(KERNEL_IDLE, timeout=90_000)
            page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")

            chart = page.locator(".cryptolake-explorer .cryptolake-chart").first
            chart.wait_for(state="visible", timeout=120_000)
            page.wait_for_function("el => el.complete && el.naturalWidth > 0",
                                   arg=chart.element_handle(), timeout=60_000)
            page.wait_for_function(KERNEL_IDLE, timeout=120_000)
            chart.scroll_into_view_if_needed()
            before_src = chart.get_attribute("src")
            first = shots / "explorer-raw.png"
            chart.screenshot(path=str(first))
            panel_png = shots / "explorer-panel.png"
            page.locator(".cryptolake-explorer").first.screenshot(path=str(panel_png))

            # change the resample rule in the browser; the kernel redraws, the image changes
            rule = page.locator(".cryptolake-explorer .widget-dropdown:has(label:text-is('resample')) select")
            rule.select_option(label="1h")
            page.wait_for_function("([el, old]) => el.src !== old && el.complete && el.naturalWidth > 0",
                                   arg=[chart.element_handle(), before_src], timeout=60_000)
            page.wait_for_function(KERNEL_IDLE, timeout=60_000)
            second = shots / "explorer-1h.png"
            chart.screenshot(path=str(second))
            seen = page.evaluate(KERNEL_EXEC, "print(panel.rule.value, panel.drawn_rule, len(panel.frame))")
            whole = shots / "lab.png"
            page.screenshot(path=str(whole))

            # Tab after `df.` in a new cell lists the frame's columns
            page.evaluate("window.jupyterapp.commands.execute('notebook:insert-cell-below')")
            page.evaluate(SET_ACTIVE_CELL, FRAME_CODE)
            page.evaluate("window.jupyterapp.commands.execute('notebook:run-cell')")
            page.wait_for_selector(".jp-OutputArea-output:has-text('frame ready')", timeout=60_000)
            page.evaluate("window.jupyterapp.commands.execute('notebook:insert-cell-below')")
            cell = page.locator(".jp-Notebook .jp-CodeCell.jp-mod-active")
            cell.locator(".cm-content").click()
            page.keyboard.type("df.")
            cell.locator(".jp-mod-completer-enabled").wait_for(timeout=30_000)
            page.keyboard.press("Tab")
            completer = page.locator(".jp-Completer")
            completer.wait_for(state="visible", timeout=30_000)
            for col in ("close", "volume"):   # both columns offered (the list may fill in steps)
                page.wait_for_selector(f".jp-Completer-item[data-value='{col}']", state="attached",
                                       timeout=30_000)
            items = page.eval_on_selector_all(".jp-Completer-item",
                                              "els => els.map(e => e.getAttribute('data-value'))")
            (shots / "completer.png").write_bytes(page.screenshot())
        except Exception:
            page.screenshot(path=str(shots / "failure.png"))
            print(f"\nfailure screenshot: {shots / 'failure.png'}")
            raise
        finally:
            ctx.close()
    elapsed = time.perf_counter() - t0
    print(f"\nbrowser part {elapsed:.1f} s; screenshots:\n  {panel_png}\n  {first}\n  {second}\n  {whole}\n"
          f"  {shots / 'completer.png'}\nkernel after the change: {seen.strip()}\n"
          f"completions after `df.` (first 12): {items[:12]}")

    a, b = _pixels(first), _pixels(second)
    assert a.shape[0] > 200 and a.shape[1] > 400 and a.std() > 10        # a chart, not blank
    changed = a.shape != b.shape or float((np.abs(a - b).sum(axis=2) > 30).mean()) > 0.02
    assert changed, "the chart did not change after the resample rule changed"
    assert seen.split()[:3] == ["1h", "1h", "71"]      # 72 hours of ETHUSDT, 10:00 wholly missing
    assert "close" in items and "volume" in items, items[:40]
    assert not errors, errors
