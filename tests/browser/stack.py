"""The local stack as the browser tests see it: the desk API over HTTP, agents created in the emulator's
user pool, user messages sent with `kefu simulate`, sends through the sender's POST /messages, and headless
Chromium pages with the desk's data-testid hooks (documented at the top of functions/desk/page/desk.js).

Everything comes from the environment that tests/browser/run.sh exports (the env file infra/local/dev.sh
writes): KEFU_PORT, KEFU_LOCAL_TOKEN, KEFU_APPS_FILE, AWS_ENDPOINT_URL, DESK_USER_POOL_ID, DESK_DEMO_USER,
DESK_DEMO_PASSWORD; plus KEFU_BIN (the built kefu) and KEFU_CHROMIUM / KEFU_CHROMEDRIVER.
"""

import json
import os
import secrets
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import boto3
from selenium import webdriver
from selenium.common.exceptions import (NoSuchElementException, StaleElementReferenceException,
                                        WebDriverException)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / ".local" / "screenshots"
DOCS_IMG = REPO / "docs" / "img"
DOCS_MAX_BYTES = 150_000
CHROMIUM = os.environ.get("KEFU_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("KEFU_CHROMEDRIVER", "/usr/bin/chromedriver")


def env(name):
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"{name} is not set (run the browser tests through tests/browser/run.sh)")
    return value


