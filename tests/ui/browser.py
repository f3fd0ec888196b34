"""The web UI in a real browser: Debian's chromium driven by Playwright for
Python, against the real `stride serve` (embedded local cluster, tasks as
real processes). Run by tests/ui.rs:

    browser.py STRIDE_BIN [--bench]

Walks what a person does: load the app list, deploy an app from the UI,
watch it reach its instances live, scale it, kill a task from outside
(SIGKILL of its process) and see it replaced, roll back, read the audit
diff and a version diff, read a task's stdout, hold a deployment that
cannot finish and read why in words, cancel it, follow the event feed,
then restart the server under the page and see it resume without a gap.
Every view is screenshotted into $STRIDE_UI_SCREENSHOTS (default
target/ui-screenshots; `docs/ui` refreshes the committed ones).

With --bench it measures instead (BENCHMARKS.md): page load against the
raw API calls it makes, and commit-to-screen against a bare websocket.
"""

import base64
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

from playwright.sync_api import sync_playwright, expect

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHOTS = os.environ.get("STRIDE_UI_SCREENSHOTS", os.path.join(ROOT, "target", "ui-screenshots"))
# The task ports tests/it/ui.rs allocated for this run.
TASK_PORTS = os.environ["STRIDE_UI_TASK_PORTS"]
# A token of the auth file tests/it/ui.rs made (STRIDE_AUTH_FILE, which
# `stride serve` reads).
TOKEN = os.environ["STRIDE_UI_TOKEN"]
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 60_000
expect.set_options(timeout=TIMEOUT_MS)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Stride:
    """`stride serve` on a fixed port, so it can come back where the page
    looks for it."""

    def __init__(self, binary, data_dir, port):
        self.binary, self.data_dir, self.port = binary, data_dir, port
        self.url = f"http://127.0.0.1:{port}"
        self.child = None

    def start(self):
        self.child = subprocess.Popen(
            [self.binary, "serve", "--listen", f"127.0.0.1:{self.port}", "--data-dir", self.data_dir,
             "--local-ports", TASK_PORTS, "--drain-timeout", "1s"],
            stdout=subprocess.PIPE, env={**os.environ, "STRIDE_LOG": "warn"}, text=True)
        for line in self.child.stdout:
            if line.startswith("stride: listening on "):
                threading.Thread(target=lambda: [None for _ in self.child.stdout], daemon=True).start()
                return
        raise RuntimeError("stride exited before listening")

    def stop(self):
        if self.child and self.child.poll() is None:
            self.child.send_signal(signal.SIGTERM)
            self.child.wait(timeout=30)

    def call(self, method, path, body=None, user=None):
        request = urllib.request.Request(self.url + path, method=method,
                                         data=None if body is None else json.dumps(body).encode())
        request.add_header("Content-Type", "application/json")
        if user:
            request.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:pw".encode()).decode())
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                text = answer.read()
                return json.loads(text) if text else None
        except urllib.error.HTTPError as error:
            raise AssertionError(f"{method} {path}: {error.code} {error.read()!r}") from error


def wait_for(what, check, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


PHASE = {"at": time.monotonic()}


def phase(name):
    """Prints how long the walk's previous phase took."""
    now = time.monotonic()
    print(f"{now - PHASE['at']:6.1f}s {name}", flush=True)
    PHASE["at"] = now


def shot(page, name, full_page=True):
    os.makedirs(SHOTS, exist_ok=True)
    page.screenshot(path=os.path.join(SHOTS, f"{name}.png"), full_page=full_page)


def task_pid(task_id):
    """The process the embedded cluster runs for a task (its environment
    names the task)."""
    needle = f"MESOS_TASK_ID={task_id}".encode()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if needle in f.read().split(b"\0"):
                    return int(pid)
        except OSError:
            continue
    return None


def confirm(page):
    expect(page.locator("#confirm")).to_be_visible()
    page.click("#confirm-ok")


def act(page, button):
    """Clicks `button`, confirms, and waits until the page shows the
    deployment that started (a new one) as finished."""
    trackers = page.locator("#trackers .tracker[data-deployment]")
    before = trackers.last.get_attribute("data-deployment") if trackers.count() else None
    page.click(button)
    confirm(page)
    wait_for("the new deployment's tracker",
             lambda: trackers.count() and trackers.last.get_attribute("data-deployment") != before)
    expect(trackers.last).to_have_attribute("data-state", "DeploymentFinished")


def running(page, app):
    return page.locator(f'tr[data-app="{app}"] [data-field="running"]')


def ui_matches_server(page, stride):
    """The page's fold of the stream equals the server's `/v1/state`
    document at the same seq: every app, every task, the framework."""
    def compare():
        document = stride.call("GET", "/v1/state")
        seen = page.evaluate("JSON.parse(JSON.stringify(window.strideStore.model))")
        if seen["seq"] != document["seq"]:
            return None
        state = document["state"]
        theirs = {"apps": state["apps"], "tasks": state["tasks"], "framework": state["framework"]}
        ours = {key: seen[key] for key in theirs}
        return ours == theirs or ("differs", ours, theirs)
    result = wait_for("the page to reach the server's seq", compare)
    assert result is True, f"the page's model differs from /v1/state: {result}"


def launch(p):
    return p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)


