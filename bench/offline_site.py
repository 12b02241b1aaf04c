"""Make the published asv site open offline: its CDN scripts, styles and fonts served locally.

asv's pages (``.asv/html/*.html``) load jQuery, flot, bootstrap, stupidtable and blueimp-md5
from public CDNs.  ``python bench/offline_site.py .asv/html --cache build/asv-vendor`` maps each
CDN address to a file of an npm package (fetched once with ``npm pack`` into the cache),
copies it, and the fonts and images its stylesheet names, into ``<site>/vendor/``, points the
tags at the copies, and then fails (exit 1) when a page or stylesheet of the site still refers
to anything outside it or to a missing file.  Run after every ``asv publish`` (it rewrites the
pages afresh); on a site already rewritten it only checks.

asv imports every module in bench/: everything here runs from ``__main__``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath
from typing import Mapping, NamedTuple

VENDOR = "vendor"

# cdnjs library -> (npm package, npm version for the cdnjs one or None, path of cdnjs's file
# in the npm tarball).  flot 0.8.3 is published on npm without its minified files, so the
# plain ones (the same release) stand in; stupidtable 1.0.1 never reached npm (the package is
# stupid-table-plugin, of which npm holds 1.1.3 only, with the same stupidtable(sortFns) API).
CDNJS = {
    "flot": ("flot", None, lambda path: path.replace(".min.js", ".js")),
    "stupidtable": ("stupid-table-plugin", "1.1.3", lambda path: path),
    "blueimp-md5": ("blueimp-md5", None, lambda path: path),
}
JSDELIVR = re.compile(r"https://cdn\.jsdelivr\.net/npm/(?P<pkg>[^@/]+)@(?P<ver>[^/]+)/(?P<path>.+)")
CDNJS_URL = re.compile(
    r"https://cdnjs\.cloudflare\.com/ajax/libs/(?P<lib>[^/]+)/(?P<ver>[^/]+)/(?P<path>.+)")
JQUERY_URL = re.compile(r"https://code\.jquery\.com/jquery-(?P<ver>\d+\.\d+\.\d+)\.min\.js")

TAG = re.compile(r"<(script|link)\b[^>]*>", re.IGNORECASE)
URL_ATTR = re.compile(r"""(\s(?:src|href)=)(["'])(.*?)\2""", re.IGNORECASE)
INTEGRITY_ATTR = re.compile(r"""\s+integrity=(["']).*?\1""", re.IGNORECASE)
CSS_URL = re.compile(r"""url\(\s*(["']?)(.*?)\1\s*\)""")
EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|//)", re.IGNORECASE)
# (tag, attribute) pairs that make a browser fetch something when the page loads
FETCHED = {("script", "src"), ("link", "href"), ("img", "src"), ("iframe", "src"),
           ("source", "src"), ("embed", "src")}


@dataclass(frozen=True)
class NpmFile:
    """One file of one npm package release, and where the site keeps its copy."""

    package: str
    version: str
    path: str  # inside the tarball's package/ folder

    @property
    def spec(self) -> str:
        return f"{self.package}@{self.version}"

    @property
    def local(self) -> str:
        """Site-relative address of the copy."""
        return f"{VENDOR}/{self.spec}/{self.path}"


@dataclass(frozen=True)
class Target:
    """What a CDN address becomes in a page: a local address, and whether the tag's
    ``integrity`` hash still holds for the local bytes (else the attribute is dropped)."""

    local: str
    keep_integrity: bool


def npm_file(url: str) -> NpmFile:
    """The npm package file that stands for ``url`` (an address of asv's page templates)."""
    if match := JSDELIVR.fullmatch(url):
        return NpmFile(match["pkg"], match["ver"], match["path"])
    if match := JQUERY_URL.fullmatch(url):
        return NpmFile("jquery", match["ver"], "dist/jquery.min.js")
    if (match := CDNJS_URL.fullmatch(url)) and match["lib"] in CDNJS:
        package, version, path = CDNJS[match["lib"]]
        return NpmFile(package, version or match["ver"], path(match["path"]))
    raise ValueError(f"no npm package known for {url!r}: expected a cdn.jsdelivr.net/npm, "
                     f"code.jquery.com or cdnjs address of {sorted(CDNJS)}")


def is_external(ref: str) -> bool:
    """True for an address with a scheme or a host (``https://``, ``//host``, ``data:``)."""
    return bool(EXTERNAL.match(ref))


class Ref(NamedTuple):
    """One address a page fetches as it loads, with the tag's ``integrity`` (or None)."""

    tag: str
    attribute: str
    address: str
    integrity: str | None


class _Refs(HTMLParser):
    """Collects the :class:`Ref` of every tag of a page that fetches something."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[Ref] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name, value in attrs:
            if (tag, name) in FETCHED and value:
                self.refs.append(Ref(tag, name, value, values.get("integrity")))


def page_refs(text: str) -> list[Ref]:
    """Every script, stylesheet, image... that the page ``text`` loads."""
    parser = _Refs()
    parser.feed(text)
    parser.close()
    return parser.refs


def css_refs(text: str) -> list[str]:
    """Addresses in the ``url(...)`` of a stylesheet, without ``data:`` ones."""
    return [m[2] for m in CSS_URL.finditer(text) if not m[2].startswith("data:")]


def rewrite_html(text: str, targets: Mapping[str, Target]) -> str:
    """``text`` with the ``src``/``href`` of its script and link tags found in ``targets``
    replaced by the local address (and ``integrity`` dropped where it no longer holds)."""

    def tag(match: re.Match[str]) -> str:
        source = match[0]
        url = URL_ATTR.search(source)
        if url is None or url[3] not in targets:
            return source
        target = targets[url[3]]
        source = source[:url.start(3)] + target.local + source[url.end(3):]
        return source if target.keep_integrity else INTEGRITY_ATTR.sub("", source)

    return TAG.sub(tag, text)


def integrity_holds(integrity: str, data: bytes) -> bool:
    """Whether one of the ``sha256-``/``sha384-``/``sha512-`` hashes of an ``integrity``
    attribute is the hash of ``data``."""
    for item in integrity.split():
        algorithm, _, digest = item.partition("-")
        if algorithm in ("sha256", "sha384", "sha512"):
            ours = base64.b64encode(hashlib.new(algorithm, data).digest()).decode()
            if ours == digest:
                return True
    return False


def strip_query(ref: str) -> str:
    """``ref`` without its ``?query`` and ``#fragment`` (font URLs carry both)."""
    return re.split(r"[?#]", ref, maxsplit=1)[0]


def fetch_package(package: str, version: str, cache: Path) -> Path:
    """The unpacked ``package/`` folder of ``package@version``, from ``npm pack`` on first use."""
    where = cache / f"{package}@{version}"
    if (where / "package").is_dir():
        return where / "package"
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError(f"npm not found: it fetches {package}@{version} for the offline "
                           "site (Debian: apt-get install npm)")
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        done = subprocess.run([npm, "pack", "--loglevel=error", f"{package}@{version}"], cwd=tmp,
                              capture_output=True, text=True, timeout=300)
        tarballs = list(Path(tmp).glob("*.tgz"))
        if done.returncode != 0 or len(tarballs) != 1:
            # npm's second error line says why (the first is a code, the last a log path)
            why = (done.stderr.strip().splitlines()[1:2] or ["no tarball"])[0]
            raise RuntimeError(f"npm pack {package}@{version}: expected one tarball, got exit "
                               f"{done.returncode}: {why}")
        unpacked = Path(tmp) / "unpacked"
        with tarfile.open(tarballs[0]) as tar:
            tar.extractall(unpacked, filter="data")
        unpacked.rename(where)
    return where / "package"


def install(file: NpmFile, cache: Path, site: Path) -> bytes:
    """Copy ``file`` (and, for a stylesheet, the files it names) into the site; its bytes."""
    root = fetch_package(file.package, file.version, cache)
    wanted = [PurePosixPath(file.path)]
    if file.path.endswith(".css"):
        css = (root / file.path).read_text(encoding="utf-8")
        for ref in css_refs(css):
            if is_external(ref):
                raise ValueError(f"{file.spec}/{file.path} loads {ref!r}: expected addresses "
                                 "relative to the stylesheet")
            wanted.append(PurePosixPath(file.path).parent / strip_query(ref))
    for path in wanted:
        source = (root / path).resolve()
        if not source.is_relative_to(root.resolve()) or not source.is_file():
            raise FileNotFoundError(f"{file.spec} has no file {path}: expected it in the "
                                    "npm tarball")
        dest = site / VENDOR / file.spec / source.relative_to(root.resolve())
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, dest)
    return (root / file.path).read_bytes()


