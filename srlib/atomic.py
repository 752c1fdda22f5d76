"""Atomic writes: a temporary file next to the target, renamed over it in one step.

srlib's writers of images, tables and figures, checkpoints, downloads and model-cache entries
go through here. A reader sees the old file or the new one, never half of one.
Three details that ``tempfile.mkstemp`` + ``os.replace`` alone get wrong:

- **Permissions follow the umask.** ``mkstemp`` / ``mkdtemp`` create ``0600`` files and
  ``0700`` folders whatever the umask, and the rename keeps that mode, so every written image
  or checkpoint ended up private. Here temporary files are created with ``0666 & ~umask`` and
  folders with ``0777 & ~umask``, as ``open()``, ``touch`` or ``mkdir`` make them.
- **Leftovers of killed writers are cleaned.** A process killed between creating the temporary
  file and renaming it (``kill -9``, out of memory, power loss) leaves it behind; a checkpoint's
  is as large as the checkpoint. Temporary names carry the writer:
  ``.<target name>.<host tag>-<pid>.<random><suffix>``. The next write of the same target
  removes its leftovers whose writer is gone (same host, process no longer running) or that
  were last modified more than :data:`STALE_SECONDS` ago (a writer on another host, or a name
  from an older srlib that carries no process id). A live writer's file is never touched.
- **Errors name the target.** A folder without write permission or a full disk raises the
  usual ``OSError`` subclass with the *target* path as its filename, not the hidden temporary
  name the user never asked for.
"""

from __future__ import annotations

import contextlib
import errno as _errno
import hashlib
import os
import re
import secrets
import shutil
import socket
import time
from pathlib import Path

STALE_SECONDS = 24 * 3600
"""A temporary file of another host (or without a process id) older than this is a leftover."""


def _host_tag() -> str:
    return hashlib.sha256(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:8]


def temp_path(target, suffix: str = ".tmp") -> Path:
    """A fresh temporary name for ``target`` in its folder, tagged with this host and process."""
    target = Path(target)
    return target.parent / f".{target.name}.{_host_tag()}-{os.getpid()}.{secrets.token_hex(4)}{suffix}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists but belongs to someone else, or cannot tell: assume alive
        return True
    return True


# .<name>.<host tag>-<pid>.<random>  (this module)   |   .<name>.<8 of [a-z0-9_]>  (tempfile.mkstemp)
_OURS = re.compile(r"^\.(?P<name>.+)\.(?P<tag>[0-9a-f]{8})-(?P<pid>\d+)\.[0-9a-f]{8}$", re.S)
_LEGACY = re.compile(r"^\.(?P<name>.+)\.[a-z0-9_]{8}$", re.S)


def _abandoned(entry: os.DirEntry, stem: str, now: float) -> bool:
    """Whether a temporary entry (``stem`` = its name without the suffix) was left by a writer
    that is gone: same host and process no longer running, or untouched for STALE_SECONDS."""
    m = _OURS.match(stem)
    if m and m["tag"] == _host_tag():
        pid = int(m["pid"])
        if pid == os.getpid():
            return False  # ours: another thread may be writing it right now
        if not _pid_alive(pid):
            return True
    try:
        age = now - entry.stat(follow_symlinks=False).st_mtime
    except OSError:
        return False
    return age > STALE_SECONDS


def clean_stale(target, suffix: str = ".tmp", *, any_name: bool = False) -> list[Path]:
    """Remove leftover temporary files / folders of ``target`` whose writer is gone.

    Looks in ``target``'s folder for ``.<target name>.<...><suffix>`` names (this module's, and
    ``tempfile.mkstemp``'s as older srlib wrote them) and removes the abandoned ones (see
    :func:`_abandoned`). ``any_name=True`` takes every such name in ``target``'s folder, whatever
    the target (the model cache cleans all its temporary entries this way). Returns what was
    removed. Best effort: errors (removed meanwhile, no permission) are ignored, never raised.
    """
    target = Path(target)
    removed: list[Path] = []
    now = time.time()
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return removed
    for entry in entries:
        name = entry.name
        if not (name.startswith(".") and name.endswith(suffix)):
            continue
        stem = name[: len(name) - len(suffix)] if suffix else name
        m = _OURS.match(stem) or _LEGACY.match(stem)
        if m is None or (not any_name and m["name"] != target.name):
            continue
        if not _abandoned(entry, stem, now):
            continue
        path = Path(entry.path)
        with contextlib.suppress(OSError):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(path)
            else:
                path.unlink()
            removed.append(path)
    return removed