def walk(binary):
    data_dir = tempfile.mkdtemp(prefix="stride-ui-")
    stride = Stride(binary, data_dir, free_port())
    stride.start()
    try:
        with sync_playwright() as p:
            browser = launch(p)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(TIMEOUT_MS)
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            try:
                scenario(page, stride)
            except BaseException:
                shot(page, "failure")
                print("state at the failure:", json.dumps(stride.call("GET", "/v1/state")["state"]["tasks"], indent=1))
                raise
            assert not errors, f"errors in the page: {errors}"
            browser.close()
    finally:
        stride.stop()


def scenario(page, stride):
    seeded = {"id": "/seed/sleeper", "cmd": "sleep 1000", "instances": 1, "cpus": 0.05, "mem": 16,
              "labels": {"team": "infra"}}
    stride.call("POST", "/v2/apps", seeded)

    # The app list, live; filters by id prefix and by label.
    page.goto(stride.url + "/ui/")
    expect(running(page, "/seed/sleeper")).to_have_text("1 / 1")
    phase("(page loaded)")
    page.evaluate("window.sameDocument = true")
    page.fill("#filter-id", "/nothing/")
    expect(page.locator("tr[data-app]")).to_have_count(0)
    page.fill("#filter-id", "/seed/")
    page.fill("#filter-label", "team=web")
    expect(page.locator("tr[data-app]")).to_have_count(0)
    page.fill("#filter-label", "team=infra")
    expect(page.locator("tr[data-app]")).to_have_count(1)
    page.fill("#filter-id", "")
    page.fill("#filter-label", "")

    # Deploy an app from the UI and watch it reach its instances.
    web = {
        "id": "/web",
        "cmd": 'echo "hello from $MESOS_TASK_ID"; exec python3 -m http.server $PORT0',
        "instances": 2, "cpus": 0.05, "mem": 32,
        "portDefinitions": [{"port": 0}],
        "labels": {"team": "web"},
        "healthChecks": [{"protocol": "HTTP", "path": "/", "portIndex": 0, "intervalSeconds": 1, "delaySeconds": 0,
                          "gracePeriodSeconds": 10, "timeoutSeconds": 1}],
    }
    page.click("#new-app-open")
    page.fill("#new-app-json", json.dumps(web, indent=2))
    act(page, "#new-app-submit")
    phase("(deployment finished)")
    expect(running(page, "/web")).to_have_text("2 / 2")
    expect(page.locator('tr[data-app="/web"] [data-field="healthy"]')).to_have_text("2")
    page.click("#new-app >> text=Close")
    shot(page, "apps")
    phase("deployed from the UI")

    # The app: scale it, with a confirmation, and follow its deployment.
    page.click('a[href="#/apps/web"]')
    expect(page.locator("#tasks tr[data-condition=Running]")).to_have_count(2)
    page.fill("#scale-input", "3")
    phase("(app page)")
    page.click("#scale")
    shot(page, "confirm")
    page.click("#confirm-cancel")
    act(page, "#scale")
    expect(page.locator('#app-figures [data-field="running"]')).to_have_text("3")
    expect(page.locator('#app-figures [data-field="healthy"]')).to_have_text("3")

    phase("(scaled)")
    # Kill a task from outside: SIGKILL its process; the page shows the
    # failure and the replacement.
    victim = page.locator("#tasks tr[data-condition=Running]").first.get_attribute("data-task")
    pid = wait_for("the task's process", lambda: task_pid(victim))
    os.kill(pid, signal.SIGKILL)
    expect(page.locator("#last-failure")).to_contain_text(victim)
    expect(page.locator(f'#tasks tr[data-task="{victim}"][data-condition=Running]')).to_have_count(0)
    expect(page.locator("#tasks tr[data-condition=Running]")).to_have_count(3)
    expect(page.locator('#app-figures [data-field="healthy"]')).to_have_text("3")
    shot(page, "app")
    ui_matches_server(page, stride)
    phase("killed from outside, replaced")

    # Roll back to the first version (2 instances).
    first = stride.call("GET", "/v2/apps/web/versions")["versions"][-1]
    page.select_option("#rollback-version", first)
    act(page, "#rollback")
    expect(page.locator('#app-figures [data-field="running"]')).to_have_text("2")
    expect(page.locator("#tasks tr[data-condition=Running]")).to_have_count(2)

    phase("(rolled back)")

    # Restart: every task replaced.
    before = set(page.locator("#tasks tr[data-condition=Running]").evaluate_all("rows => rows.map(r => r.dataset.task)"))
    act(page, "#restart")
    expect(page.locator("#tasks tr[data-condition=Running]")).to_have_count(2)
    after = set(page.locator("#tasks tr[data-condition=Running]").evaluate_all("rows => rows.map(r => r.dataset.task)"))
    assert not before & after, (before, after)
    phase("rolled back, restarted")

    # A change from outside, by a named user: the audit says who and what.
    stride.call("PATCH", "/v2/apps/web", {"env": {"GREETING": "hi"}}, user="alice")
    audit = page.locator('#audit li[data-type="AppUpdated"]').first
    expect(audit).to_contain_text("alice")
    expect(page.locator('#audit li[data-type="AppUpdated"]').nth(1)).to_contain_text("a restart")
    expect(audit.locator("table.diff")).to_contain_text("/env")
    expect(audit.locator("table.diff")).to_contain_text("hi")
    scaled = page.locator('#audit li[data-type="AppScaled"]').first
    expect(scaled.locator("table.diff")).to_contain_text("/instances")
    # A diff between any two versions: the first against the newest.
    page.locator(f'input[name="diff-from"][value="{first}"]').check()
    page.click("#compare")
    expect(page.locator("#version-diff")).to_contain_text("/env")
    page.locator("#audit").scroll_into_view_if_needed()
    shot(page, "audit")
    phase("audit")

    # A task's stdout, from its sandbox.
    task = page.locator("#tasks tr[data-condition=Running]").first.get_attribute("data-task")
    page.click(f'tr[data-task="{task}"] >> text=stdout')
    expect(page.locator("#log")).to_contain_text(f"hello from {task}")
    shot(page, "stdout")
    phase("stdout")
    page.click("text=stderr")
    expect(page.locator("#log")).to_contain_text("GET / HTTP")

    # A deployment that cannot finish: why it waits, in words; then cancel it.
    # First alice's restart finishes (a slow machine may still be on it).
    wait_for("the restart to finish", lambda: stride.call("GET", "/v2/deployments") == [])
    page.goto(stride.url + "/ui/#/apps/web")
    page.evaluate("window.sameDocument = true")
    stride.call("PUT", "/v2/apps/web", {"instances": 2, "cpus": 1000})
    expect(page.locator("#queue-reason")).to_contain_text("cpus", ignore_case=True)
    phase("(queue reason)")
    page.click('header a[href="#/deployments"]')
    row = page.locator("#deployments tr[data-deployment]")
    expect(row).to_have_count(1)
    shot(page, "deployments")
    row.locator("text=roll back").click()
    confirm(page)
    expect(page.locator("#deployments tr[data-deployment]")).to_have_count(0)
    expect(page.locator("#deployments-ended li").first).to_contain_text("/web")
    phase("(cancelled)")

    # Delete, from the app's page.
    page.evaluate("location.hash = '#/apps/web'")
    act(page, "#delete")
    expect(page.locator("#trackers .tracker").last).to_contain_text("delete /web")
    expect(page.locator('tr[data-app="/web"]')).to_have_count(0)
    phase("held deployment, deleted")

    # The live feed, filtered.
    page.click('header a[href="#/events"]')
    rows = page.locator("#events tr[data-type]")
    page.select_option("#events-type", "AppScaled")
    wait_for("only scale events", lambda: set(rows.evaluate_all("rows => rows.map(r => r.dataset.type)")) == {"AppScaled"})
    assert rows.count() == 2, rows.count()  # the scale to 3 and the rollback to 2
    page.select_option("#events-type", "")
    page.fill("#events-app", "/seed/")
    wait_for("only /seed/ events", lambda: set(rows.locator("a").evaluate_all("links => links.map(a => a.textContent)")) == {"/seed/sleeper"})
    page.fill("#events-app", "")
    expect(page.locator('#events tr[data-type="AppDeleted"]')).to_have_count(1)
    shot(page, "events", full_page=False)
    phase("events")

    # The server goes away and comes back: the page says so, then resumes
    # from where it was (no new load of the state), without a gap, and
    # sees what changed while it was away.
    page.click('header a[href="#/apps"]')
    loaded = page.evaluate("window.strideStore.loaded.seq")
    stride.stop()
    expect(page.locator("#unreachable")).to_be_visible()
    expect(page.locator("#connection")).to_have_attribute("data-status", "down")
    shot(page, "unreachable")
    stride.start()
    stride.call("PUT", "/v2/apps/seed/sleeper", {"instances": 2})
    expect(page.locator("#connection")).to_have_attribute("data-status", "live")
    expect(running(page, "/seed/sleeper")).to_have_text("2 / 2")
    assert page.evaluate("window.sameDocument") is True, "the page reloaded"
    ui_matches_server(page, stride)
    resumed = page.evaluate("[window.strideStore.loaded.seq, window.strideStore.resyncs]")
    assert resumed == [loaded, 0], f"loaded at {loaded}, then {resumed}: the page did not resume"
    phase("server restart")

    # The server's figures (from /metrics, where the server has it).
    figures = page.locator("#server-figures")
    expect(figures).to_be_visible()
    expect(page.locator("#chart-lag path.line")).to_have_count(1)
    expect(page.locator("#chart-ack path.line.s1")).to_have_count(1)

    # A token is sent as a bearer token on every call and on the stream.
    sent = []
    page.on("request", lambda r: sent.append((r.url, r.headers.get("authorization"))))
    page.click("#token-toggle")
    page.fill("#token", TOKEN)
    with page.expect_websocket(lambda ws: "/v1/stream?" in ws.url) as stream:
        page.click("form.token button")
    assert f"access_token={TOKEN}" in stream.value.url, stream.value.url
    expect(page.locator("#connection")).to_have_attribute("data-status", "live")
    state_calls = [auth for url, auth in sent if url.endswith("/v1/state")]
    assert state_calls and all(a == f"Bearer {TOKEN}" for a in state_calls), sent
    page.evaluate("localStorage.removeItem('stride.token')")
    phase("token")
    print("ui walk: ok")


