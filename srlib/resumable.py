"""Resumable HTTP downloads with a progress bar: the transport under ``python -m srlib.data download``.

The paper profile's archives are large (DIV2K's training HR images alone are 3.5 GB), so a
connection that drops must not cost the whole transfer. :func:`fetch` appends to a ``.part``
file and, when that file already holds bytes, asks the server for the rest only
(``Range: bytes=N-``, RFC 9110 Sec. 14). A server that ignores the range (answers ``200``
instead of ``206``) makes the download start again from zero, said in one line.

What the caller gets:

- the bar shows bytes done, total, rate and the estimated time left (tqdm);
- every failure is a :class:`~srlib.errors.DownloadError` whose first line says what happened and
  what to do: no network (the host cannot be reached), HTTP 404 and other HTTP errors, a web page
  instead of the file (Google Drive's confirmation page), a transfer cut off before
  ``Content-Length`` bytes (``IncompleteRead``, reset connection, timeout), a full disk (checked
  before the transfer from ``Content-Length``, and again on every write);
- the ``.part`` file is kept after a cut-off or a full disk, so the next call resumes; it is
  never renamed here: the caller verifies size and checksums and only then renames it.

Only ``https`` URLs are fetched, redirects included; ``http`` only from the loopback interface
(the tests' server): :func:`srlib.weights.check_url`, the rule of every srlib download.
"""

from __future__ import annotations

import errno
import http.client
import os
import re
import shutil
import socket
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from .errors import DownloadError
from .weights import _SafeRedirect, check_url

CHUNK = 1 << 20
"""Bytes read and written per step."""

def human_bytes(n: float | None) -> str:
    """``1.5 GB`` style sizes (powers of 1000, as the sizes on the data sets' pages)."""
    if n is None:
        return "unknown size"
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000.0
    return f"{n:.1f} TB"  # pragma: no cover


def _disk_full(exc: OSError) -> bool:
    return getattr(exc, "errno", None) in (errno.ENOSPC, getattr(errno, "EDQUOT", -1))


def _free_bytes(folder: Path) -> int:
    return shutil.disk_usage(folder).free


