"""The paper profile's data sets: manifests, download, verification, safe extraction, ``check``.

    python -m srlib.data list                       # every data set: size, licence, installed or not
    python -m srlib.data download div2k [--root DIR] [--part valid_hr valid_lr_x4] [--keep-archives]
    python -m srlib.data check drealsr [--root DIR] # data put in place by hand
    python -m srlib.data fake DIR                   # a tiny fake tree in the same layout (dry runs)

(``python -m srlib.datasets ...`` is the same program; ``srlib/data.py`` only hands over to it.)

The manifests live in ``data/manifests.json``: per data set its files (URL, size, SHA-256 and MD5
with where each value comes from), the licence line, and the layout after extraction (folders,
file-name patterns, image counts). The data root is ``--root``, else ``$SRLIB_DATA``, else the
repository's ``data/`` folder.

What ``download`` guarantees, file by file:

1. **Resumable transfer** (:mod:`srlib.resumable`) into ``<root>/.downloads/<file>.part`` with a
   progress bar (size, rate, ETA); a cut-off transfer resumes with an HTTP range request.
2. **Checksums before extraction**: size, SHA-256 and MD5 where the manifest has them. A file
   without a recorded SHA-256 is "unverified": its SHA-256 is recorded at the first download in
   ``<root>/.srlib/hashes.json`` and every later download of it must match. A mismatch deletes
   the file and says so.
3. **Safe extraction** with :func:`srlib.weights.extract_archive`: every member is checked before
   anything is written; absolute paths, ``..``, links pointing outside, device and FIFO members
   make the whole archive refused, naming the member.
4. **Atomic installation**: the archive is extracted into a staging folder under
   ``<root>/.srlib/``, its image counts are checked, it is moved into place, and only then is
   the completion marker ``<root>/.srlib/complete/<file>.json`` written. Loaders
   (:mod:`srlib.paper_data`) require the marker, so an interrupted download or extraction never
   looks complete; running the command again finishes the job.

Errors are :class:`~srlib.errors.DownloadError` (network, checksum, archive) or
:class:`~srlib.errors.DatasetError` (names, layout), one line saying what to do; the command
line prints them without a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import DatasetError, DownloadError

REPO_ROOT = Path(__file__).resolve().parents[1]
MANIFEST_PATH = REPO_ROOT / "data" / "manifests.json"
DATA_ENV = "SRLIB_DATA"
MANIFEST_ENV = "SRLIB_MANIFEST"
STATE_DIR = ".srlib"
DOWNLOADS_DIR = ".downloads"
COMMAND = "python -m srlib.data"


def data_root(root=None) -> Path:
    """``root`` if given, else ``$SRLIB_DATA``, else the repository's ``data/`` folder."""
    if root is not None and str(root) != "":
        return Path(root).expanduser()
    env = os.environ.get(DATA_ENV, "").strip()
    return Path(env).expanduser() if env else REPO_ROOT / "data"


# ============================================================================================
# Manifests
# ============================================================================================
@dataclass(frozen=True)
class FileEntry:
    """One archive of a data set."""

    url: str
    filename: str
    size: int | None
    sha256: str | None
    sha256_from: str | None
    md5: str | None
    md5_from: str | None
    extract_to: str
    provides: tuple[str, ...]
    note: str = ""

    @property
    def verified(self) -> bool:
        """True when the manifest holds a SHA-256 or MD5 to check the download against."""
        return bool(self.sha256 or self.md5)


@dataclass(frozen=True)
class LayoutEntry:
    """A folder of images after extraction: ``dir`` under the root, names matching ``pattern``.

    ``pattern`` holds ``{id}`` (the image id, shared by an HR image and its LR partner) and may
    hold ``{n}`` (digits). ``hr_pattern``: HR images in the same folder (RealSR). ``subfolders``:
    images sit one folder down (LFW: one folder per person). ``count``: images expected, when known.
    """

    key: str
    dir: str
    pattern: str
    hr_pattern: str | None = None
    count: int | None = None
    subfolders: bool = False

    def regex(self, hr: bool = False) -> re.Pattern:
        pat = self.hr_pattern if hr else self.pattern
        out = re.escape(pat).replace(r"\{id\}", r"(?P<id>.+?)").replace(r"\{n\}", r"\d+")
        return re.compile(f"^{out}$")