# Records, in the page, when the app list first shows the last bench app
# running: ms since navigation started.
READY_OBSERVER = """
new MutationObserver((_, observer) => {
  const cell = document.querySelector('tr[data-app="/bench/app49"] [data-field="running"]');
  if (cell && cell.textContent === '1 / 1') { window.readyAt = performance.now(); observer.disconnect(); }
}).observe(document, {subtree: true, childList: true, characterData: true});
"""

# Records when the app list shows `target` instances of /bench/app0
# (Date.now(), comparable with the server's commit times on this machine).
SHOWN_OBSERVER = """([target]) => {
  window.shownAt = null;
  const row = document.querySelector('tr[data-app="/bench/app0"]');
  new MutationObserver((_, observer) => {
    if (row.querySelector('[data-field="running"]').textContent.endsWith(`/ ${target}`)) {
      window.shownAt = Date.now();
      observer.disconnect();
    }
  }).observe(row, {subtree: true, childList: true, characterData: true});
}"""

# The baseline beside the page: a bare websocket on the same stream, in
# the same page, noting when each scale event arrives.
BARE_SOCKET = """() => new Promise((opened) => {
  window.bareAt = {};
  const ws = new WebSocket(`ws://${location.host}/v1/stream?type=AppScaled`);
  ws.onmessage = (m) => { const e = JSON.parse(m.data); if (e.seq) window.bareAt[e.seq] = Date.now(); };
  ws.onopen = opened;
})"""


