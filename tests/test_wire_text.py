"""
Tests for bitpeer.wire.text: the escaped display form of peer-controlled
text is printable, valid UTF-8, one line, and reverses exactly.
"""

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from bitpeer.wire.text import escape, raw_bytes, unescape, unescape_text


class EscapeTests(SynchronousTestCase):
    """escape() and unescape() on chosen and arbitrary input."""

    def test_plain_ascii_unchanged(self):
        """A usual user agent comes back as the same object."""
        agent = "/Satoshi:29.0.0/"
        self.assertIs(escape(agent), agent)

    def test_none(self):
        """None stays None (a node that sent no user agent)."""
        self.assertIsNone(escape(None))

    def test_invalid_utf8(self):
        """The issue's user agent: bytes that are not UTF-8 become \\xNN."""
        raw = b"\xff\xfe\xc3\x28"
        self.assertEqual(escape(raw), "\\xff\\xfe\\xc3(")
        text = raw.decode("utf-8", "surrogateescape")
        self.assertEqual(escape(text), "\\xff\\xfe\\xc3(")
        self.assertEqual(unescape(escape(text)), raw)

    def test_backslash_doubled(self):
        """A literal backslash cannot be mistaken for an escape."""
        self.assertEqual(escape("a\\xff"), "a\\\\xff")
        self.assertEqual(unescape("a\\\\xff"), b"a\\xff")

    def test_controls_and_separators(self):
        """Line breaks, escape sequences and Unicode separators are escaped;
        printable non-ASCII stays."""
        self.assertEqual(escape("a\nb\x1b[31m\u2028é\U0001f600"),
                         "a\\x0ab\\x1b[31m\\u2028é\U0001f600")
        self.assertEqual(escape("\x85\U000e0001"), "\\u0085\\U000e0001")

    def test_stray_backslash_refused(self):
        """unescape refuses what escape never writes."""
        for bad in ("\\", "a\\q", "\\x1", "\\xFF"):
            with self.assertRaises(ValueError):
                unescape(bad)

    def test_raw_bytes(self):
        """raw_bytes gives what was on the wire, from bytes or decoded text."""
        self.assertEqual(raw_bytes(b"\xff"), b"\xff")
        self.assertEqual(raw_bytes("\udcff/x"), b"\xff/x")

    @given(st.binary(max_size=300))
    def test_round_trip_bytes(self, raw):
        """Every byte string survives escape and unescape, and its escaped
        form is printable valid UTF-8 on one line."""
        shown = escape(raw)
        shown.encode("utf-8")
        self.assertTrue(shown.isprintable())
        self.assertEqual(unescape(shown), raw)

    @given(st.text(max_size=100))
    def test_round_trip_text(self, text):
        """Any valid text survives too."""
        self.assertEqual(unescape(escape(text)), text.encode("utf-8", "surrogatepass"))

    @given(st.binary(max_size=300))
    def test_unescape_text_gives_the_codec_text(self, raw):
        """unescape_text undoes escape on the codec's text (surrogate
        escapes for the bytes that are not UTF-8)."""
        text = raw.decode("utf-8", "surrogateescape")
        self.assertEqual(unescape_text(escape(text)), text)
        self.assertIsNone(unescape_text(None))
