"""
Text a peer controls, shown safely and without loss.

A peer's user agent, a reject reason or a message type is whatever bytes it
chose to send: invalid UTF-8, control characters, line breaks, a terminal's
escape sequences.  The codec keeps such strings as Python text whose
undecodable bytes are surrogate escapes (``bytes.decode("utf-8",
"surrogateescape")``), so that nothing is lost and the same bytes go back
out.  That text cannot be written where UTF-8 is required (SQLite, a CSV
file, a terminal) and is not safe to show as it is.

``escape`` gives the one display form used everywhere bitpeer shows or
stores such text (snapshots, the address book's text columns, logs, the
``bitpeer`` command): printable UTF-8 stays as it is, a backslash is doubled,
a raw byte that is not UTF-8 and an ASCII control character become
``\\xNN``, and any other unprintable character ``\\uNNNN`` or
``\\UNNNNNNNN``.  ``unescape`` reverses it exactly, so the display form is
lossless: ``unescape(escape(raw)) == raw`` for every byte string.

Python's own ``backslashreplace`` is not reversible (it leaves backslashes
alone and writes a raw byte and a code point the same way), and ``repr``
adds quotes and escapes printable characters: hence this module.
"""

import re


def raw_bytes(value):
    """The bytes a peer sent: ``value`` as received (bytes), or text the
    codec decoded with surrogate escapes."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    return value.encode("utf-8", "surrogateescape")


def _escape_char(char):
    code = ord(char)
    if char == "\\":
        return "\\\\"
    if 0xDC80 <= code <= 0xDCFF:
        # A surrogate escape: the raw byte that was not UTF-8.
        return f"\\x{code - 0xDC00:02x}"
    if char.isprintable():
        return char
    if code < 0x80:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def escape(value):
    """
    The lossless, printable, valid-UTF-8 form of ``value`` (bytes, or text
    with surrogate escapes); None stays None.  Plain printable ASCII, most
    user agents, comes back as it is.
    """
    if value is None:
        return None
    if not isinstance(value, str):
        value = value.decode("utf-8", "surrogateescape")
    if value.isascii() and value.isprintable() and "\\" not in value:
        return value
    return "".join(map(_escape_char, value))


_ESCAPE = re.compile(r"\\(?:(\\)|x([0-9a-f]{2})|u([0-9a-f]{4})|U([0-9a-f]{8}))")


def unescape(text):
    """The bytes that ``escape`` showed as ``text``.  Raises ValueError on
    a backslash that ``escape`` would not have written."""
    out = bytearray()
    position = 0
    for match in _ESCAPE.finditer(text):
        start = match.start()
        if "\\" in text[position:start]:
            break
        out += text[position:start].encode("utf-8")
        backslash, byte, short, long = match.groups()
        if backslash:
            out += b"\\"
        elif byte:
            out.append(int(byte, 16))
        else:
            out += chr(int(short or long, 16)).encode("utf-8", "surrogatepass")
        position = match.end()
    rest = text[position:]
    if "\\" in rest:
        raise ValueError(f"not an escaped text: stray backslash at {text.index(chr(92), position)}")
    out += rest.encode("utf-8")
    return bytes(out)


def unescape_text(shown):
    """
    The text that ``escape`` showed as ``shown``, as the codec holds it:
    bytes that are not UTF-8 as surrogate escapes.  Exact for any text a
    peer controls; None stays None.
    """
    if shown is None or "\\" not in shown:
        return shown  # escape left it as it was
    return unescape(shown).decode("utf-8", "surrogateescape")


__all__ = ["escape", "raw_bytes", "unescape", "unescape_text"]