def bench(binary, apps=50, rounds=20, changes=50):
    """Page load and commit-to-screen, each beside its baseline in the same
    run: the two API calls the page's load waits on, fetched bare; and a
    bare websocket on the same stream in the same page."""
    data_dir = tempfile.mkdtemp(prefix="stride-ui-bench-")
    stride = Stride(binary, data_dir, free_port())
    stride.start()
    try:
        for i in range(apps):
            stride.call("POST", "/v2/apps", {"id": f"/bench/app{i}", "cmd": "sleep 1000", "instances": 1,
                                             "cpus": 0.01, "mem": 8})
        wait_for(f"{apps} apps running",
                 lambda: len(stride.call("GET", "/v2/tasks?status=running")["tasks"]) >= apps)
        with sync_playwright() as p:
            browser = launch(p)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(TIMEOUT_MS)
            page.add_init_script(READY_OBSERVER)
            loads, raws = [], []
            for _ in range(rounds):
                page.goto(stride.url + "/ui/")
                # Polled from here: the page's CSP forbids wait_for_function's eval.
                try:
                    loads.append(wait_for("the app list", lambda: page.evaluate("window.readyAt")))
                except AssertionError:
                    shot(page, "bench-failure")
                    print(page.evaluate("document.body.innerText"))
                    raise
                raws.append(page.evaluate("""async () => { const t = performance.now();
                    await Promise.all([fetch('/v1/state').then(r => r.json()), fetch('/v1/info').then(r => r.json())]);
                    return performance.now() - t; }"""))
            expect(page.locator("#connection")).to_have_attribute("data-status", "live")
            page.evaluate(BARE_SOCKET)
            shown, bare = [], []
            for i in range(changes):
                target = 2 + i % 2
                page.evaluate(SHOWN_OBSERVER, [target])
                answer = stride.call("PUT", "/v2/apps/bench/app0?force=true", {"instances": target})
                seen = wait_for("the change on screen", lambda: page.evaluate("window.shownAt"))
                event = stride.call("GET", "/v1/audit?app=/bench/app0&type=AppScaled&order=desc&limit=1")["events"][0]
                assert answer["deploymentId"] and event["instances"] == target, (answer, event)
                arrived = wait_for("the bare socket's copy", lambda: page.evaluate(f"window.bareAt[{event['seq']}]"))
                committed = iso_ms(event["at"])
                shown.append(seen - committed)
                bare.append(arrived - committed)
                time.sleep(0.05)
            browser.close()
    finally:
        stride.stop()
    report = {
        "apps": apps,
        "page_load_ms": summary(loads),
        "bare_state_and_info_ms": summary(raws),
        "commit_to_screen_ms": summary(shown),
        "commit_to_bare_websocket_ms": summary(bare),
    }
    report["ratios_p50"] = {
        "page_load / bare_state_and_info": round(report["page_load_ms"]["p50"] / report["bare_state_and_info_ms"]["p50"], 2),
        "commit_to_screen / commit_to_bare_websocket": round(
            report["commit_to_screen_ms"]["p50"] / max(report["commit_to_bare_websocket_ms"]["p50"], 0.1), 2),
    }
    print(json.dumps(report, indent=2))
    print("ui bench: ok")


def iso_ms(at):
    from datetime import datetime
    return datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp() * 1000


def summary(values):
    ordered = sorted(values)
    return {"n": len(ordered), "p50": round(statistics.median(ordered), 1),
            "p90": round(ordered[int(0.9 * (len(ordered) - 1))], 1), "max": round(ordered[-1], 1)}


if __name__ == "__main__":
    if "--bench" in sys.argv[2:]:
        bench(sys.argv[1])
    else:
        walk(sys.argv[1])