@dataclass(frozen=True)
class Dataset:
    """A manifest entry: what the data set is, where its files come from, how it lies on disk."""

    name: str
    title: str
    homepage: str
    citation: str
    licence: str
    notebooks: tuple[str, ...]
    files: tuple[FileEntry, ...]
    layout: dict
    pairs: dict
    manual: str | None = None
    note: str = ""
    sources: tuple[str, ...] = ()
    """Image-id prefixes of the set's sources (DRealSR's cameras), for ``source=`` filters."""

    @property
    def size(self) -> int | None:
        """Bytes to download (None when a file's size is not published)."""
        sizes = [f.size for f in self.files]
        return None if any(s is None for s in sizes) else sum(sizes)

    def files_for(self, parts=None) -> tuple[FileEntry, ...]:
        """The files that provide ``parts`` (layout keys); all files when ``parts`` is None."""
        if not parts:
            return self.files
        unknown = [p for p in parts if p not in self.layout]
        if unknown:
            raise DatasetError(f"data set {self.name!r} has no part {', '.join(map(repr, unknown))}; "
                               f"its parts are: {', '.join(self.layout)}")
        return tuple(f for f in self.files if set(f.provides) & set(parts))


_HEX = {"sha256": 64, "md5": 32}


def _parse(name: str, raw: dict) -> Dataset:
    where = f"manifest entry {name!r}"
    try:
        layout = {k: LayoutEntry(k, v["dir"], v["pattern"], v.get("hr_pattern"), v.get("count"),
                                 bool(v.get("subfolders", False))) for k, v in raw["layout"].items()}
        files = []
        for f in raw["files"]:
            for algo, n in _HEX.items():
                value = f.get(algo)
                if value is not None and not re.fullmatch(f"[0-9a-f]{{{n}}}", value):
                    raise DatasetError(f"{where}: {algo} of {f['filename']} must be {n} lowercase hex "
                                       f"digits, got {value!r}")
                if value is not None and not f.get(f"{algo}_from"):
                    raise DatasetError(f"{where}: {algo} of {f['filename']} does not say where it comes "
                                       f"from ({algo}_from)")
            bad = [p for p in f["provides"] if p not in layout]
            if bad:
                raise DatasetError(f"{where}: {f['filename']} provides unknown parts {bad}")
            files.append(FileEntry(f["url"], f["filename"], f.get("size"), f.get("sha256"),
                                   f.get("sha256_from"), f.get("md5"), f.get("md5_from"),
                                   f.get("extract_to", ""), tuple(f["provides"]), f.get("note", "")))
        for split, spec in raw.get("pairs", {}).items():
            keys = list(spec.get("lr", {}).values()) + ([spec["hr"]] if "hr" in spec else [])
            bad = [k for k in keys if k not in layout]
            if bad:
                raise DatasetError(f"{where}: pairs {split!r} name unknown layout keys {bad}")
        ds = Dataset(name, raw["title"], raw["homepage"], raw["citation"], raw["licence"],
                     tuple(raw.get("notebooks", ())), tuple(files), layout, dict(raw.get("pairs", {})),
                     raw.get("manual"), raw.get("note", ""), tuple(raw.get("sources", ())))
    except KeyError as exc:
        raise DatasetError(f"{where} lacks the field {exc.args[0]!r}") from None
    if not ds.files and not ds.manual:
        raise DatasetError(f"{where} has neither files nor manual instructions")
    if not ds.licence.strip():
        raise DatasetError(f"{where} has no licence line")
    return ds


def load_manifests(path=None) -> dict[str, Dataset]:
    """Every data set of ``path`` (default ``$SRLIB_MANIFEST``, else ``data/manifests.json``)."""
    path = Path(path or os.environ.get(MANIFEST_ENV, "") or MANIFEST_PATH)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise DatasetError(f"data set manifest '{path}' not found: it ships with the repository "
                           "(data/manifests.json); run from a checkout of the course") from None
    except json.JSONDecodeError as exc:
        raise DatasetError(f"data set manifest '{path}' is not valid JSON: {exc}") from None
    return {name: _parse(name, entry) for name, entry in raw["datasets"].items()}