def localize(site: Path, cache: Path) -> list[str]:
    """Rewrite every page of ``site`` to local copies; one line of news per CDN file."""
    news: dict[str, str] = {}
    for page in sorted(site.glob("*.html")):
        text = page.read_text(encoding="utf-8")
        targets: dict[str, Target] = {}
        for ref in page_refs(text):
            if ref.tag not in ("script", "link") or not is_external(ref.address):
                continue
            file = npm_file(ref.address)
            data = install(file, cache, site)
            holds = ref.integrity is not None and integrity_holds(ref.integrity, data)
            targets[ref.address] = Target(file.local, holds or ref.integrity is None)
            news[ref.address] = f"{file.local}  (npm {file.spec}; " + (
                "same bytes as asv's integrity hash)" if holds else
                "no integrity hash)" if ref.integrity is None else
                "not the CDN's build: integrity attribute dropped)")
        page.write_text(rewrite_html(text, targets), encoding="utf-8")
    return list(news.values())


def offline_problems(site: Path) -> list[str]:
    """Every reference of a page or stylesheet of ``site`` that leaves it or finds no file."""
    problems = []
    sources = [(p, [(f"<{r.tag} {r.attribute}>", r.address)
                    for r in page_refs(p.read_text(encoding="utf-8"))])
               for p in sorted(site.glob("*.html"))]
    sources += [(p, [("url()", r) for r in css_refs(p.read_text(encoding="utf-8"))])
                for p in sorted(site.rglob("*.css"))]
    for path, refs in sources:
        for kind, ref in refs:
            name = path.relative_to(site)
            if is_external(ref):
                problems.append(f"{name}: {kind} {ref} points outside the site")
            elif not (path.parent / strip_query(ref)).is_file():
                problems.append(f"{name}: {kind} {ref} names no file of the site")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", type=Path, help="the published asv site (.asv/html)")
    parser.add_argument("--cache", type=Path, default=Path("build/asv-vendor"),
                        help="where npm tarballs are unpacked (default build/asv-vendor)")
    args = parser.parse_args(argv)
    if not (args.site / "index.html").is_file():
        print(f"offline_site: expected an asv site with index.html in {args.site}, found none "
              "(run asv publish)", file=sys.stderr)
        return 2
    try:
        news = localize(args.site, args.cache)
    except (ValueError, RuntimeError, OSError, subprocess.TimeoutExpired) as err:
        print(f"offline_site: {err}", file=sys.stderr)
        return 2
    for line in news:
        print(f"offline_site: {line}")
    problems = offline_problems(args.site)
    if problems:
        print(f"offline_site: {len(problems)} reference(s) of {args.site} are not local:",
              *problems, sep="\n  ", file=sys.stderr)
        return 1
    print(f"offline_site: every script, stylesheet, font and image of {args.site} is local")
    return 0


if __name__ == "__main__":
    sys.exit(main())
