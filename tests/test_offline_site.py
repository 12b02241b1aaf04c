"""bench/offline_site.py on a small fake site: no npm, no network, no browser."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("offline_site", REPO / "bench" / "offline_site.py")
offline_site = importlib.util.module_from_spec(_spec)
sys.modules["offline_site"] = offline_site  # dataclasses look their module up there
_spec.loader.exec_module(offline_site)

JQUERY = "https://code.jquery.com/jquery-3.3.1.min.js"
FLOT = "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.min.js"
CSS = "https://cdn.jsdelivr.net/npm/bootstrap@3.1.1/dist/css/bootstrap.min.css"
PAGE = f"""<html><head>
<script src="{JQUERY}" integrity="sha256-abc=" crossorigin="anonymous"></script>
<script src="{FLOT}" integrity="sha512-def==" crossorigin="anonymous"></script>
<link rel="stylesheet" href="{CSS}" integrity="sha256-ghi=">
<script src="asv.js"></script>
</head><body><a href="https://github.com/airspeed-velocity/asv/">asv</a></body></html>
"""


def test_npm_file_maps_the_cdn_addresses_of_asv_templates():
    assert offline_site.npm_file(JQUERY).local == "vendor/jquery@3.3.1/dist/jquery.min.js"
    assert offline_site.npm_file(FLOT).local == "vendor/flot@0.8.3/jquery.flot.js"
    assert offline_site.npm_file(CSS).spec == "bootstrap@3.1.1"
    with pytest.raises(ValueError, match="no npm package known for 'https://example.org/x.js'"):
        offline_site.npm_file("https://example.org/x.js")


def test_rewrite_points_tags_at_local_copies_and_drops_stale_integrity():
    targets = {JQUERY: offline_site.Target("vendor/jq.js", keep_integrity=True),
               FLOT: offline_site.Target("vendor/flot.js", keep_integrity=False),
               CSS: offline_site.Target("vendor/bs.css", keep_integrity=True)}
    text = offline_site.rewrite_html(PAGE, targets)
    assert '<script src="vendor/jq.js" integrity="sha256-abc="' in text
    assert '<script src="vendor/flot.js" crossorigin="anonymous">' in text
    assert 'href="vendor/bs.css" integrity="sha256-ghi="' in text
    assert "cdn" not in text and "code.jquery" not in text
    assert 'href="https://github.com/' in text  # a link to click, not a fetch
    assert offline_site.rewrite_html(text, targets) == text


def test_integrity_holds_only_for_the_same_bytes():
    data = b"window.x = 1;"
    digest = base64.b64encode(hashlib.sha384(data).digest()).decode()
    assert offline_site.integrity_holds(f"sha384-{digest}", data)
    assert not offline_site.integrity_holds(f"sha384-{digest}", data + b" ")


def test_offline_problems_name_external_and_missing_references(tmp_path):
    (tmp_path / "asv.js").write_text("")
    (tmp_path / "index.html").write_text(PAGE)
    fonts = tmp_path / "vendor" / "css"
    fonts.mkdir(parents=True)
    (fonts / "a.woff").write_text("")
    (fonts / "site.css").write_text("@font-face{src:url('a.woff?v=1#x'),url(https://cdn.x/b.ttf)}"
                                    ".i{background:url(data:image/png;base64,AAAA)}"
                                    ".j{background:url(../missing.png)}")
    problems = offline_site.offline_problems(tmp_path)
    assert problems == [f"index.html: <script src> {JQUERY} points outside the site",
                        f"index.html: <script src> {FLOT} points outside the site",
                        f"index.html: <link href> {CSS} points outside the site",
                        "vendor/css/site.css: url() https://cdn.x/b.ttf points outside the site",
                        "vendor/css/site.css: url() ../missing.png names no file of the site"]
