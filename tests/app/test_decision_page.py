"""The decision page, tried as a person on a phone would: a real headless Chromium opens
the link from the approval email, the page says what will happen, the person writes a
note and presses the button with the keyboard, sees the outcome; the database agrees.
Opening a page never decides; a decided or expired gate is said plainly.

Needs Debian's ``chromium`` and ``chromium-driver`` (``./run tests`` installs them).
"""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from activities import approval_tokens
from activities.approval_tokens import Purpose
from tests.app.helpers import GATED_PLAN, app_user, insert_job
from tests.waiting import eventually
from workers.keys import Keyring, Use

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
pytestmark = pytest.mark.skipif(
    not (shutil.which(CHROMIUM) and shutil.which(DRIVER)),
    reason="Debian's chromium and chromium-driver are not installed (./run tests installs them)",
)
PHONE = (390, 844)  # CSS pixels of a common phone


@contextmanager
def browser() -> Iterator[Any]:
    """Headless Chromium through its driver, with a fresh profile."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="decision-page-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        f"--window-size={PHONE[0]},{PHONE[1]}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=DRIVER))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _links(text: str) -> dict[str, str]:
    return dict(re.findall(r"^(Approve|Reject): (\S+)$", text, re.MULTILINE))


def read_page(driver: Any, url: str) -> dict[str, Any]:
    """Open the link and read what a person sees."""
    from selenium.webdriver.common.by import By

    driver.get(url)
    image = driver.find_element(By.TAG_NAME, "img")
    return {
        "title": driver.title,
        "text": driver.find_element(By.TAG_NAME, "main").text,
        "buttons": [b.text for b in driver.find_elements(By.TAG_NAME, "button")],
        "image_loaded": driver.execute_script(
            "return arguments[0].complete && arguments[0].naturalWidth > 0", image
        ),
        "fits": driver.execute_script(
            "return document.documentElement.scrollWidth <= window.innerWidth"
        ),
        "label_for_note": driver.find_element(By.CSS_SELECTOR, "label[for=note]").text,
    }


def decide_with_keyboard(driver: Any, note: str) -> dict[str, Any]:
    """Tab to the note, type it, tab to the first button and press Enter."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.wait import WebDriverWait

    focused: list[str] = []
    for _ in range(20):
        ActionChains(driver).send_keys(Keys.TAB).perform()
        active = driver.switch_to.active_element
        focused.append(active.tag_name)
        if active.tag_name == "textarea":
            break
    ActionChains(driver).send_keys(note).send_keys(Keys.TAB).perform()
    button = driver.switch_to.active_element
    pressed = button.text
    button.send_keys(Keys.ENTER)
    outcomes = ("Approved", "Rejected", "Nothing changed", "Try again")
    WebDriverWait(driver, 30, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda d: d.find_element(By.TAG_NAME, "h1").text in outcomes
    )
    heading = driver.find_element(By.TAG_NAME, "h1")
    return {
        "focused": focused,
        "pressed": pressed,
        "heading": heading.text,
        "text": driver.find_element(By.TAG_NAME, "main").text,
    }


def page_text(driver: Any, url: str) -> str:
    from selenium.webdriver.common.by import By

    driver.get(url)
    return str(driver.find_element(By.TAG_NAME, "main").text)


async def test_a_person_decides_on_the_page_from_the_email(app_stack: Any) -> None:
    stack = app_stack
    user = await app_user(stack)
    async with stack.pool.connection() as conn:
        await conn.execute(
            "UPDATE profiles SET full_name = 'Dana Demo' WHERE id = %s", (user.user_id,)
        )
    job_id = await insert_job(stack, user, plan=GATED_PLAN)
    sent = await eventually(
        lambda: next(
            (m for m in stack.emulators.resend.sent_emails() if user.email in m["to"]), None
        ),
        timeout=60,
        what="the approval email",
    )
    links = _links(sent["text"])
    approval = await stack.fetchrow("SELECT * FROM approvals WHERE job_id = %s", job_id)
    assert approval is not None and approval["screenshot_url"].startswith("blob:")

    with browser() as driver:
        seen = await asyncio.to_thread(read_page, driver, links["Approve"])
        assert seen["title"] == "Approve or reject: Delete the 'Old Specs' folder"
        for fact in (
            "Delete the 'Old Specs' folder",
            "Action\ndelete",
            "Platform\nNotion",
            "Job\nTidy the specs",
            f"the assistant working for Dana Demo ({user.email})",
            "Decide by",
            "Waiting for your decision",
        ):
            assert fact in seen["text"], fact
        assert seen["buttons"] == ["Confirm: approve", "Confirm: reject"]
        assert seen["image_loaded"] and seen["fits"]
        assert seen["label_for_note"] == "Note (optional)"
        # Opening (and re-opening) the page decides nothing.
        await asyncio.to_thread(read_page, driver, links["Reject"])
        row = await stack.fetchrow("SELECT status FROM approvals WHERE id = %s", approval["id"])
        assert row == {"status": "pending"}

        await asyncio.to_thread(driver.get, links["Approve"])
        done = await asyncio.to_thread(decide_with_keyboard, driver, "ok from my phone")
        assert done["focused"][-1] == "textarea" and done["pressed"] == "Confirm: approve"
        assert done["heading"] == "Approved"
        assert "The assistant will now: Delete the 'Old Specs' folder." in done["text"]
        assert "Your decision was recorded: approved" in done["text"]
        assert "Your note: ok from my phone" in done["text"]

        later = await asyncio.to_thread(page_text, driver, links["Reject"])
        assert "This request was already approved by" in later and "Nothing changed" in later

    decided = await stack.fetchrow("SELECT * FROM approvals WHERE id = %s", approval["id"])
    assert decided is not None
    assert (decided["status"], decided["decision_channel"], decided["decision_note"]) == (
        "approved",
        "link",
        "ok from my phone",
    )
    job = await eventually(
        lambda: stack.fetchrow(
            "SELECT status FROM jobs WHERE id = %s AND status = 'completed'", job_id
        ),
        timeout=60,
        what="the job completed",
    )
    assert job == {"status": "completed"}


async def test_an_expired_link_and_a_forged_one_are_said_plainly(app_stack: Any) -> None:
    stack = app_stack
    user = await app_user(stack)
    job_id = await insert_job(stack, user, plan=GATED_PLAN)
    approval = await eventually(
        lambda: stack.fetchrow("SELECT id FROM approvals WHERE job_id = %s", job_id),
        timeout=60,
        what="the gate",
    )
    secret = Keyring.from_settings(stack.settings).signing_keys(Use.APPROVAL_TOKENS).current
    expired = approval_tokens.sign(
        secret,
        approval["id"],
        user.email,
        Purpose.APPROVE_LINK,
        datetime.now(UTC) - timedelta(hours=1),
    )
    forged = approval_tokens.sign(
        "not-the-secret",
        approval["id"],
        user.email,
        Purpose.APPROVE_LINK,
        datetime.now(UTC) + timedelta(days=1),
    )
    with browser() as driver:
        old = await asyncio.to_thread(page_text, driver, f"{stack.ingress_url}/approvals/{expired}")
        fake = await asyncio.to_thread(page_text, driver, f"{stack.ingress_url}/approvals/{forged}")
    assert old.startswith("Link expired") and "Nothing was decided" in old
    assert fake.startswith("Link not valid")
    row = await stack.fetchrow("SELECT status FROM approvals WHERE id = %s", approval["id"])
    assert row == {"status": "pending"}
