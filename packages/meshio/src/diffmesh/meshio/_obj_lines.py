"""Vectorized OBJ text handling: the file as one byte array, split and classified into lines.

The whole file is one ``uint8`` array. Lines are classified by their directive with array
comparisons, the lines of one directive are gathered into one block of bytes, and a block is
converted to numbers by a single ``np.fromstring`` call (see ``_obj_parse``).
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass

import numpy as np

SP, NL, SLASH, ZERO = 32, 10, 47, 48
__all__ = [
    "NL", "SLASH", "SP", "ZERO", "Lines", "find_tokens", "gather_block", "is_directive",
    "line_heads", "parse_numbers", "split_lines",
]

_HASH = 35
_PAD = 8  # blanks after the final newline so that directive look-ahead never reads past the end
_NOT_BLANK = re.compile(rb"[^ ]")
_OTHER_BLANKS = (13, 9, 11, 12)  # CR, tab, vertical tab, form feed: read as spaces
_BOM = b"\xef\xbb\xbf"  # a UTF-8 byte-order mark some editors put before the first line
# Bytes an integer block may hold once slashes are blanks: digits, signs, blank, newline.
_INTEGER_BYTES = np.zeros(256, dtype=bool)
_INTEGER_BYTES[[ZERO + d for d in range(10)] + [43, 45, SP, NL]] = True


@dataclass(frozen=True)
class Lines:
    """The file as classified lines. All positions index ``buf``."""

    buf: np.ndarray  # (n + 1 + _PAD,) uint8, whitespace normalized, comments blanked
    content: np.ndarray  # (L,) int64 first byte of each line after leading blanks
    ends: np.ndarray  # (L,) int64 position of each line's newline
    joined: np.ndarray  # (J,) int64 buffer positions of newlines removed by a line continuation
    name: str

    def lineno(self, line: int) -> int:
        """1-based physical line number of logical line ``line``."""
        start = int(self.content[line])
        return line + 1 + int(np.searchsorted(self.joined, start))

    def text(self, line: int) -> str:
        """The logical line ``line`` as text (comments and leading blanks removed)."""
        raw = self.buf[self.content[line] : self.ends[line]].tobytes()
        return raw.decode("utf-8", errors="replace").strip()

    def error(self, line: int, message: str) -> ValueError:
        """``ValueError("{file}:{line}: {message} (line: '...')")`` for logical line ``line``."""
        text = " ".join(self.text(line).split())
        text = text if len(text) <= 80 else text[:77] + "..."
        return ValueError(f"{self.name}:{self.lineno(line)}: {message} (line: {text!r})")


def split_lines(data: bytes, name: str) -> Lines:
    """Validate ``data`` as text and split it into lines.

    A leading UTF-8 byte-order mark is skipped. Blanks are normalized (tab, CR, VT, FF read
    as spaces), line continuations joined, comments blanked and each line's first non-blank
    byte found, all with array operations.

    Raises:
        ValueError: NUL bytes or invalid UTF-8 (a binary file), naming ``name``.
    """
    raw = np.frombuffer(data, dtype=np.uint8, offset=len(_BOM) if data.startswith(_BOM) else 0)
    if (raw == 0).any():
        raise ValueError(f"{name}: not an OBJ text file (it contains NUL bytes)")
    if (raw >= 128).any():
        try:
            data.decode("utf-8")  # the byte offsets in the message count from the file start
        except UnicodeDecodeError as err:
            raise ValueError(
                f"{name}: not an OBJ text file (invalid UTF-8 at byte {err.start})"
            ) from err
    buf = np.full(raw.size + 1 + _PAD, SP, dtype=np.uint8)
    buf[: raw.size] = raw
    buf[raw.size] = NL
    mask = np.empty(buf.size, dtype=bool)  # reused: one temporary the size of the file
    for code in _OTHER_BLANKS:  # CR (so CRLF ends lines), tab, vertical tab, form feed
        np.equal(buf, code, out=mask)
        buf[mask] = SP

    # Line continuation: a backslash, optional blanks, newline. Both become blanks.
    joined = np.zeros(0, dtype=np.int64)
    backslash = np.flatnonzero(buf == 92)
    if backslash.size:
        after = skip_blanks(buf, backslash + 1)
        cont = buf[after] == NL
        cont &= after < raw.size  # the newline appended above never continues
        buf[backslash[cont]] = SP
        buf[after[cont]] = SP
        joined = after[cont].astype(np.int64)

    ends = np.flatnonzero(buf[: raw.size + 1] == NL)
    starts = np.concatenate(([0], ends[:-1] + 1))

    # Comments: blank everything from the first '#' of a line to its end.
    hashes = np.flatnonzero(buf == _HASH)
    if hashes.size:
        line_of = np.searchsorted(ends, hashes)
        first = np.concatenate(([True], line_of[1:] != line_of[:-1]))
        delta = np.zeros(buf.size + 1, dtype=np.int8)
        delta[hashes[first]] = 1
        delta[ends[line_of[first]]] = -1
        buf[np.cumsum(delta[:-1], dtype=np.int8) > 0] = SP

    content = skip_blanks(buf, starts)
    return Lines(buf=buf, content=content, ends=ends, joined=joined, name=name)


def skip_blanks(buf: np.ndarray, pos: np.ndarray, vectorized_steps: int = 16) -> np.ndarray:
    """Advance each position past the blanks (spaces) that follow it.

    Runs of up to ``vectorized_steps`` blanks (indentation, blanks before a newline) are
    skipped by array steps over all positions at once; the rare longer runs by one regex search
    each, so that a pathological file costs time linear in its size.
    """
    pos = pos.copy()
    active = np.flatnonzero(buf[pos] == SP)
    for _ in range(vectorized_steps):
        if active.size == 0:
            return pos
        pos[active] += 1
        active = active[buf[pos[active]] == SP]
    text = buf.tobytes()
    for k in active.tolist():  # only positions followed by more than vectorized_steps blanks
        found = _NOT_BLANK.search(text, int(pos[k]))
        pos[k] = found.start() if found else buf.size - 1
    return pos


def line_heads(lines: Lines) -> np.ndarray:
    """(L, 7) uint8 first bytes of every line (enough for ``usemtl`` and ``mtllib`` + blank)."""
    heads = np.empty((lines.content.size, 7), dtype=np.uint8)  # every column written below
    for k in range(7):  # column by column: no (L, 7) int64 index array
        heads[:, k] = lines.buf[lines.content + k]
    return heads


def is_directive(heads: np.ndarray, word: bytes) -> np.ndarray:
    """(L,) bool: lines whose first token is ``word``."""
    hit = np.ones(heads.shape[0], dtype=bool)
    for k, char in enumerate(word):
        hit &= heads[:, k] == char
    after = heads[:, len(word)]
    return hit & ((after == SP) | (after == NL))


def gather_block(lines: Lines, idx: np.ndarray, skip: int) -> np.ndarray:
    """The selected lines, directive removed, as one uint8 array of newline-ended lines."""
    if idx.size == 0:
        return np.zeros(0, dtype=np.uint8)
    stops = lines.ends[idx] + 1  # keep the newline
    breaks = np.flatnonzero(np.diff(idx) != 1)
    if breaks.size < 64:  # few runs of consecutive lines: copy each run, blank its directives
        first = np.concatenate(([0], breaks + 1))
        last = np.concatenate((breaks, [idx.size - 1]))
        run_start = lines.content[idx[first]]
        run_stop = stops[last]
        block = np.concatenate([lines.buf[a:b] for a, b in zip(run_start, run_stop, strict=True)])
        sizes = run_stop - run_start
        shift = np.repeat(np.cumsum(sizes) - sizes - run_start, last - first + 1)
        heads = lines.content[idx] + shift
        for k in range(skip):
            block[heads + k] = SP
        return block
    delta = np.zeros(lines.buf.size + 1, dtype=np.int8)
    delta[lines.content[idx] + skip] = 1
    delta[stops] -= 1
    return lines.buf[np.cumsum(delta[:-1], dtype=np.int8) > 0]


def find_tokens(block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Token start positions in ``block`` and the number of tokens on each of its lines."""
    blank = (block == SP) | (block == NL)
    begins = ~blank
    begins[1:] &= blank[:-1]
    tok_start = np.flatnonzero(begins)
    before_end = np.searchsorted(tok_start, np.flatnonzero(block == NL))
    return tok_start, np.diff(before_end, prepend=0)


def parse_numbers(block: np.ndarray, dtype: type, expected: int) -> np.ndarray | None:
    """All whitespace-separated numbers of ``block``, or None unless exactly ``expected``.

    None also when ``np.fromstring`` stops before the end of the block, whichever numpy:
    numpy 2 raises there, numpy 1 returns the numbers read so far with a DeprecationWarning
    (so ``"3.0"`` read as an integer gave 3 and the rest was dropped). An integer block with
    any byte other than digits, signs and blanks is None without calling numpy at all.
    """
    if expected == 0:
        return np.zeros(0, dtype=dtype)
    if np.issubdtype(dtype, np.integer) and not _INTEGER_BYTES[block].all():
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        try:
            values = np.fromstring(block.tobytes(), dtype=dtype, sep=" ")
        except (ValueError, DeprecationWarning):  # numpy 2 / numpy 1: not read to its end
            return None
    return values if values.size == expected else None
