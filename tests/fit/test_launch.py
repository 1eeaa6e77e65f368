"""The `fit` entry point: help and version without torch, Ctrl-C during the start-up."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

_NO_TORCH = textwrap.dedent(
    """
    import sys
    from diffmesh.fit.launch import main
    try:
        main(sys.argv[1:])
    except SystemExit as exc:
        code = exc.code
    print("torch loaded:", "torch" in sys.modules, "exit:", code)
    """
)


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["--version"],
        ["shape", "--help"],
        ["images", "--help"],
        ["render", "--help"],
        [],
    ],
)
def test_help_and_version_do_not_import_torch(args):
    result = subprocess.run(
        [sys.executable, "-c", _NO_TORCH, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.stdout.strip().splitlines()[-1] == "torch loaded: False exit: 0", (
        result.stdout + result.stderr
    )
    assert "Usage: fit" in result.stdout or "fit, version" in result.stdout


# A process started from a terminal has Python's SIGINT handler; one started by a process that
# ignores SIGINT (pytest run as a background job, say) inherits the ignoring. The child
# scripts below set the handler Python installs at start-up, as a terminal's child has it.
_AS_FROM_A_TERMINAL = "import signal; signal.signal(signal.SIGINT, signal.default_int_handler)"

# Ctrl-C at a given moment of the start: a timer sends the process SIGINT (what a terminal's
# Ctrl-C sends) `delay` seconds after the entry point is called.
_CTRL_C_AT = _AS_FROM_A_TERMINAL + textwrap.dedent(
    """
    import os, signal, sys
    from diffmesh.fit.launch import main
    signal.signal(signal.SIGALRM, lambda signum, frame: os.kill(os.getpid(), signal.SIGINT))
    signal.setitimer(signal.ITIMER_REAL, float(sys.argv[1]))
    main(sys.argv[2:])
    """
)


@pytest.mark.parametrize("delay", [0.001, 0.05, 0.3, 0.6, 1.0, 1.3, 1.6, 2.0])
def test_ctrl_c_during_start_up_is_one_line_and_130(tmp_path, delay):
    """Whether it lands in the imports (click, torch, the libraries), in the option parsing or
    in loading the target: exit 130 and a single line, no traceback."""
    args = ["shape", "--iters", "2000", "--quiet", "--out", str(tmp_path / "o")]
    result = subprocess.run(
        [sys.executable, "-c", _CTRL_C_AT, str(delay), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=tmp_path,
    )
    lines = [line for line in result.stderr.splitlines() if line.strip() and "%|" not in line]
    assert result.returncode == 130, result.stderr
    assert "Traceback" not in result.stderr
    assert len(lines) == 1 and lines[0].startswith("Interrupted"), result.stderr


def test_ctrl_c_signal_to_the_console_script(tmp_path):
    """A real SIGINT to a `fit shape` process while it starts (imports, parsing, loading)."""
    import signal
    import time

    code = f"{_AS_FROM_A_TERMINAL}; from diffmesh.fit.launch import main; print('ready', flush=True); main()"
    script = [sys.executable, "-c", code, "shape", "--quiet", "--out", str(tmp_path / "o")]
    proc = subprocess.Popen(
        script, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=tmp_path
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and err.startswith("Interrupted"), err


def test_deferred_interrupt_holds_sigint_until_the_block_ends():
    """A SIGINT inside the block runs none of the handler mid-block; KeyboardInterrupt comes
    after the block's last statement (an import there is never cut in half)."""
    import os
    import signal

    from diffmesh.fit.launch import deferred_interrupt

    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # as from a terminal
    try:
        done = []
        with pytest.raises(KeyboardInterrupt), deferred_interrupt():
            os.kill(os.getpid(), signal.SIGINT)
            done.append("after the signal")
        assert done == ["after the signal"]
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        with deferred_interrupt():  # no signal: nothing raised
            done.append("quiet")
        assert done[-1] == "quiet"
    finally:
        signal.signal(signal.SIGINT, before)


def test_deferred_interrupt_leaves_an_ignored_sigint_ignored():
    """A process started with SIGINT ignored (a script's background job) is not stopped by
    a SIGINT during the block, and the block leaves it ignoring SIGINT."""
    import os
    import signal

    from diffmesh.fit.launch import deferred_interrupt

    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        done = []
        with deferred_interrupt():
            os.kill(os.getpid(), signal.SIGINT)
            done.append("after the signal")
        assert done == ["after the signal"]
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)