def until(check, timeout=10.0, what="the condition", interval=0.1):
    """Polls `check` until it answers something truthy and returns that; fails the test after `timeout` s."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            value = check()
            if value:
                return value
            last = value
        except (StaleElementReferenceException, NoSuchElementException) as e:
            last = e
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")
        time.sleep(interval)


class Stack:
    """The running local loop."""

    def __init__(self):
        self.base = f"http://127.0.0.1:{env('KEFU_PORT')}"
        apps = json.load(open(env("KEFU_APPS_FILE")))["apps"]
        wechat = next(a for a in apps if a["platform"] == "wechat" and not a.get("handoff"))
        self.platform, self.app_id = "wechat", wechat["app_id"]
        # A second app, for tests that must not meet the first one's leftovers.
        self.other_app = next(("baidu", a["app_id"]) for a in apps if a["platform"] == "baidu")
        self.kefu = os.environ.get("KEFU_BIN") or str(
            Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target")) / "debug" / "kefu")
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        self.cognito = boto3.client("cognito-idp", endpoint_url=env("AWS_ENDPOINT_URL"), region_name=region,
                                    aws_access_key_id="test", aws_secret_access_key="test")
        self.pool = env("DESK_USER_POOL_ID")
        self.admin_user, self.admin_password = env("DESK_DEMO_USER"), env("DESK_DEMO_PASSWORD")
        self._admin_token = None

    # -- HTTP ------------------------------------------------------------------------------------
    def http(self, method, path, body=None, token=None):
        """(status, JSON body or None)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                status, text = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read()
        try:
            return status, (json.loads(text) if text else None)
        except ValueError:
            return status, text.decode(errors="replace")

    def sign_in(self, username, password):
        status, body = self.http("POST", "/desk/api/session", {"username": username, "password": password})
        assert status == 200 and body.get("outcome") == "tokens", (status, body)
        return body["access_token"]

    def admin_token(self):
        if not self._admin_token:
            self._admin_token = self.sign_in(self.admin_user, self.admin_password)
        return self._admin_token

    def admin(self, method, path, body=None):
        return self.http(method, path, body, self.admin_token())

    def app_path(self, rest=""):
        return f"/desk/api/apps/{self.platform}/{self.app_id}{rest}"

    # -- agents ----------------------------------------------------------------------------------
    def create_agent(self, name, role="agent", capacity=None, temporary=False, app=None):
        """A new user in the emulator's pool, made an agent of the test app (or `app`, a (platform,
        app_id) pair) by the demo admin through PUT /desk/api/apps/{p}/{a}/agents/{sub}.
        Returns (username, password, sub)."""
        username, password, sub = self.create_user(temporary)
        body = {"role": role, "name": name}
        if capacity is not None:
            body["capacity"] = capacity
        platform, app_id = app or (self.platform, self.app_id)
        status, answer = self.admin("PUT", f"/desk/api/apps/{platform}/{app_id}/agents/{sub}", body)
        assert status == 200, (status, answer)
        return username, password, sub

    def create_user(self, temporary=False):
        """A new user in the emulator's pool (with a temporary password: one that must be changed at
        the first sign-in). Returns (username, password, sub)."""
        username = f"browser-{secrets.token_hex(4)}"
        password = "Pw-" + secrets.token_urlsafe(12) + "9a"
        extra = {"TemporaryPassword": password} if temporary else {}
        self.cognito.admin_create_user(UserPoolId=self.pool, Username=username, MessageAction="SUPPRESS",
                                       UserAttributes=[{"Name": "email", "Value": f"{username}@example.test"}], **extra)
        if not temporary:
            self.cognito.admin_set_user_password(UserPoolId=self.pool, Username=username, Password=password,
                                                 Permanent=True)
        user = self.cognito.admin_get_user(UserPoolId=self.pool, Username=username)
        sub = next(a["Value"] for a in user["UserAttributes"] if a["Name"] == "sub")
        return username, password, sub

    # -- the user's side and the sender ----------------------------------------------------------
    def simulate(self, open_id, text=None, image=None, miniprogram=None, enter_session=None, app=None):
        """A user message through `kefu simulate wechat|baidu` (the ingress, the queue, the processor),
        to the test app or `app` (a (platform, app_id) pair)."""
        platform, app_id = app or (self.platform, self.app_id)
        args = [self.kefu, "simulate", platform, "--app", app_id, "--from", open_id]
        for flag, value in (("--text", text), ("--image", image), ("--miniprogram", miniprogram),
                            ("--enter-session", enter_session)):
            if value is not None:
                args += [flag, value]
        r = subprocess.run(args, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, f"kefu simulate failed ({r.returncode}): {r.stderr[-2000:]}"

    def local_send(self, open_id, content):
        """A send through the sender's own route (the integration's bearer token)."""
        return self.http("POST", "/messages", {"app_id": self.app_id, "open_id": open_id, "msg_type": "text",
                                               "content": content}, env("KEFU_LOCAL_TOKEN"))

    def inbox(self, token):
        status, body = self.http("GET", "/desk/api/inbox", token=token)
        assert status == 200, (status, body)
        return body

    def stored(self, token, open_id, preview, timeout=20):
        """Waits until the conversation's newest inbound message (as the inbox shows it) is `preview`."""
        def seen():
            box = self.inbox(token)
            return any(c["key"]["open_id"] == open_id and preview in (c.get("last_in_preview") or "")
                       for c in box["waiting"] + box["mine"])
        return until(seen, timeout, f"the message from {open_id} to be stored", interval=0.2)


class Desk:
    """One browser with the desk page."""

    def __init__(self, stack, phone=False, scale=1):
        self.stack = stack
        o = webdriver.ChromeOptions()
        o.binary_location = CHROMIUM
        for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                  "--lang=en-US", "--no-first-run", "--disable-extensions", "--hide-scrollbars"):
            o.add_argument(a)
        if phone:
            o.add_experimental_option("mobileEmulation", {
                "deviceMetrics": {"width": 390, "height": 844, "pixelRatio": scale, "touch": True},
                "userAgent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
                             "(KHTML, like Gecko) Mobile/15E148"})
        else:
            o.add_argument("--window-size=1280,800")
            o.add_argument(f"--force-device-scale-factor={scale}")
        o.add_experimental_option("prefs", {"intl.accept_languages": "en-US,en"})
        o.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(options=o, service=Service(CHROMEDRIVER))
        self.driver.set_script_timeout(10)

    def quit(self):
        try:
            self.driver.quit()
        except WebDriverException:
            pass

    # -- finding things --------------------------------------------------------------------------
    def tid(self, name):
        return self.driver.find_element(By.CSS_SELECTOR, f'[data-testid="{name}"]')

    def tids(self, name):
        return self.driver.find_elements(By.CSS_SELECTOR, f'[data-testid="{name}"]')

    def js(self, script, *args):
        return self.driver.execute_script(script, *args)

    def attr(self, name, attribute):
        return self.tid(name).get_attribute(attribute)

    def text(self, name):
        return self.js("const e = document.querySelector(`[data-testid=\"${arguments[0]}\"]`);"
                       "return e ? e.textContent : null;", name)

    def shown(self, name):
        """Whether the element is rendered (not display:none anywhere up the tree)."""
        return self.js("const e = document.querySelector(`[data-testid=\"${arguments[0]}\"]`);"
                       "return !!e && e.getClientRects().length > 0;", name)

    def list_ids(self, which):
        """The open ids in the waiting or mine list, in order."""
        return self.js("return [...document.querySelectorAll(`[data-testid=\"${arguments[0]}-item\"]`)]"
                       ".map(e => e.dataset.openId);", which)

    def item(self, which, open_id):
        return self.driver.find_element(
            By.CSS_SELECTOR, f'[data-testid="{which}-item"][data-open-id="{open_id}"]')

    def badge(self, open_id):
        """The unread count on the mine list's item, or None without a badge."""
        return self.js("const e = document.querySelector(`[data-testid=\"mine-item\"][data-open-id=\"${arguments[0]}\"]"
                       " [data-testid=\"unread-badge\"]`); return e ? +e.textContent : null;", open_id)

    def messages(self):
        """[(direction, msg_type, text)] of the open conversation."""
        return [tuple(m) for m in self.js(
            "return [...document.querySelectorAll('[data-testid=\"message\"]')]"
            ".map(e => [e.dataset.direction, e.dataset.msgType, e.firstChild ? e.firstChild.textContent : '']);")]

    # -- doing things ----------------------------------------------------------------------------
    def load(self):
        self.driver.get(self.stack.base + "/desk/")
        until(lambda: self.attr("app", "data-screen"), 10, "the page")

    def sign_in(self, username, password, expect="list"):
        self.load()
        until(lambda: self.attr("app", "data-screen") == "signin", 10, "the sign-in screen")
        self.tid("signin-username").clear()
        self.tid("signin-username").send_keys(username)
        self.tid("signin-password").send_keys(password)
        self.tid("signin-submit").click()
        if expect:
            until(lambda: self.attr("app", "data-screen") == expect, 15, f"the {expect} screen after sign-in")

    def open(self, open_id, timeout=15):
        """Opens the conversation from the waiting or the mine list (whichever shows it)."""
        def click():
            for which in ("mine", "waiting"):
                for e in self.driver.find_elements(
                        By.CSS_SELECTOR, f'[data-testid="{which}-item"][data-open-id="{open_id}"]'):
                    e.click()
                    return True
            return False
        until(click, timeout, f"{open_id} in a list")
        until(lambda: (self.attr("conversation", "data-key") or "").endswith("/" + open_id)
              and self.attr("conversation", "data-status"), 10, f"the conversation with {open_id}")

    def status(self):
        return self.attr("conversation", "data-status")

    def click(self, name):
        self.tid(name).click()

    def reply(self, text):
        box = self.tid("reply-input")
        box.send_keys(text)
        self.click("reply-send")

    def screenshot(self, name, docs_name=None):
        SHOTS.mkdir(parents=True, exist_ok=True)
        path = SHOTS / f"{name}.png"
        self.driver.save_screenshot(str(path))
        if docs_name and os.environ.get("KEFU_SCREENSHOTS_FOR_DOCS") == "1":
            DOCS_IMG.mkdir(parents=True, exist_ok=True)
            docs = DOCS_IMG / docs_name
            docs.write_bytes(path.read_bytes())
            size = docs.stat().st_size
            assert size < DOCS_MAX_BYTES, f"{docs} is {size} bytes, over {DOCS_MAX_BYTES}"
        return path

    def console_errors(self):
        """Console entries at SEVERE level, other than failed image loads from test URLs."""
        return [e["message"] for e in self.driver.get_log("browser")
                if e["level"] == "SEVERE" and "Failed to load resource" not in e["message"]]
