"""Drives headless Chromium through the live dashboard for engine/tests/live/browser.rs.

    python3 dashboard.py URL SCREENSHOT CHROMIUM CHROMEDRIVER PROFILE_DIR [STEER_TO_USERS]

Loads the page, waits until the request count is above zero and then grows (the numbers move),
reads the per-request table, counts the throughput chart's drawn paths, collects console errors.
With STEER_TO_USERS it then types that many users into the steering field (ramp 0), clicks Apply,
reads when the engine says the change begins, and waits until the active-users card reaches it.
It saves a screenshot, then clicks Stop twice (arm, confirm) and waits for the page to say the run
was interrupted. Prints one JSON object on its last line. Every wait is bounded.
"""

import json
import sys

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

url, screenshot, chromium, chromedriver, profile_dir = sys.argv[1:6]
steer_to = int(sys.argv[6]) if len(sys.argv) > 6 else None

options = webdriver.ChromeOptions()
options.binary_location = chromium
for flag in [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--user-data-dir=" + profile_dir,
    "--window-size=1400,2600",
]:
    options.add_argument(flag)
options.set_capability("goog:loggingPrefs", {"browser": "ALL"})

driver = webdriver.Chrome(service=Service(chromedriver), options=options)
driver.set_page_load_timeout(30)


def describe(d):
    """What the page shows, for the message of a failed wait."""
    text = lambda i: d.find_element(By.ID, i).text
    logs = [e["message"] for e in d.get_log("browser")]
    return "phase %r, stop button %r, banner %r, console %r" % (
        phase(d), text("stop"), text("banner-text"), logs)


def phase(d):
    # textContent, not .text: the stylesheet shows the phase in capitals.
    return d.find_element(By.ID, "phase").get_attribute("textContent")


try:
    driver.get(url)
    wait = WebDriverWait(driver, 30, poll_frequency=0.1)

    def requests():
        value = driver.find_element(By.ID, "requests-total").get_attribute("data-value")
        return int(float(value or 0))

    wait.until(lambda d: requests() > 0)
    first = requests()
    wait.until(lambda d: requests() > first)
    # A couple more updates, so the charts have a few points for the screenshot.
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#chart-throughput svg path")) > 0)
    second = requests()
    wait.until(lambda d: requests() > second)
    names = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#names tbody td.name")]
    result = {
        "first": first,
        "second": requests(),
        "names": names,
        "chart_paths": len(driver.find_elements(By.CSS_SELECTOR, "#chart-throughput svg path")),
        "phase": phase(driver),
    }
    if steer_to is not None:
        def users():
            return int(float(driver.find_element(By.ID, "users").get_attribute("data-value") or 0))

        def answered(d):
            classes = (d.find_element(By.ID, "steer-result").get_attribute("class") or "").split()
            return "ok" in classes or "bad" in classes

        apply = driver.find_element(By.ID, "steer-apply")
        wait.until(lambda d: d.find_element(By.ID, "steer").is_displayed() and apply.is_enabled())
        result["steer_status"] = driver.find_element(By.ID, "steer-status").text
        result["users_before"] = users()
        for field, value in (("steer-to", str(steer_to)), ("steer-ramp", "0")):
            box = driver.find_element(By.ID, field)
            box.clear()
            box.send_keys(value)
        apply.click()
        wait.until(answered)
        answer = driver.find_element(By.ID, "steer-result")
        result["steer_result"] = answer.text
        result["steer_at_s"] = float(answer.get_attribute("data-at-s") or "nan")
        wait.until(lambda d: users() >= steer_to)
        result["users_after"] = users()
        # The status line shows the new target once the page has polled again.
        wait.until(lambda d: "target %d users" % steer_to in d.find_element(By.ID, "steer-status").text)
        result["steer_status_after"] = driver.find_element(By.ID, "steer-status").text
        # The charts mark the change where it began.
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#chart-users svg line.mark")) > 0)
        result["marks"] = len(driver.find_elements(By.CSS_SELECTOR, "svg line.mark"))
    driver.save_screenshot(screenshot)

    stop = driver.find_element(By.ID, "stop")
    stop.click()
    wait.until(lambda d: stop.text == "Confirm stop")
    stop.click()
    wait.until(lambda d: phase(d) in ("interrupted", "completed", "failed"))
    result["final_phase"] = phase(driver)
    result["banner"] = driver.find_element(By.ID, "banner-text").text
    result["console_errors"] = [
        entry["message"] for entry in driver.get_log("browser") if entry.get("level") == "SEVERE"
    ]
    print(json.dumps(result))
except Exception as e:
    print("the page: " + describe(driver), file=sys.stderr)
    raise
finally:
    driver.quit()
