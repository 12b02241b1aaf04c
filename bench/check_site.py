"""Open the published asv site in headless Chromium, offline, and screenshot three graphs.

``python bench/check_site.py [.asv/html] [--out build/site-check]`` serves the site from a
local http server on 127.0.0.1 (started and stopped here), and has Chromium (Debian's
``chromium``) load the graphs of ``time_solve``, ``track_relative_gap`` and
``track_test_accuracy`` against n, with every host name but 127.0.0.1 unresolvable, so that
nothing can come from outside.  Each graph is saved as ``<out>/<benchmark>.png`` with its DOM
as ``<out>/<benchmark>.html``.  Exit 1 when a page shows asv's "failed to load" message, an
asv error, or no flot plot; exit 2 when the site, its benchmarks or Chromium are missing.
Not part of ``make test``.

asv imports every module in bench/: everything here runs from ``__main__``.
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

# benchmark (asv's name: module.Class.method) -> screenshot name
GRAPHS = {
    "bench_solve.Solve.time_solve": "time_solve",
    "bench_solve.RelativeGap.track_relative_gap": "track_relative_gap",
    "bench_solve.TestAccuracy.track_test_accuracy": "track_test_accuracy",
}
X_AXIS = "n"
# what asv's pages say when they cannot show a graph (error.html, the error modal, no graph)
FAILURES = (
    "Can not determine continental origin of swallow",
    "failed to load",
    "Error fetching content",
    "No data for this combination",
    "No graphs to load",
)
# the flot plot: its base canvas, the tick labels of its axes, a legend entry per line
PLOT_MARKERS = ('class="flot-base"', "flot-tick-label", 'class="legendLabel"')
LEGEND = re.compile(r'<td class="legendLabel">([^<]*)')
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--window-size=1400,1000",
    # every name but the local server's address fails to resolve: a CDN fetch cannot succeed
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
)


class QuietHandler(SimpleHTTPRequestHandler):
    """Static files of the site; each request is noted on the server, not logged."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        self.server.requests.append((self.path, int(code)))

    def log_message(self, format: str, *args: object) -> None:
        pass


class QuietServer(ThreadingHTTPServer):
    """Keeps (path, status) of every request, and lets a browser drop a connection (asv's
    redirect to error.html does)."""

    requests: list[tuple[str, int]]

    def handle_error(self, request: object, client_address: tuple[str, int]) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"


@contextmanager
def serve(site: Path) -> Iterator[QuietServer]:
    """Serve ``site`` on 127.0.0.1 (a free port) in a thread, until the block ends."""
    handler = functools.partial(QuietHandler, directory=str(site))
    server = QuietServer(("127.0.0.1", 0), handler)
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def graph_url(base: str, benchmark: str, x_axis: str = X_AXIS) -> str:
    """The address of asv's graph page of ``benchmark`` against parameter ``x_axis``."""
    return f"{base}index.html#{benchmark}?x-axis={x_axis}"


def chromium(browser: str, url: str, png: Path, profile: Path, budget_ms: int,
             timeout: float) -> str:
    """Load ``url``, save a screenshot to ``png``; the DOM after ``budget_ms`` of page time."""
    flags = [*CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}"]
    done = subprocess.run([browser, *flags, f"--screenshot={png}", "--dump-dom", url],
                          capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"chromium exited {done.returncode} on {url}: "
                           f"{done.stderr.strip().splitlines()[-1:]}")
    return done.stdout


def dom_problems(dom: str) -> list[str]:
    """What is wrong with a graph page's DOM: an asv failure message, or no flot plot."""
    problems = [f"the page says {text!r}" for text in FAILURES if text in dom]
    problems += [f"no {marker} in the page (no flot plot)" for marker in PLOT_MARKERS
                 if marker not in dom]
    return problems


def png_problems(png: Path, min_colored: int = 200) -> list[str]:
    """A screenshot with (almost) no coloured pixels has no plotted lines."""
    if not png.is_file():
        return [f"no screenshot {png}"]
    import numpy as np
    from PIL import Image  # matplotlib's dependency, in the project's venv

    with Image.open(png) as image:
        hsv = np.asarray(image.convert("RGB").convert("HSV"))
    colored = int(np.count_nonzero((hsv[..., 1] > 100) & (hsv[..., 2] > 60)))
    return [] if colored >= min_colored else [
        f"{png.name}: {colored} coloured pixels, expected >= {min_colored} (no lines drawn)"]


def check(site: Path, out: Path, browser: str, budget_ms: int, timeout: float) -> list[str]:
    """Screenshot every graph of :data:`GRAPHS`; the problems found."""
    index = json.loads((site / "index.json").read_text(encoding="utf-8"))
    missing = [name for name in GRAPHS if name not in index.get("benchmarks", {})]
    if missing:
        raise LookupError(f"the site has no benchmark {missing}: expected those of "
                          f"bench/bench_solve.py in {site / 'index.json'}")
    out.mkdir(parents=True, exist_ok=True)
    problems = []
    with serve(site) as server:
        for benchmark, name in GRAPHS.items():
            url, png = graph_url(server.base, benchmark), out / f"{name}.png"
            png.unlink(missing_ok=True)
            server.requests.clear()
            with tempfile.TemporaryDirectory() as profile:  # an empty cache: every file fetched
                dom = chromium(browser, url, png, Path(profile), budget_ms, timeout)
            (out / f"{name}.html").write_text(dom, encoding="utf-8")
            found = dom_problems(dom) + png_problems(png)
            found += [f"the page asked for {path}, which the site lacks (HTTP {code})"
                      for path, code in server.requests if code >= 400]
            problems += [f"{name}: {p}" for p in found]
            lines = LEGEND.findall(dom)
            print(f"check_site: {name}: {'FAILED' if found else 'ok'}, {len(lines)} line(s) "
                  f"in the legend, {len(server.requests)} files served  {png}  ({url})")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", type=Path, nargs="?", default=Path(".asv/html"))
    parser.add_argument("--out", type=Path, default=Path("build/site-check"))
    parser.add_argument("--browser", default="chromium", help="Chromium executable")
    parser.add_argument("--budget-ms", type=int, default=15_000,
                        help="page time before the DOM and screenshot are taken")
    parser.add_argument("--timeout", type=float, default=90.0,
                        help="seconds one Chromium run may take")
    args = parser.parse_args(argv)
    browser = shutil.which(args.browser)
    if browser is None:
        print(f"check_site: expected Chromium as {args.browser!r} on PATH, found none "
              "(Debian: apt-get install chromium)", file=sys.stderr)
        return 2
    if not (args.site / "index.json").is_file():
        print(f"check_site: expected a published asv site in {args.site}, found no "
              "index.json (run make bench-site)", file=sys.stderr)
        return 2
    try:
        problems = check(args.site, args.out, browser, args.budget_ms, args.timeout)
    except (LookupError, RuntimeError, subprocess.TimeoutExpired) as err:
        print(f"check_site: {err}", file=sys.stderr)
        return 2
    if problems:
        print(f"check_site: {len(problems)} problem(s):", *problems, sep="\n  ", file=sys.stderr)
        return 1
    print(f"check_site: {len(GRAPHS)} graphs drawn, offline; screenshots in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