def _open(url: str, start: int, timeout: float):
    headers = {"User-Agent": "srlib", "Accept-Encoding": "identity"}
    if start:
        headers["Range"] = f"bytes={start}-"
    req = urllib.request.Request(url, headers=headers)
    try:
        return urllib.request.build_opener(_SafeRedirect).open(req, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and start:
            return exc  # range past the end: the caller decides (maybe the part is complete)
        hint = {404: "the file is not at this address any more: check the data set's page for a "
                     "new link (python -m srlib.data list shows it)",
                403: "the server refuses the request: open the address in a browser to see why",
                429: "too many requests: wait a while and run the command again",
                }.get(exc.code, "run the command again later; the partial file is kept")
        raise DownloadError(f"download of {url} failed: HTTP {exc.code} {exc.reason}: {hint}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        host = urllib.parse.urlsplit(url).hostname
        if isinstance(reason, (socket.timeout, TimeoutError)):
            what = f"no answer from {host} within {timeout:.0f} s"
        else:
            what = f"cannot reach {host} ({reason})"
        raise DownloadError(f"download of {url} failed: {what}. Check the network connection (is this "
                            "machine online?) and run the command again") from None


def _content_range_start(resp) -> int | None:
    m = re.match(r"bytes\s+(\d+)-\d+/(\d+|\*)", resp.headers.get("Content-Range", ""))
    return int(m[1]) if m else None


def fetch(url: str, part: str | os.PathLike, *, expected_size: int | None = None,
          timeout: float = 60.0, progress: bool = True, desc: str | None = None, log=print) -> int:
    """Download ``url`` into ``part``, resuming from the bytes it already holds; return its size.

    ``expected_size`` (bytes, from the manifest) is checked against what the server offers
    before anything is transferred. The file is complete when this returns; it is not verified
    (checksums are the caller's job) and keeps its ``.part`` name.
    """
    check_url(url)
    part = Path(part)
    part.parent.mkdir(parents=True, exist_ok=True)
    have = part.stat().st_size if part.exists() else 0
    if expected_size is not None and have > expected_size:
        log(f"{part.name}: holds more bytes ({have}) than the file has ({expected_size}); starting again")
        part.unlink()
        have = 0
    if expected_size is not None and have == expected_size:
        return have

    resp = _open(url, have, timeout)
    if isinstance(resp, urllib.error.HTTPError):  # 416: nothing after byte `have`
        total = re.match(r"bytes\s+\*/(\d+)", resp.headers.get("Content-Range", "") or "")
        if total and int(total[1]) == have:
            return have
        log(f"{part.name}: the server cannot resume from byte {have}; starting again")
        part.unlink()
        have = 0
        resp = _open(url, 0, timeout)

    with resp:
        status = getattr(resp, "status", 200)
        if have and status == 206 and _content_range_start(resp) != have:
            raise DownloadError(f"download of {url} failed: asked to resume at byte {have}, the server "
                                f"answered {resp.headers.get('Content-Range')!r}; delete '{part}' and run again")
        if have and status != 206:
            log(f"{part.name}: the server does not resume downloads; starting again from zero")
            have = 0
        ctype = resp.headers.get("Content-Type", "")
        if ctype.startswith("text/html") and not url.endswith((".html", ".htm")):
            raise DownloadError(
                f"{url} returned a web page instead of the file (Google Drive shows a confirmation "
                f"page for large files, or a quota message): open the address in a browser, save the "
                f"file as '{part.with_suffix('')}' and run the command again; it is then verified "
                "and used")
        length = resp.headers.get("Content-Length")
        remaining = int(length) if length and length.isdigit() else None
        total = have + remaining if remaining is not None else expected_size
        if expected_size is not None and total is not None and total != expected_size:
            raise DownloadError(
                f"{url} offers {total} bytes, the manifest says {expected_size}: the file on the server "
                "changed. Nothing was downloaded; check the data set's page (python -m srlib.data "
                "list) and report it")
        need = (total - have) if total is not None else 0
        free = _free_bytes(part.parent)
        if need > free:
            raise DownloadError(
                f"not enough disk space for {part.name}: {human_bytes(need)} to download, "
                f"{human_bytes(free)} free in '{part.parent}'. Free some space or choose another "
                "folder with --root")
        bar = None
        if progress:
            from tqdm.auto import tqdm
            bar = tqdm(total=total, initial=have, unit="B", unit_scale=True, unit_divisor=1000,
                       desc=desc or part.name.removesuffix(".part"), dynamic_ncols=True, miniters=1)
        received = have
        try:
            with open(part, "ab" if have else "wb") as out:
                while True:
                    try:
                        block = resp.read(CHUNK)
                    except (http.client.IncompleteRead, http.client.HTTPException, ConnectionError,
                            socket.timeout, TimeoutError, OSError) as exc:
                        raise DownloadError(
                            f"download of {url} was cut off after {human_bytes(received)} of "
                            f"{human_bytes(total)} ({type(exc).__name__}). The bytes received are kept "
                            f"in '{part}': run the command again to resume") from None
                    if not block:
                        break
                    try:
                        out.write(block)
                    except OSError as exc:
                        if _disk_full(exc):
                            raise DownloadError(
                                f"disk full while writing '{part}' after {human_bytes(received)} of "
                                f"{human_bytes(total)}. The bytes received are kept: free some space "
                                "(or choose another folder with --root) and run the command again "
                                "to resume") from None
                        raise
                    received += len(block)
                    if bar is not None:
                        bar.update(len(block))
        finally:
            if bar is not None:
                bar.close()
    if total is not None and received < total:
        raise DownloadError(
            f"download of {url} was cut off: {received} of {total} bytes arrived. The bytes received "
            f"are kept in '{part}': run the command again to resume")
    if total is not None and received > total:
        part.unlink()
        raise DownloadError(f"download of {url} sent {received} bytes, more than the {total} announced; "
                            "the partial file was deleted: run the command again")
    return received


__all__ = ["fetch", "check_url", "human_bytes", "CHUNK"]
