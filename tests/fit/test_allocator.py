"""keep_freed_memory: freed tensors' memory stays mapped, so a loop stops page-faulting."""

from __future__ import annotations

import platform
import subprocess
import sys
import textwrap

import pytest

GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"

# Starts from glibc's initial thresholds (128 KB each; a process's own history raises them
# by chance), then each round allocates and frees 32 MB of written tensors, as a fitting
# iteration does; prints the minor page faults per round after 10 warm-up rounds.
_LOOP = textwrap.dedent("""
    import ctypes, resource, sys, torch
    from diffmesh.fit.allocator import keep_freed_memory
    libc = ctypes.CDLL(None)
    libc.prctl(41, 1, 0, 0, 0)  # PR_SET_THP_DISABLE: count 4 KB pages, whatever THP's mode
    mallopt = libc.mallopt
    assert mallopt(-3, 128 * 1024) and mallopt(-1, 128 * 1024)  # mmap, trim thresholds
    if sys.argv[1] == "keep":
        assert keep_freed_memory()
    for r in range(20):
        tensors = [torch.ones(1 << 20) for _ in range(8)]
        del tensors
        if r == 9:
            start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start) / 10)
""")


def _faults_per_round(mode: str) -> float:
    out = subprocess.run([sys.executable, "-c", _LOOP, mode],
                         capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


@pytest.mark.skipif(not GLIBC, reason="glibc's mallopt only")
def test_freed_memory_is_reused_without_page_faults():
    # From glibc's initial thresholds the 32 MB (8192 pages) fault in again every round.
    assert _faults_per_round("keep") < 100
    assert _faults_per_round("default") > 4000


def test_returns_whether_it_applied():
    # In a child process: the setting is process-wide.
    code = "from diffmesh.fit import keep_freed_memory; print(keep_freed_memory())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(GLIBC)
