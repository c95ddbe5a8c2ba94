"""smop-demo's page driven in Debian's chromium with playwright (the demo extra), as its browser
tests drive it; as a command, a screenshot of the page after a transcript:

    python -m smop.demo.browser --url http://127.0.0.1:7860 --file a.mp4 --out docs/demo.png

The browser resolves no host but loopback, and every request it makes elsewhere is aborted and
recorded (``outside``): the page must need nothing from the internet.
"""

import argparse
import shutil
import sys
from pathlib import Path
from typing import List
from urllib.parse import urlsplit

CHROMIUM_ARGS = [
    "--no-sandbox",  # as root
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",  # nothing but loopback resolves
    "--use-fake-ui-for-media-stream",  # a fake camera and microphone, allowed without asking
    "--use-fake-device-for-media-stream",
]
TIMEOUT_MS = 90_000  # an answer on two busy cores
LOOPBACK = ("127.0.0.1", "localhost")


def launch_chromium(playwright):
    """The system chromium (no browser download), headless."""
    return playwright.chromium.launch(executable_path=shutil.which("chromium"), headless=True, args=CHROMIUM_ARGS)


def open_page(browser, url: str, outside: List[str], width: int = 1280, height: int = 1400):
    """A new page of the demo at ``url`` in its own context (camera and microphone granted);
    requests to other hosts are aborted and appended to ``outside``. Returns (context, page)."""
    context = browser.new_context(permissions=["camera", "microphone"], viewport={"width": width, "height": height})

    def only_loopback(route):
        if urlsplit(route.request.url).hostname in LOOPBACK:
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", only_loopback)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url)
    page.wait_for_selector("#run")
    return context, page


def upload(page, widget: str, path: Path) -> None:
    """``path`` into the ``video`` or ``audio`` widget, as a file chosen in its dialog."""
    page.locator(f"#{widget} input[type=file]").set_input_files(str(path))
    page.locator(f"#{widget} [aria-label='Clear']").first.wait_for()  # the upload is in place


def transcribe(page) -> str:
    """Press Transcribe and wait for this request's answer: the transcript ('' with an error)."""
    # The answer's timings (never twice the same) or its error replace what the page shows.
    page.evaluate("document.querySelectorAll('#timings textarea, #error textarea').forEach(t => t.value = '')")
    page.click("#run")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#timings textarea, #error textarea')].some(t => t.value !== '')"
    )
    return page.locator("#transcript textarea").input_value()


def main(cmd=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default="http://127.0.0.1:7860")
    p.add_argument("--file", type=Path, required=True, help="the video to upload")
    p.add_argument("--out", type=Path, required=True, help="the screenshot (PNG)")
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--height", type=int, default=1100)
    args = p.parse_args(cmd)
    from playwright.sync_api import sync_playwright

    outside: List[str] = []
    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        _, page = open_page(browser, args.url, outside, args.width, args.height)
        upload(page, "video", args.file)
        text = transcribe(page)
        page.wait_for_timeout(1000)  # the images drawn
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(args.out))
        browser.close()
    print(f"{args.file}: {text!r} -> {args.out}")
    if outside:
        print(f"the page asked for non-loopback addresses: {outside}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
