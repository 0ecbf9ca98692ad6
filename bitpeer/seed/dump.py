"""
The seeder's dump: the text format of sipa's bitcoin-seeder's
``dnsseed.dump`` (main.cpp ThreadDumper), which Bitcoin Core's
``contrib/seeds/makeseeds.py`` reads to choose Core's fixed seeds, and the
same records as JSON.

The text is sipa's to the column: a header line starting ``#``, then one
line per address with a successful test, the most reliable over 30 days
first (then over 7 days, then the highest version)::

    %-47s  %4d  %11d  %6.2f%% %6.2f%% %6.2f%% %6.2f%% %6.2f%%  %6i  %08x  %5i "%s"

address (``1.2.3.4:8333``, ``[2001:db8::1]:8333``, ``NAME.onion:8333``,
``NAME.b32.i2p:0``), good (1 or 0), last success (Unix time), the 2-hour,
8-hour, 1-day, 7-day and 30-day reliability in percent, height, services
in hex, protocol version and user agent in quotes.  makeseeds.py splits a
line on whitespace and reads the agent as the twelfth field, so the agent
is written in bitpeer.wire.text.escape's form with each space written
``\\x20`` as well: it stays one field, and ``unescape`` still gives its
bytes back.  "Good" is as the seeder last judged the node (its rule, its
--min-height), kept in the book beside the windows.
"""

import json

#: sipa's header line.
HEADER = ("# address                                        good  lastSuccess    %(2h)   "
          "%(8h)   %(1d)   %(7d)  %(30d)  blocks      svcs  version")

#: The windows (bitpeer.seed.reliability.WINDOWS) as the JSON names them:
#: sipa's header's names.
_JSON_WINDOWS = ("2h", "8h", "1d", "7d", "30d")


def dump_field(agent):
    """A user agent as one whitespace-free field: escaped, spaces as \\x20."""
    return (agent or "").replace(" ", "\\x20")


def seeder_lines(rows):
    """The dump's lines (without line ends) for bookdb.read_dump's rows."""
    yield HEADER
    for address, good, last_success, *shares, blocks, services, version, agent in rows:
        percents = " ".join(f"{100.0 * share:6.2f}%" for share in shares)
        yield (f"{str(address):<47}  {int(good):4d}  {int(last_success or 0):11d}  "
               f"{percents}  {blocks or 0:6d}  {services or 0:08x}  {version or 0:5d} "
               f"\"{dump_field(agent)}\"")


def json_records(rows):
    """The same rows as JSON-ready dicts (shares as fractions)."""
    for address, good, last_success, *shares, blocks, services, version, agent in rows:
        yield {
            "address": str(address), "network": address.network_name, "good": good,
            "last_success": last_success,
            "reliability": dict(zip(_JSON_WINDOWS, shares)),
            "blocks": blocks, "services": services, "version": version, "user_agent": agent,
        }


def write_dump(rows, out, form="seeder"):
    """Write ``rows`` to the text stream ``out`` as ``form`` (seeder or json)."""
    if form == "json":
        json.dump(list(json_records(rows)), out, indent=1, ensure_ascii=False)
        out.write("\n")
        return
    for line in seeder_lines(rows):
        out.write(line + "\n")

