"""
Writing files so that a reader never sees half of one.

The crawl's snapshots and the simnet's ground truth are read by other
programs while a long-running service rewrites them; both write here.
"""

import os


def atomic_write(path, write, **open_args):
    """
    Write a text file through ``write(stream)`` under a temporary name, then
    rename it over ``path``: a reader sees the old file or the new one,
    never half of one.  If anything fails, the temporary file is removed and
    the error raised as it is (an OSError for a full disk or a read-only
    file system).
    """
    temporary = path + ".tmp"
    try:
        with open(temporary, "w", encoding="utf-8", **open_args) as stream:
            write(stream)
        os.replace(temporary, path)
    except BaseException:
        remove_quietly(temporary)
        raise


def remove_quietly(path):
    """Remove a file if it can be: cleaning up must not hide the error
    that made it necessary."""
    try:
        os.remove(path)
    except OSError:
        pass