def get(name: str, manifests: dict[str, Dataset] | None = None) -> Dataset:
    """The manifest entry ``name`` (case-insensitive); an unknown name lists the known ones."""
    manifests = load_manifests() if manifests is None else manifests
    key = str(name).strip().lower()
    if key not in manifests:
        raise DatasetError(f"unknown data set {name!r}; known data sets: {', '.join(manifests)}")
    return manifests[key]


# ============================================================================================
# State under <root>/.srlib: completion markers, recorded hashes, staging, locks
# ============================================================================================
def state_dir(root) -> Path:
    return Path(root) / STATE_DIR


def marker_path(root, file_or_name: str) -> Path:
    """The completion marker of an archive (or ``manual-<data set>`` for hand-placed data)."""
    return state_dir(root) / "complete" / f"{file_or_name}.json"


def read_marker(root, file_or_name: str) -> dict | None:
    try:
        return json.loads(marker_path(root, file_or_name).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _write_json_atomic(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=1, sort_keys=True))
    os.replace(tmp, path)


def write_marker(root, file_or_name: str, info: dict) -> Path:
    path = marker_path(root, file_or_name)
    _write_json_atomic(path, {**info, "installed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    return path


def installed_parts(ds: Dataset, root) -> set[str]:
    """Layout keys of ``ds`` whose archive (or hand-placed folder) is marked complete under ``root``."""
    done = set()
    for f in ds.files:
        if read_marker(root, f.filename):
            done.update(f.provides)
    manual = read_marker(root, f"manual-{ds.name}")
    if manual:
        done.update(manual.get("parts", ds.layout))
    return done


def _recorded_hashes(root) -> dict:
    try:
        return json.loads((state_dir(root) / "hashes.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


@contextlib.contextmanager
def _lock(root, name: str):
    """An exclusive lock per archive, so two commands never write the same files at once."""
    path = state_dir(root) / "locks" / f"{name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: no lock
            yield
            return
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise DownloadError(f"another process is installing {name} into '{root}' right now; wait "
                                "for it to finish") from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# ============================================================================================
# Verification
# ============================================================================================
def file_hashes(path, chunk: int = 1 << 20) -> tuple[str, str]:
    """``(sha256, md5)`` of a file in one pass."""
    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            sha.update(block)
            md5.update(block)
    return sha.hexdigest(), md5.hexdigest()


def verify_archive(fe: FileEntry, path: Path, root) -> str:
    """Check size, SHA-256, MD5 (and a recorded SHA-256) of ``path``; return its SHA-256.

    Raises DownloadError on the first mismatch; the caller deletes the file.
    """
    size = path.stat().st_size
    if fe.size is not None and size != fe.size:
        raise DownloadError(f"{fe.filename} has {size} bytes, the manifest says {fe.size}: the file is "
                            "incomplete or a different file")
    sha, md5 = file_hashes(path)
    if fe.sha256 and sha != fe.sha256:
        raise DownloadError(f"checksum mismatch for {fe.filename}: sha256 {sha}, expected {fe.sha256} "
                            f"({fe.sha256_from}); the transfer was corrupted or the server's file changed")
    if fe.md5 and md5 != fe.md5:
        raise DownloadError(f"checksum mismatch for {fe.filename}: md5 {md5}, expected {fe.md5} "
                            f"({fe.md5_from}); the transfer was corrupted or the server's file changed")
    recorded = _recorded_hashes(root).get(fe.filename)
    if not fe.sha256 and recorded and recorded != sha:
        raise DownloadError(f"{fe.filename} differs from the copy downloaded before (sha256 {sha}, "
                            f"recorded {recorded} in '{state_dir(root) / 'hashes.json'}'): the server's "
                            "file changed, or this transfer is corrupted")
    return sha


def _record_hash(root, filename: str, sha: str) -> None:
    hashes = _recorded_hashes(root)
    if filename not in hashes:
        hashes[filename] = sha
        _write_json_atomic(state_dir(root) / "hashes.json", hashes)


# ============================================================================================
# Layout checks
# ============================================================================================
def scan(root, entry: LayoutEntry, hr: bool = False) -> dict[str, Path]:
    """``{id: path}`` of the images of a layout entry (HR names with ``hr=True``), sorted by id."""
    folder = Path(root) / entry.dir
    if not folder.is_dir():
        return {}
    rx = entry.regex(hr)
    files = (p for sub in sorted(folder.iterdir()) if sub.is_dir() for p in sub.iterdir()) \
        if entry.subfolders else folder.iterdir()
    found = {}
    for p in files:
        m = rx.match(p.name)
        if m and p.is_file():
            found[m["id"]] = p
    return dict(sorted(found.items()))


def check_layout(ds: Dataset, root, parts=None) -> dict[str, int]:
    """Count the images of each layout key; raise DatasetError when one is missing or short."""
    counts = {}
    for key in parts or ds.layout:
        entry = ds.layout[key]
        n = len(scan(root, entry))
        where = Path(root) / entry.dir
        if n == 0:
            raise DatasetError(f"{ds.name}: no images matching '{entry.pattern}' in '{where}'")
        if entry.count is not None and n != entry.count:
            raise DatasetError(f"{ds.name}: '{where}' holds {n} images matching '{entry.pattern}', "
                               f"expected {entry.count}")
        counts[key] = n
    return counts


# ============================================================================================
# Installing one archive
# ============================================================================================
def _merge_into(src: Path, dest: Path) -> None:
    """Move the tree ``src`` into ``dest``: whole folders by rename where ``dest`` lacks them."""
    dest.mkdir(parents=True, exist_ok=True)
    for item in sorted(src.iterdir()):
        target = dest / item.name
        if target.is_dir() and item.is_dir() and not target.is_symlink():
            _merge_into(item, target)
        else:
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            os.replace(item, target)


def _space_error(where: Path, what: str) -> DownloadError:
    free = shutil.disk_usage(where).free
    from .resumable import human_bytes
    return DownloadError(f"disk full while {what} in '{where}' ({human_bytes(free)} free): free some "
                         "space or choose another folder with --root, then run the command again")


def install_file(ds: Dataset, fe: FileEntry, root, *, keep_archive: bool = False, progress: bool = True,
                 timeout: float = 60.0, log=print) -> Path:
    """Download (resuming), verify, extract into staging, check, move into place, mark complete."""
    from . import resumable
    from .weights import extract_archive

    root = Path(root)
    downloads = root / DOWNLOADS_DIR
    downloads.mkdir(parents=True, exist_ok=True)
    with _lock(root, fe.filename):
        marker_path(root, fe.filename).unlink(missing_ok=True)
        archive = downloads / fe.filename
        if archive.exists():
            log(f"{fe.filename}: found in '{downloads}', verifying")
            try:
                sha = verify_archive(fe, archive, root)
            except DownloadError as exc:
                raise DownloadError(f"{exc}. Delete '{archive}' and run the command again") from None
        else:
            part = downloads / f"{fe.filename}.part"
            if part.exists():
                log(f"{fe.filename}: resuming after {resumable.human_bytes(part.stat().st_size)}")
            else:
                log(f"{fe.filename}: downloading {resumable.human_bytes(fe.size)} from {fe.url}")
            resumable.fetch(fe.url, part, expected_size=fe.size, timeout=timeout, progress=progress,
                            desc=fe.filename, log=log)
            log(f"{fe.filename}: verifying" + ("" if fe.verified else
                                              " (unverified: no published checksum; recording its sha256)"))
            try:
                sha = verify_archive(fe, part, root)
            except DownloadError as exc:
                part.unlink(missing_ok=True)
                raise DownloadError(f"{exc}. The download was deleted: run the command again") from None
            os.replace(part, archive)
        if not fe.sha256:
            _record_hash(root, fe.filename, sha)

        staging_root = state_dir(root) / "staging"
        for old in staging_root.glob(f"{fe.filename}-*"):  # leftovers of a killed run (we hold the lock)
            shutil.rmtree(old, ignore_errors=True)
        staging = staging_root / f"{fe.filename}-{os.getpid()}"
        log(f"{fe.filename}: extracting")
        try:
            extract_archive(archive, staging)
            dest_rel = Path(fe.extract_to) if fe.extract_to else Path()
            # check the staged tree before anything is moved into place
            counts = check_layout(_relocated(ds, dest_rel), staging, fe.provides)
            _merge_into(staging, root / dest_rel)
        except DownloadError:
            archive.unlink(missing_ok=True)  # a refused archive is of no use; never keep it around
            raise
        except OSError as exc:
            if getattr(exc, "errno", None) == errno.ENOSPC:
                raise _space_error(root, f"extracting {fe.filename}") from None
            raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        write_marker(root, fe.filename, {"dataset": ds.name, "file": fe.filename, "url": fe.url, "sha256": sha,
                                         "verified": fe.verified, "provides": list(fe.provides),
                                         "images": counts, "fake": False})
        if not keep_archive:
            archive.unlink(missing_ok=True)
        return root


def _relocated(ds: Dataset, dest_rel: Path) -> Dataset:
    """``ds`` with layout folders relative to the staging folder of an archive that extracts to
    ``dest_rel`` (so that the staged tree can be checked before it is moved into place)."""
    layout = {}
    for k, e in ds.layout.items():
        rel = Path(e.dir)
        if dest_rel.parts and rel.parts[:len(dest_rel.parts)] == dest_rel.parts:
            rel = Path(*rel.parts[len(dest_rel.parts):])
        layout[k] = LayoutEntry(k, str(rel), e.pattern, e.hr_pattern, e.count, e.subfolders)
    return Dataset(ds.name, ds.title, ds.homepage, ds.citation, ds.licence, ds.notebooks, ds.files,
                   layout, ds.pairs, ds.manual, ds.note, ds.sources)


def download(name: str, root=None, *, parts=None, keep_archives: bool = False, progress: bool = True,
             timeout: float = 60.0, manifests=None, log=print) -> Path:
    """Install data set ``name`` (or only its ``parts``) under the data root; return the root.

    Files already marked complete are skipped. A data set without a direct download (DRealSR)
    raises DatasetError with the manual steps.
    """
    ds = get(name, manifests)
    root = data_root(root)
    if not ds.files:
        raise DatasetError(f"{ds.name} cannot be downloaded by a script. {ds.manual}")
    files = ds.files_for(parts)
    root.mkdir(parents=True, exist_ok=True)
    shared = [other.name for other in (manifests or load_manifests()).values()
              if other.name != ds.name and {f.filename for f in other.files} & {f.filename for f in files}]
    for fe in files:
        if read_marker(root, fe.filename):
            log(f"{fe.filename}: already installed in '{root}'")
            continue
        install_file(ds, fe, root, keep_archive=keep_archives, progress=progress, timeout=timeout, log=log)
    if shared:
        log(f"the same archive also holds: {', '.join(shared)}")
    log(f"{ds.name}: ready in '{root}' (licence: {ds.licence})")
    return root


def check(name: str, root=None, *, parts=None, manifests=None, log=print) -> dict[str, int]:
    """Verify a data set put in place by hand (layout and counts) and mark those parts complete.

    Without ``parts``: every split whose folders are all present (e.g. DRealSR's test pairs
    without its training patches); when none is, every part is required (and the error names the
    first folder missing).
    """
    ds = get(name, manifests)
    root = data_root(root)
    if not parts:
        present = []
        for spec in ds.pairs.values():
            keys = list(spec.get("lr", {}).values()) + ([spec["hr"]] if "hr" in spec else [])
            if all(scan(root, ds.layout[k]) for k in keys):
                present += [k for k in keys if k not in present]
        parts = present or list(ds.layout)
    else:
        unknown = [p for p in parts if p not in ds.layout]
        if unknown:
            raise DatasetError(f"data set {ds.name!r} has no part {unknown[0]!r}; its parts are: "
                               f"{', '.join(ds.layout)}")
    counts = check_layout(ds, root, parts)
    old = read_marker(root, f"manual-{ds.name}") or {}
    marked = sorted(set(old.get("parts", [])) | set(counts))
    write_marker(root, f"manual-{ds.name}", {"dataset": ds.name, "images": {**old.get("images", {}), **counts},
                                             "parts": marked, "verified": False, "fake": False,
                                             "source": "checked in place"})
    log(f"{ds.name}: {', '.join(f'{k} {n}' for k, n in counts.items())} images in '{root}'; marked complete")
    return counts


def status_rows(root=None, manifests=None) -> list[dict]:
    """One row per data set: name, size, parts installed, verification state, licence."""
    manifests = load_manifests() if manifests is None else manifests
    root = data_root(root)
    from .resumable import human_bytes
    rows = []
    for ds in manifests.values():
        have = installed_parts(ds, root)
        state = ("installed" if have == set(ds.layout) else
                 f"partly ({', '.join(sorted(have))})" if have else "not installed")
        checks = ("manual" if not ds.files else
                  "sha256" if all(f.sha256 for f in ds.files) else
                  "md5" if all(f.verified for f in ds.files) else "unverified")
        rows.append({"name": ds.name, "download": "manual" if not ds.files else human_bytes(ds.size),
                     "checksum": checks, "state": state, "notebooks": " ".join(ds.notebooks),
                     "licence": ds.licence, "title": ds.title})
    return rows


# ============================================================================================
# Command line
# ============================================================================================
def main(argv=None, prog: str = COMMAND) -> int:
    ap = argparse.ArgumentParser(prog=prog, description="The paper profile's data sets: list, download "
                                 "(resumable, verified, safely extracted), check hand-placed data, fake trees.")
    ap.add_argument("--manifest", help=argparse.SUPPRESS)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p_list = sub.add_parser("list", help="every data set: size, checksum, installed or not, licence")
    p_dl = sub.add_parser("download", help="download, verify and extract data sets")
    p_dl.add_argument("names", nargs="+", metavar="NAME")
    p_dl.add_argument("--part", nargs="+", dest="parts", metavar="PART",
                      help="only these parts (e.g. valid_hr valid_lr_x4); default: all")
    p_dl.add_argument("--keep-archives", action="store_true", help="keep the archives after extraction")
    p_dl.add_argument("--no-progress", action="store_true", help="no progress bar")
    p_dl.add_argument("--timeout", type=float, default=60.0, help="seconds without data before giving up")
    p_ck = sub.add_parser("check", help="verify data put in place by hand and mark it complete")
    p_ck.add_argument("names", nargs="+", metavar="NAME")
    p_ck.add_argument("--part", nargs="+", dest="parts", metavar="PART",
                      help="only these parts; default: every split whose folders are present")
    for p in (p_list, p_dl, p_ck):
        p.add_argument("--root", help=f"data folder (default: ${DATA_ENV}, else the repository's data/)")
    p_fake = sub.add_parser("fake", help="write a tiny fake tree in the manifests' layout (dry runs)")
    p_fake.add_argument("root", help="an empty or new folder")
    args = ap.parse_args(argv)
    try:
        manifests = load_manifests(args.manifest)
        if args.cmd == "list":
            root = data_root(args.root)
            print(f"data root: {root}")
            for r in status_rows(args.root, manifests):
                print(f"  {r['name']:<9} {r['download']:>10}  {r['checksum']:<10} {r['state']:<14} "
                      f"notebooks {r['notebooks']:<12} {r['title']}")
                print(f"  {'':<9} licence: {r['licence']}")
            return 0
        if args.cmd == "download":
            for name in args.names:
                download(name, args.root, parts=args.parts, keep_archives=args.keep_archives,
                         progress=not args.no_progress, timeout=args.timeout, manifests=manifests)
            return 0
        if args.cmd == "check":
            for name in args.names:
                check(name, args.root, parts=args.parts, manifests=manifests)
            return 0
        if args.cmd == "fake":
            from .dry_run import make_fake_tree
            root = make_fake_tree(args.root, manifests=manifests)
            print(f"fake data tree written to '{root}' (set {DATA_ENV}={root} to use it)")
            return 0
    except (DatasetError, DownloadError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted: run the same command again to resume", file=sys.stderr)
        return 130
    return 2  # pragma: no cover


__all__ = ["Dataset", "FileEntry", "LayoutEntry", "DATA_ENV", "MANIFEST_PATH", "data_root",
           "load_manifests", "get", "download", "check", "install_file", "verify_archive", "scan",
           "check_layout", "installed_parts", "read_marker", "write_marker", "marker_path", "status_rows",
           "file_hashes", "main"]

if __name__ == "__main__":
    sys.exit(main(prog="python -m srlib.datasets"))
