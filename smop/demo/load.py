"""Concurrent requests to a running smop-demo from this machine: every answer checked against the
expected transcript, the wall time, and the server's memory (its resident set, sampled).

    smop-transcribe --model PACK a.mp4        # the expected transcript
    smop-demo --model PACK --port 7860 &
    python -m smop.demo.load --url http://127.0.0.1:7860 --file a.mp4 --expect "..." --requests 8 --pid $!

Requests go through gradio's own client (the page's /run endpoint, the file uploaded as a browser
uploads it), all submitted at once.
"""

import argparse
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

from smop.demo.page import OUTPUTS


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """A process's resident set (VmRSS) or its peak so far (VmHWM), in MB, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise ValueError(f"/proc/{pid}/status has no {field}")


class PeakRSS:
    """The largest VmRSS of ``pid`` seen while in the ``with`` block (sampled every 20 ms)."""

    def __init__(self, pid: int):
        self.pid = pid
        self.peak = self.start = rss_mb(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self):
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, rss_mb(self.pid))

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb(self.pid))


@dataclass
class Answer:
    text: str
    error: str
    seconds: float


def fire(
    url: str, media: Path, requests: int, mode: Optional[str] = None, rate: Optional[str] = None
) -> Tuple[List[Answer], float]:
    """``requests`` requests for ``media`` at once (``mode`` and ``rate``: the page's unless given);
    the answers in order and the wall time (s)."""
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False, download_files=False, analytics_enabled=False)
    params = client.view_api(print_info=False, return_format="dict")["named_endpoints"]["/run"]["parameters"]
    mode = params[2]["parameter_default"] if mode is None else mode
    rate = params[3]["parameter_default"] if rate is None else rate
    start = time.perf_counter()
    jobs = [client.submit(handle_file(str(media)), None, mode, rate, api_name="/run") for _ in range(requests)]
    answers = []
    for job in jobs:
        out = dict(zip(OUTPUTS, job.result(timeout=600)))
        error = out["error"]["value"] if isinstance(out["error"], dict) else out["error"]
        answers.append(Answer(out["transcript"], error or "", time.perf_counter() - start))
    return answers, time.perf_counter() - start


def main(cmd=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default="http://127.0.0.1:7860")
    p.add_argument("--file", type=Path, required=True)
    p.add_argument("--expect", required=True, help="the transcript every answer must give")
    p.add_argument("--requests", type=int, default=8)
    p.add_argument("--mode", help="the modality choice (default: the page's)")
    p.add_argument("--rate", help="an elastic model's rate choice (default: the page's)")
    p.add_argument("--pid", type=int, help="the server's process: its memory is reported")
    args = p.parse_args(cmd)
    watch = PeakRSS(args.pid) if args.pid else None
    if watch:
        with watch:
            answers, wall = fire(args.url, args.file, args.requests, args.mode, args.rate)
    else:
        answers, wall = fire(args.url, args.file, args.requests, args.mode, args.rate)
    right = sum(a.text == args.expect and not a.error for a in answers)
    line = f"{right}/{len(answers)} answers correct; wall {wall:.1f} s"
    if watch:
        line += (
            f"; server RSS {watch.start:.0f} MB before, peak {watch.peak:.0f} MB during "
            f"(VmHWM {rss_mb(args.pid, 'VmHWM'):.0f} MB)"
        )
    print(line)
    for i, a in enumerate(answers):
        if a.text != args.expect or a.error:
            print(f"request {i}: {a.text!r} {a.error}", file=sys.stderr)
    return 0 if right == len(answers) else 1


if __name__ == "__main__":
    sys.exit(main())
