"""
What the benchmarks that run a simulated network in a process of its own
share: the twistd beside this Python, starting ``twistd bitpeer-simnet``
until its truth and seeds files are there to read, and a process's CPU.
"""

import os
import subprocess
import sys
import time

#: Seconds a simnet may take to write its seeds file (a large one builds
#: its population first).
SIMNET_START_TIMEOUT = 120


def twistd():
    """The twistd beside this Python."""
    return os.path.join(os.path.dirname(sys.executable), "twistd")


def start_simnet(workdir, simnet_args):
    """
    Start ``twistd bitpeer-simnet`` with ``simnet_args`` (its network:
    --nodes, --seed, --dead...) in ``workdir``, logging to simnet.log there;
    return the process, the truth path and the seeds path once both files
    exist.  Exits the benchmark, with the log's path, if the simnet ends
    or takes too long.
    """
    truth = os.path.join(workdir, "truth.json")
    seeds = os.path.join(workdir, "seeds.txt")
    process = subprocess.Popen(
        [twistd(), "-n", "--pidfile=", "--logfile", os.path.join(workdir, "simnet.log"),
         "bitpeer-simnet", "--truth", truth, "--seeds-file", seeds, *simnet_args],
        cwd=workdir,
    )
    deadline = time.monotonic() + SIMNET_START_TIMEOUT
    while not (os.path.exists(seeds) and os.path.exists(truth)):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise SystemExit(f"simnet did not start; see {workdir}/simnet.log")
        time.sleep(0.1)
    # Both files are written whole under a temporary name and renamed: once
    # they exist, they are complete.
    return process, truth, seeds


def process_cpu(pid):
    """User + system CPU seconds of a running process (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as stream:
        fields = stream.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
