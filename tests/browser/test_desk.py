"""The desk page in a real browser (headless Chromium) against the local loop: two agents in two browsers,
the waiting list, accept and capacity, fresh messages within 3 s, the remaining sends, the reply box
disabled with its reason, quick replies, tags, release and close, sign-in (wrong password, new password,
token refresh), the language toggle, statistics, and the phone layout at 390x844. Screenshots go to
.local/screenshots/ (and docs/img/ with KEFU_SCREENSHOTS_FOR_DOCS=1). Run through tests/browser/run.sh.
"""

import base64
import secrets
import tempfile
import time
import unittest

from selenium.webdriver.support.ui import Select

from stack import Desk, Stack, until

FRESH_SECS = 3.0
# A 4x4 PNG (a reply's image).
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAQAAAAECAIAAAAmkwkpAAAAFklEQVR4nGP8z8DAwMDAxMDAwMDAAAANHQEDasKb6QAAAABJRU5ErkJggg==")


def user():
    return f"oBrowser{secrets.token_hex(6)}"


class DeskTest(unittest.TestCase):
    stack = None

    @classmethod
    def setUpClass(cls):
        cls.stack = Stack()
        # Agent B: a plain agent with room for one conversation.
        cls.b_user, cls.b_password, cls.b_sub = cls.stack.create_agent("Agent B", capacity=1)
        # Only the enter-session event: a window of one send for 60 s, expired by the last test.
        cls.expiring = user()
        cls.stack.simulate(cls.expiring, enter_session="expiry-test")
        cls.expiring_at = time.monotonic() + 60

    def setUp(self):
        self.desks = []

    def tearDown(self):
        for d in self.desks:
            d.quit()

    def desk(self, **kw):
        d = Desk(self.stack, **kw)
        self.desks.append(d)
        return d

    def admin_desk(self, **kw):
        d = self.desk(**kw)
        d.sign_in(self.stack.admin_user, self.stack.admin_password)
        return d

    def accepted(self, desk, open_id):
        """Opens and accepts the conversation; waits until the page shows it held by this agent."""
        desk.open(open_id)
        desk.click("accept-button")
        until(lambda: desk.attr("conversation", "data-mine") == "true", 10, f"{open_id} accepted")

    # -- the scenario of two agents ------------------------------------------------------------------
    def test_two_agents_waiting_accept_capacity_fresh_reply_and_exhaustion(self):
        s = self.stack
        a = self.admin_desk()
        b = self.desk()
        b.sign_in(self.b_user, self.b_password)
        self.assertEqual(b.text("me-name"), "Agent B")
        self.assertFalse(b.shown("nav-stats"), "statistics are for admins only")
        self.assertTrue(a.shown("nav-stats"))

        u1 = user()
        s.simulate(u1, text="hello from u1")
        for d, who in ((a, "A"), (b, "B")):
            until(lambda d=d: u1 in d.list_ids("waiting"), 15, f"{u1} in {who}'s waiting list")
        self.assertIn("hello from u1", b.item("waiting", u1).text)
        self.assertGreaterEqual(int(b.text("waiting-count")), 1)

        # Not held yet: the reply box is disabled with the reason.
        a.open(u1)
        self.assertEqual(a.attr("refusal", "data-reason"), "accept_first")
        self.assertIn("Accept the conversation first", a.text("refusal"))
        self.assertIsNotNone(a.tid("reply-input").get_attribute("disabled"))
        self.assertIn(("in", "text", "hello from u1"), a.messages())

        # A accepts: gone from B's waiting list within 3 s, in A's own list.
        a.click("accept-button")
        until(lambda: a.attr("conversation", "data-mine") == "true", 10, "A holds u1")
        t0 = time.monotonic()
        until(lambda: u1 not in b.list_ids("waiting"), FRESH_SECS, f"{u1} gone from B's waiting list")
        self.assertLessEqual(time.monotonic() - t0, FRESH_SECS + 0.5)
        until(lambda: u1 in a.list_ids("mine"), FRESH_SECS, f"{u1} in A's conversations")
        self.assertIn("you", a.text("conv-status"))
        self.assertTrue(any(m[0] == "desk" and m[1] == "accepted" for m in a.messages()),
                        "the accepted event in the timeline")
        self.assertIsNone(a.attr("refusal", "data-reason"))
        self.assertIsNone(a.tid("reply-input").get_attribute("disabled"))

        # Capacity: B (capacity 1) accepts u2, then cannot accept u3.
        u2, u3 = user(), user()
        s.simulate(u2, text="hello from u2")
        s.simulate(u3, text="hello from u3")
        until(lambda: {u2, u3} <= set(b.list_ids("waiting")), 15, "u2 and u3 in B's waiting list")
        self.accepted(b, u2)
        until(lambda: u2 in b.list_ids("mine"), FRESH_SECS, "u2 in B's conversations")
        b.open(u3)
        b.click("accept-button")
        until(lambda: b.attr("conv-error", "data-error") == "at_capacity", 10, "B refused u3: at_capacity")
        self.assertIn("at_capacity", b.text("conv-error"))
        self.assertEqual(b.status(), "waiting")
        self.assertIn(u3, b.list_ids("waiting"))

        # Unread: a new message on u2 while B looks at u3 shows a badge; opening u2 clears it.
        s.simulate(u2, text="are you there?")
        until(lambda: (b.badge(u2) or 0) >= 1, 15, "an unread badge on u2")
        b.open(u2)
        until(lambda: b.badge(u2) is None, FRESH_SECS + 1.5, "u2's unread badge gone once opened")

        # Freshness: a new user message shows in A's open conversation within 3 s of being stored.
        token_a = s.admin_token()
        s.simulate(u1, text="second message from u1")
        s.stored(token_a, u1, "second message from u1")
        t0 = time.monotonic()
        until(lambda: ("in", "text", "second message from u1") in a.messages(), FRESH_SECS,
              "the new message in A's open conversation")
        # The new message opened a fresh window: 5 sends.
        until(lambda: a.text("remaining") == "5", FRESH_SECS, "5 sends left")
        self.assertRegex(a.text("countdown"), r"4[0-9]:[0-5][0-9]:[0-5][0-9]")

        # A reply goes out and the remaining count drops on screen.
        a.reply("hi u1, how can I help?")
        until(lambda: a.text("remaining") == "4", 10, "4 sends left after the reply")
        until(lambda: ("out", "text", "hi u1, how can I help?") in a.messages(), FRESH_SECS,
              "the reply in the conversation")
        self.assertEqual(a.tid("reply-input").get_attribute("value"), "", "the reply box is emptied")

        # The rest of the window spent through the sender: the page disables the box with the reason.
        sent = 0
        for _ in range(10):
            status, body = s.local_send(u1, f"spend {sent}")
            if status != 200:
                self.assertEqual(body.get("error"), "quota_exhausted", body)
                break
            sent += 1
        self.assertEqual(sent, 4, "four units were left")
        until(lambda: a.attr("refusal", "data-reason") == "quota_exhausted", FRESH_SECS + 1,
              "the reply box disabled: quota_exhausted")
        self.assertIn("No sends left", a.text("refusal"))
        self.assertEqual(a.text("remaining"), "0")
        self.assertIsNotNone(a.tid("reply-input").get_attribute("disabled"))
        self.assertIsNotNone(a.tid("reply-send").get_attribute("disabled"))
        a.screenshot("desktop-exhausted")

        # Nothing of the messages went to the console.
        logs = " ".join(e["message"] for d in (a, b) for e in d.driver.get_log("browser"))
        for secret_text in ("hello from u1", "second message", "how can I help", "are you there"):
            self.assertNotIn(secret_text, logs)
        # And the page ran within its content security policy.
        self.assertNotIn("Content Security Policy", logs)

    # -- quick replies ---------------------------------------------------------------------------------
    def test_quick_reply_by_shortcut_and_by_click(self):
        s = self.stack
        status, body = s.admin("PUT", s.app_path("/quick-replies/browser-thanks"),
                               {"shortcut": "thanks", "text": "Thank you for waiting!"})
        self.assertEqual(status, 200, body)
        u = user()
        s.simulate(u, text="quick reply please")
        a = self.admin_desk()
        self.accepted(a, u)
        until(lambda: "thanks" in [e.get_attribute("data-shortcut") for e in a.tids("quick-reply")], 10,
              "the quick reply in the side list")

        box = a.tid("reply-input")
        box.send_keys("/than")
        until(lambda: [e.get_attribute("data-shortcut") for e in a.tids("qr-suggest-item")] == ["thanks"]
              and a.shown("qr-suggest"), 5, "the suggestion for /than")
        box.send_keys("ks ")
        self.assertEqual(box.get_attribute("value"), "Thank you for waiting!")
        self.assertFalse(a.shown("qr-suggest"))
        a.click("reply-send")
        until(lambda: ("out", "text", "Thank you for waiting!") in a.messages(), 10, "the quick reply sent")
        until(lambda: a.text("remaining") == "4", 10, "4 sends left")

        # The admin adds one on the page; a click inserts it.
        a.tid("qr-shortcut").send_keys("bye")
        a.tid("qr-text").send_keys("Goodbye and have a nice day.")
        a.click("qr-save")
        until(lambda: "bye" in [e.get_attribute("data-shortcut") for e in a.tids("quick-reply")], 10,
              "the new quick reply listed")
        status, body = s.admin("GET", s.app_path("/quick-replies"))
        self.assertIn(("bye", "Goodbye and have a nice day."),
                      [(q["shortcut"], q["text"]) for q in body["quick_replies"]])
        a.driver.find_element("css selector", '[data-testid="quick-reply"][data-shortcut="bye"]').click()
        self.assertEqual(a.tid("reply-input").get_attribute("value"), "Goodbye and have a nice day.")
        # Tab expands a suggestion too.
        a.tid("reply-input").clear()
        a.tid("reply-input").send_keys("/by\t")
        self.assertEqual(a.tid("reply-input").get_attribute("value"), "Goodbye and have a nice day.")
        # Deleted from the page.
        a.driver.find_element("css selector",
                              '[data-testid="quick-reply"][data-shortcut="bye"] [data-testid="qr-delete"]').click()
        until(lambda: "bye" not in [e.get_attribute("data-shortcut") for e in a.tids("quick-reply")], 10,
              "the quick reply deleted")

    # -- tags, release, close, image ----------------------------------------------------------------
    def test_tags_release_close_and_image(self):
        s = self.stack
        u = user()
        s.simulate(u, text="tag me")
        a = self.admin_desk()
        self.accepted(a, u)
        a.tid("tags-input").clear()
        a.tid("tags-input").send_keys("vip,  refund, vip")
        a.click("tags-save")
        # The box shows what the server kept (trimmed, once each), in its order.
        until(lambda: a.tid("tags-input").get_attribute("value") in ("vip, refund", "refund, vip"), 10,
              "the tags saved")
        until(lambda: "vip" in a.item("mine", u).text, FRESH_SECS + 1, "the tag in the list")
        status, body = s.http("GET", s.app_path("/tags/vip"), token=s.admin_token())
        self.assertEqual(status, 200, body)
        self.assertIn(u, [c["key"]["open_id"] for c in body["conversations"]])

        path = tempfile.NamedTemporaryFile(suffix=".png", delete=False).name
        with open(path, "wb") as f:
            f.write(PNG)
        a.tid("image-input").send_keys(path)
        until(lambda: any(m[0] == "out" and m[1] == "image" for m in a.messages()), 10, "the image reply")
        self.assertIsNone(a.attr("conv-error", "data-error"))

        a.click("release-button")
        until(lambda: a.status() == "waiting", 10, "released")
        until(lambda: u in a.list_ids("waiting"), FRESH_SECS, "back on the waiting list")
        self.assertEqual(a.attr("refusal", "data-reason"), "accept_first")
        self.assertTrue(any(m[0] == "desk" and m[1] == "released" for m in a.messages()))
        self.accepted(a, u)
        a.click("close-button")
        until(lambda: a.status() == "closed", 10, "closed")
        until(lambda: u not in a.list_ids("mine") and u not in a.list_ids("waiting"), FRESH_SECS,
              "gone from the lists")
        self.assertTrue(any(m[0] == "desk" and m[1] == "closed" for m in a.messages()))

    def test_message_kinds_render(self):
        s = self.stack
        u = user()
        s.simulate(u, enter_session="browser-test")
        s.simulate(u, text="kinds")
        # Its PicUrl is plain http (never shown as is); its MediaId is fetched and kept in the bucket.
        s.simulate(u, image="http://127.0.0.1:9/not-signed.png")
        s.simulate(u, miniprogram="Order 1024,pages/order/index?id=1024")
        a = self.admin_desk()
        a.open(u)
        until(lambda: len([m for m in a.messages() if m[0] == "in"]) >= 4, 15, "four inbound messages")
        kinds = {m[1]: m[2] for m in a.messages() if m[0] == "in"}
        self.assertEqual(kinds.get("event"), "The user entered the session (browser-test)")
        self.assertEqual(kinds.get("text"), "kinds")
        self.assertNotIn("127.0.0.1:9", a.js(
            "return [...document.querySelectorAll('[data-testid=\"message\"] img')].map(i => i.src).join(' ');"),
            "an unsigned http picture is never loaded")
        # The kept copy appears (a signed URL of the bucket), and it loads.
        until(lambda: a.js(
            "const i = document.querySelector('[data-testid=\"message\"][data-msg-type=\"image\"] img');"
            "return !!(i && i.src.includes('X-Amz-Signature=') && i.complete && i.naturalWidth > 0);"), 15,
              "the kept image shown through its signed URL")
        card = a.js("const e = document.querySelector('[data-testid=\"message\"][data-msg-type=\"miniprogrampage\"]');"
                    "return e && e.textContent;")
        self.assertIn("[mini program]", card)
        self.assertIn("Order 1024", card)

    # -- sign-in ---------------------------------------------------------------------------------------
    def test_sign_in_refused_then_new_password_then_refresh(self):
        s = self.stack
        d = self.desk()
        d.sign_in(s.admin_user, "not-the-password", expect=None)
        until(lambda: d.attr("signin-error", "data-error") == "sign_in_refused", 10, "sign_in_refused")
        self.assertIn("Wrong username or password", d.text("signin-error"))
        self.assertEqual(d.attr("app", "data-screen"), "signin")

        # Signed in to the pool, but nobody's agent: refused with the label, nothing kept.
        stranger, password, _ = s.create_user()
        d.sign_in(stranger, password, expect=None)
        until(lambda: d.attr("signin-error", "data-error") == "not_an_agent", 10, "not_an_agent")
        self.assertIn("not an agent", d.text("signin-error"))
        self.assertEqual(d.attr("app", "data-screen"), "signin")
        self.assertIsNone(d.js("return sessionStorage.getItem('kefu.desk.tokens')"))

        username, temporary, _ = s.create_agent("Agent New", temporary=True)
        d.sign_in(username, temporary, expect=None)
        until(lambda: d.shown("newpw-form"), 10, "the new-password form")
        self.assertFalse(d.shown("signin-form"))
        d.tid("newpw-password").send_keys("Fresh-" + secrets.token_urlsafe(10) + "7x")
        d.click("newpw-submit")
        until(lambda: d.attr("app", "data-screen") == "list", 15, "signed in after the new password")
        self.assertEqual(d.text("me-name"), "Agent New")

        # An access token the API refuses: the page refreshes it with the refresh token and carries on.
        d.js("const t = JSON.parse(sessionStorage.getItem('kefu.desk.tokens'));"
             "t.access = 'not-a-token'; sessionStorage.setItem('kefu.desk.tokens', JSON.stringify(t));")
        d.load()
        until(lambda: d.attr("app", "data-screen") == "list", 15, "signed in again through the refresh route")
        access = d.js("return JSON.parse(sessionStorage.getItem('kefu.desk.tokens')).access")
        self.assertNotEqual(access, "not-a-token")
        # Without a usable refresh token: back to sign-in.
        d.js("sessionStorage.setItem('kefu.desk.tokens', JSON.stringify({access: 'x', refresh: 'y'}))")
        d.load()
        until(lambda: d.attr("app", "data-screen") == "signin", 15, "the sign-in screen")
        self.assertIsNone(d.js("return sessionStorage.getItem('kefu.desk.tokens')"))

    def test_status_auto_accept_and_language(self):
        s = self.stack
        # An agent of the second app only, which no other test writes to.
        username, password, _ = s.create_agent("Agent Auto", capacity=2, app=s.other_app)
        u = user()
        s.simulate(u, text="auto please", app=s.other_app)
        d = self.desk()
        d.sign_in(username, password)
        until(lambda: u in d.list_ids("waiting"), 15, "the second app's user waiting")
        token = s.sign_in(username, password)
        me = lambda: s.http("GET", "/desk/api/me", token=token)[1]  # noqa: E731
        Select(d.tid("status-select")).select_by_value("online")
        until(lambda: d.attr("presence", "data-presence") == "online", 10, "presence online")
        self.assertEqual(me()["status"], "online")
        self.assertIn(u, d.list_ids("waiting"), "nothing taken without auto-accept")
        # Auto-accept on while online: the longest-waiting conversation comes to this agent unasked.
        d.click("auto-accept")
        until(lambda: me().get("auto_accept") is True, 10, "auto_accept stored")
        until(lambda: u in d.list_ids("mine") and u not in d.list_ids("waiting"), FRESH_SECS + 1,
              "the waiting conversation auto-accepted")

        d.click("lang-toggle")
        until(lambda: d.text("signin-submit") == "登录", 5, "Chinese labels")
        self.assertEqual(d.js("return document.documentElement.lang"), "zh-CN")
        self.assertEqual(d.text("sign-out"), "退出")
        self.assertEqual(d.text("mine-empty"), "暂无会话。")
        d.click("lang-toggle")
        until(lambda: d.text("sign-out") == "Sign out", 5, "English labels again")
        # Offline hands the conversations back.
        d.click("auto-accept")
        until(lambda: me().get("auto_accept") is False, 10, "auto_accept off")
        Select(d.tid("status-select")).select_by_value("offline")
        until(lambda: me().get("status") == "offline", 10, "offline")
        until(lambda: u in d.list_ids("waiting") and u not in d.list_ids("mine"), FRESH_SECS + 1,
              "released on going offline")

    def test_statistics_for_admins(self):
        a = self.admin_desk()
        a.click("nav-stats")
        until(lambda: a.attr("app", "data-screen") == "stats", 5, "the statistics screen")

        def answered():
            rows = a.tids("stats-row")
            return ("rows", rows) if rows else (("error", a.attr("stats-error", "data-error"))
                                                 if a.attr("stats-error", "data-error") else None)
        kind, value = until(answered, 10, "statistics or their error label")
        if kind == "rows":
            self.assertRegex(value[0].get_attribute("data-date"), r"^\d{4}-\d{2}-\d{2}$")
            self.assertIn("Conversations", a.text("stats-table"))
        else:
            self.assertIn(value, ("not_found", "unknown_route"))
            self.assertIn("Statistics are not available", a.text("stats-error"))
        a.click("stats-back")
        until(lambda: a.attr("app", "data-screen") == "list", 5, "back to the lists")

    def test_polling_pauses_while_hidden(self):
        a = self.admin_desk()
        count = ("return performance.getEntriesByType('resource')"
                 ".filter(e => e.name.endsWith('/desk/api/inbox')).length")

        def visibility(hidden):
            a.js("Object.defineProperty(document, 'hidden', {value: arguments[0], configurable: true});"
                 "document.dispatchEvent(new Event('visibilitychange'));", hidden)
        a.js("performance.setResourceTimingBufferSize(1000); performance.clearResourceTimings()")
        until(lambda: a.js(count) >= 2, 5, "the inbox polled every 1.5 s")
        visibility(True)
        time.sleep(1.0)  # one poll may be in flight
        before = a.js(count)
        time.sleep(3.5)
        self.assertEqual(a.js(count), before, "no inbox poll while the tab is hidden")
        visibility(False)
        until(lambda: a.js(count) > before, 1.5, "polling resumed at once when shown")

    # -- the phone --------------------------------------------------------------------------------------
    def assert_fits(self, d, what):
        width = d.js("return window.innerWidth")
        self.assertEqual(width, 390)
        self.assertLessEqual(d.js("return document.documentElement.scrollWidth"), width, f"{what}: page scrolls sideways")
        wide = d.js("""return [...document.querySelectorAll('body *')].filter(e => {
              const r = e.getBoundingClientRect();
              return e.getClientRects().length && !e.closest('.scroll') && (r.right > innerWidth + 0.5 || r.left < -0.5);
            }).map(e => (e.dataset.testid || e.tagName) + ':' + Math.round(e.getBoundingClientRect().right));""")
        self.assertEqual(wide, [], f"{what}: elements wider than the viewport")

    def test_phone_layout(self):
        s = self.stack
        u = user()
        s.simulate(u, text="hello from a phone test")
        d = self.desk(phone=True)
        d.load()
        until(lambda: d.shown("signin-form"), 10, "sign-in on the phone")
        self.assert_fits(d, "sign-in")
        d.screenshot("phone-signin")
        d.sign_in(s.admin_user, s.admin_password)
        until(lambda: u in d.list_ids("waiting"), 15, "the waiting list on the phone")
        self.assertTrue(d.shown("waiting-list"))
        self.assertFalse(d.shown("conversation"), "one screen at a time")
        self.assert_fits(d, "list")
        d.screenshot("phone-list")
        d.open(u)
        until(lambda: d.shown("conversation") and not d.shown("lists"), 5, "the conversation screen")
        self.assertTrue(d.shown("conv-back"))
        self.assertTrue(d.shown("reply-input"))
        self.assertIn(("in", "text", "hello from a phone test"), d.messages())
        self.assert_fits(d, "conversation")
        d.screenshot("phone-conversation")
        d.click("conv-back")
        until(lambda: d.shown("lists") and not d.shown("conversation"), 5, "back to the list")

    # -- the send window running out (last but one: it waits for the minute setUpClass started) ---------
    def test_zy_window_expires_on_screen(self):
        a = self.admin_desk()
        self.accepted(a, self.expiring)
        self.assertIn(("in", "event", "The user entered the session (expiry-test)"), a.messages())
        left = self.expiring_at - time.monotonic()
        if left > 5:
            # Still open: one send left, counting down.
            self.assertEqual(a.text("remaining"), "1")
            self.assertRegex(a.text("countdown"), r"^0:00:[0-5][0-9] left$")
            self.assertIsNone(a.attr("refusal", "data-reason"))
        until(lambda: a.attr("refusal", "data-reason") == "window_expired", max(left, 0) + 10,
              "the reply box disabled: window_expired")
        self.assertIn("The send window has closed", a.text("refusal"))
        self.assertEqual(a.text("countdown"), "window closed")
        self.assertIsNotNone(a.tid("reply-input").get_attribute("disabled"))
        until(lambda: a.text("remaining") == "0", FRESH_SECS, "no sends left once expired")

    # -- screenshots for the docs (last: a tidy conversation) --------------------------------------------
    def test_zz_screenshots(self):
        s = self.stack
        s.admin("PUT", s.app_path("/quick-replies/browser-thanks"), {"shortcut": "thanks", "text": "Thank you for waiting!"})
        s.admin("PUT", s.app_path("/quick-replies/browser-track"),
                {"shortcut": "track", "text": "You can follow your parcel under Orders › Tracking."})
        waiting = user()
        s.simulate(waiting, text="Can I change my delivery address?")
        u = "oDemoCustomer0001"
        s.simulate(u, enter_session="order-page")
        time.sleep(1.1)  # a text in the same second as the event would keep the event's 1-unit window
        s.simulate(u, text="Hi, my order #1024 has not arrived yet.")
        s.simulate(u, miniprogram="Order #1024,pages/order/index?id=1024")
        a = self.admin_desk()
        self.accepted(a, u)
        a.reply("Sorry about that! Let me check order #1024 for you.")
        until(lambda: any(m[0] == "out" for m in a.messages()), 10, "the reply")
        a.tid("tags-input").clear()
        a.tid("tags-input").send_keys("vip, delivery")
        a.click("tags-save")
        until(lambda: "delivery" in a.item("mine", u).text, 10, "the tags saved")
        until(lambda: waiting in a.list_ids("waiting"), 15, "someone waiting")
        a.tid("reply-input").send_keys("/t")
        until(lambda: a.shown("qr-suggest"), 5, "suggestions")
        a.driver.set_window_size(1200, 720)
        time.sleep(0.5)
        a.screenshot("desktop", "desk-desktop.png")

        p = self.desk(phone=True, scale=1.5)
        p.sign_in(s.admin_user, s.admin_password)
        p.open(u)
        until(lambda: any(m[0] == "out" for m in p.messages()), 10, "the conversation on the phone")
        p.js("document.querySelector('[data-testid=\"messages\"]').scrollTop = 1e6")
        time.sleep(0.3)
        p.screenshot("phone", "desk-phone.png")
        a.tid("reply-input").clear()


if __name__ == "__main__":
    unittest.main()