def target_error(exc: OSError, target, verb: str = "write") -> OSError:
    """The same kind of ``OSError`` as ``exc``, naming ``target`` instead of a temporary file."""
    reason = exc.strerror or str(exc)
    cls = type(exc) if isinstance(exc, OSError) else OSError
    try:
        new = cls(exc.errno if exc.errno is not None else _errno.EIO, f"cannot {verb} ({reason})", str(target))
    except TypeError:  # an OSError subclass with another constructor
        new = OSError(exc.errno or _errno.EIO, f"cannot {verb} ({reason})", str(target))
    return new


def _mentions(exc: BaseException, paths) -> bool:
    """An OSError about the temporary file: it names it, or it is a system error without a name
    (a full disk while writing). srlib's own errors (no errno) pass through unchanged."""
    names = {os.fspath(p) for p in paths}
    if not isinstance(exc, OSError) or exc.errno is None:
        return False
    return exc.filename is None or exc.filename in names or exc.filename2 in names


@contextlib.contextmanager
def atomic_open(target, mode: str = "wb", *, suffix: str = ".tmp", fsync: bool = False):
    """``with atomic_open(path) as fh: fh.write(...)``: the file appears at ``path`` only when the
    block succeeds (``os.replace``); on any error the temporary file is removed and ``path`` is
    untouched. The folder must exist. New files follow the umask; stale leftovers of earlier,
    killed writes of the same ``path`` are removed first (see the module docstring)."""
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_open writes whole files: mode must be 'wb' or 'w', got {mode!r}")
    target = Path(target)
    clean_stale(target, suffix)
    tmp = None
    for _ in range(16):
        tmp = temp_path(target, suffix)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
            break
        except FileExistsError:
            continue
        except OSError as exc:
            raise target_error(exc, target) from None
    else:  # pragma: no cover - 16 collisions of 32 random bits
        raise FileExistsError(_errno.EEXIST, "cannot create a temporary file", str(target))
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and _mentions(exc, [tmp]):
            raise target_error(exc, target) from None
        raise


def write_bytes(target, data: bytes, *, fsync: bool = False) -> Path:
    """Write ``data`` to ``target`` atomically (parent folders are created). Returns the path."""
    target = Path(target)
    make_dirs(target.parent)
    with atomic_open(target, "wb", fsync=fsync) as fh:
        fh.write(data)
    return target


def make_dirs(folder) -> Path:
    """``mkdir -p`` (modes follow the umask); an error names ``folder``."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError as exc:  # a file where a folder should be
        raise NotADirectoryError(_errno.ENOTDIR, f"cannot create folder ({exc.strerror}): a file has "
                                 "that name", str(folder)) from None
    return folder


def make_temp_dir(target, suffix: str = ".tmp") -> Path:
    """A new temporary folder for ``target`` (renamed over it later by the caller), next to it.

    Its mode follows the umask; stale leftovers of ``target`` are removed first.
    """
    target = Path(target)
    clean_stale(target, suffix)
    for _ in range(16):
        tmp = temp_path(target, suffix)
        try:
            os.mkdir(tmp, 0o777)
            return tmp
        except FileExistsError:
            continue
        except OSError as exc:
            raise target_error(exc, target) from None
    raise FileExistsError(_errno.EEXIST, "cannot create a temporary folder", str(target))  # pragma: no cover


__all__ = ["STALE_SECONDS", "atomic_open", "write_bytes", "make_dirs", "make_temp_dir", "clean_stale",
           "temp_path", "target_error"]
