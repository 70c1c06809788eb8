"""The fork server's speed mechanisms keep their promises: code mappings handed to runners stay
read-only with unchanged bytes, and the per-item environment check still restores what a program
changed within its own author."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from azrlib.sandbox import Executor, detect_isolation

SANDBOX_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "azrlib", "sandbox")

# Runs in a fresh interpreter (the worker's way: `python -S`, the sandbox modules top-level): the
# file mappings before and after `inherit_code_mappings`, the bytes of every code mapping, and
# which share of the code pages mapped here a forked child finds mapped (pagemap: present bit).
PROBE = r"""
import hashlib, json, os, struct, sys
import confine

def file_maps():
    with open("/proc/self/maps") as f:
        rows = [l.split() for l in f.read().splitlines()]
    return [(r[0], r[1], r[5]) for r in rows if len(r) >= 6 and r[5].startswith("/")]

def digest(rows):
    out = {}
    for rng, perms, path in rows:
        if perms in ("r-xp", "r--p"):
            s, e = (int(x, 16) for x in rng.split("-"))
            out[rng] = hashlib.sha256(bytes((ctypes_char * (e - s)).from_address(s))).hexdigest()
    return out

import ctypes
ctypes_char = ctypes.c_char
before = file_maps()
digest_before = digest(before)
n = confine.inherit_code_mappings()
after = file_maps()
digest_after = digest(before)  # the same addresses (mappings may have merged)

def present_pages(ranges):
    out = []
    with open("/proc/self/pagemap", "rb") as f:
        for s, e in ranges:
            f.seek(s // 4096 * 8)
            data = f.read((e - s) // 4096 * 8)
            out += [s + 4096 * k for k in range(len(data) // 8) if data[8 * k + 7] & 0x80]
    return out

def share_in_child(pages):  # of the code pages mapped here, the share a forked child finds mapped
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        got = present_pages([(a, a + 4096) for a in pages])
        os.write(w, str(len(got) / len(pages)).encode())
        os._exit(0)
    os.close(w)
    share = float(os.read(r, 64))
    os.waitpid(pid, 0)
    return share

code = [tuple(int(x, 16) for x in rng.split("-")) for rng, perms, _ in after if perms == "r-xp"]
print(json.dumps({"n": n, "before": before, "after": after, "same_bytes": digest_before == digest_after,
                  "share_in_child": share_in_child(present_pages(code))}))
"""


def _coverage(rows):
    """Mappings as maximal runs of pages with the same permissions and file."""
    out = []
    for rng, perms, path in rows:
        start, end = (int(x, 16) for x in rng.split("-"))
        if out and out[-1][1] == start and out[-1][2:] == [perms, path]:
            out[-1][1] = end
        else:
            out.append([start, end, perms, path])
    return out


def test_code_mappings_stay_read_only_and_unchanged():
    out = subprocess.run([sys.executable, "-S", "-s", "-B", "-c", PROBE], cwd=SANDBOX_DIR,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    got = __import__("json").loads(out.stdout)
    assert got["n"] > 0
    # every page keeps its file and permissions (no code left writable; neighbouring mappings of
    # one file may merge into one), and the code bytes are unchanged
    assert _coverage(got["after"]) == _coverage(got["before"])
    assert got["same_bytes"]
    # and what it is for: a child of this process has the code it inherits mapped from birth
    # (without it, only the pages the child itself has run by then: about a third here)
    assert got["share_in_child"] > 0.9


CAPS = detect_isolation()


@pytest.mark.skipif(not (CAPS["bubblewrap"] or (CAPS["seccomp"] and CAPS["landlock_abi"] > 0)),
                    reason="no sandbox isolation available on this machine")
def test_an_authors_environment_changes_are_undone_before_its_next_item():
    """Items of one author share a runner; each starts from the runner's environment again, whether
    the program set or deleted variables or emptied os.environ's own store behind its back."""
    program = ("def f(k):\n    import os\n    seen = [os.environ.get('SPOILED'), 'LANG' in os.environ]\n"
               "    if k == 0:\n        os.environ['SPOILED'] = '1'\n        del os.environ['LANG']\n"
               "    if k == 1:\n        os.environ._data.clear()\n    return seen\n")
    with Executor(workers=2, timeout_s=5.0) as ex:
        results = ex.run_many([(program, str(k)) for k in range(4)])
    assert [r.value for r in results] == ["[None, True]"] * 4, results
