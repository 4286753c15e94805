"""axe-core in the browser tests: the npm package, installed once into a cache folder, injected
into each page, run at WCAG 2.1 A and AA; and the check that an Arabic page keeps its numbers,
references and dates left to right.

axe-core (MPL-2.0) is not vendored: ``npm install axe-core@AXE_VERSION`` puts it in
``$HUB_AXE_DIR`` (default ``~/.cache/econsulat-hub/axe-core-<version>``) the first time. Without
npm or the registry the browser tests that need it are skipped, and fail under
``HUB_REQUIRE_SERVICES=1``. (PyPI's axe-selenium-python carries an axe too old to know the
WCAG 2.1 tags.)
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from hub.testing.plugin import services_required

AXE_VERSION = "4.11.4"
#: The rules of WCAG 2.0 and 2.1, levels A and AA.
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def axe_folder() -> Path:
    configured = os.environ.get("HUB_AXE_DIR")
    return Path(configured) if configured else \
        Path.home() / ".cache" / "econsulat-hub" / f"axe-core-{AXE_VERSION}"


def axe_source() -> str:
    """The text of ``axe.min.js``, installed with npm on first use."""
    folder = axe_folder()
    script = folder / "node_modules" / "axe-core" / "axe.min.js"
    if not script.is_file():
        npm = shutil.which("npm")
        problem = None
        if npm is None:
            problem = "npm is not installed (apt-get install npm)"
        else:
            folder.mkdir(parents=True, exist_ok=True)
            done = subprocess.run(
                [npm, "install", "--no-audit", "--no-fund", "--silent", "--prefix", str(folder),
                 f"axe-core@{AXE_VERSION}"], capture_output=True, text=True, timeout=300)
            if done.returncode != 0 or not script.is_file():
                problem = f"npm install axe-core@{AXE_VERSION} failed: {done.stderr[-300:]}"
        if problem:
            if services_required():
                pytest.fail(problem)
            pytest.skip(problem)
    return script.read_text("utf-8")


_RUN = """
const done = arguments[arguments.length - 1];
axe.run(document, {runOnly: {type: 'tag', values: arguments[0]}, resultTypes: ['violations']})
  .then(function (result) {
    done(result.violations.map(function (v) {
      return {id: v.id, impact: v.impact, help: v.help,
              nodes: v.nodes.slice(0, 5).map(function (n) {
                return n.target.join(' ') + ' :: ' + (n.failureSummary || '').replace(/\\s+/g, ' ');
              })};
    }));
  })
  .catch(function (error) { done([{id: 'axe-error', impact: 'critical', help: String(error), nodes: []}]); });
"""


def violations(driver: Any, source: str) -> list[dict[str, Any]]:
    """axe's WCAG 2.1 A/AA violations of the page the browser shows."""
    if not driver.execute_script("return typeof window.axe === 'object'"):
        driver.execute_script(source)
    driver.set_script_timeout(60)
    return driver.execute_async_script(_RUN, WCAG_TAGS)


_LTR_CHECK = """
// Text that reads left to right whatever the page's direction (a word with a digit: numbers,
// references, dates, phone and identity numbers; an e-mail) must sit in an element isolating it
// left to right: dir="ltr" or <bdi> (or a form control, where the browser isolates the value).
const value = /[\\w.+-]+@[\\w-]+(?:\\.[\\w-]+)+|(?:[A-Za-z+][A-Za-z0-9+\\/:.,\\-]*)?[0-9](?:[A-Za-z0-9+\\/:.,\\-]*[A-Za-z0-9])?/g;
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
const loose = [];
function isolated(node) {
  for (let el = node.parentElement; el && el !== document.body; el = el.parentElement) {
    const tag = el.tagName;
    if (tag === 'BDI' || el.getAttribute('dir') === 'ltr') { return true; }
    if (tag === 'SCRIPT' || tag === 'STYLE' || tag === 'OPTION' || tag === 'TEXTAREA') { return true; }
    if (el.getAttribute('lang') && el.getAttribute('lang') !== 'ar') { return true; }
  }
  return false;
}
while (walker.nextNode()) {
  const node = walker.currentNode;
  const found = node.nodeValue.match(value);
  if (found && !isolated(node)) { loose.push(found.join(' ') + '  <-  ' + node.nodeValue.trim().slice(0, 80)); }
}
return loose;
"""


def loose_ltr_values(driver: Any) -> list[str]:
    """Values of the Arabic page that read left to right but are not isolated (see above)."""
    return driver.execute_script(_LTR_CHECK)
