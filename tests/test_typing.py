"""
The embeddable peer's public modules stay ``mypy --strict`` clean: the
py.typed marker promises users types they can check against.  mypy runs in
a subprocess with the repository's settings (setup.cfg: the zope.interface
plugin for Twisted's interfaces, the untyped modules left unchecked).
"""

import importlib.util
import os
import subprocess
import sys
import tempfile

from twisted.trial.unittest import SkipTest, SynchronousTestCase

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

#: The modules whose public API is typed.
TYPED = ["peer", "factory", "service", "protocol", "errors", "oneshot", "testing"]


class StrictTypingTests(SynchronousTestCase):
    """mypy --strict finds nothing in the typed modules."""

    def test_strict(self):
        for module in ("mypy", "mypy_zope"):
            if importlib.util.find_spec(module) is None:
                raise SkipTest(f"{module} is not installed (pip install -e '.[test]')")
        paths = [os.path.join("bitpeer", f"{name}.py") for name in TYPED]
        with tempfile.TemporaryDirectory() as cache:
            run = subprocess.run(
                [sys.executable, "-m", "mypy", "--strict", "--cache-dir", cache,
                 "--config-file", "setup.cfg", *paths],
                cwd=ROOT, capture_output=True, text=True, check=False,
            )
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
        self.assertIn("Success", run.stdout)

    def test_marker_is_packaged(self):
        """py.typed sits in the package and setup.cfg ships it."""
        self.assertTrue(os.path.isfile(os.path.join(ROOT, "bitpeer", "py.typed")))
        with open(os.path.join(ROOT, "setup.cfg"), encoding="utf-8") as stream:
            self.assertIn("bitpeer = py.typed", stream.read())
