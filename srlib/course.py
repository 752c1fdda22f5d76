"""The course runner behind ``make course``: execute every notebook with papermill.

    python -m srlib.course --profile standard [--only 00 02] [--jobs N]
                           --figures-dir figures --out-dir build/notebooks/standard
    python -m srlib.course --profile paper --dry-run ...   # paper code path, fake data, CPU

Each notebook runs in its own child process under a kernel that this runner registers for the
interpreter running it (so a fresh machine never sees "No such kernel"), with the working
directory ``notebooks/``, the parameters ``profile``, ``seed``, ``device`` and ``figures_dir``
injected, and a wall-clock timeout. Executed notebooks go to the out dir, never back into
``notebooks/``; they are filled notebooks, what a student sees in Jupyter: the kernel draws with
matplotlib's inline backend (figures are stored in the cell outputs) and tables render as tables
(:class:`srlib.report.SavedTable`). Interactive widgets stay static (``SRLIB_HEADLESS``), so
nothing waits for a browser.

The committed ``figures/`` are written only at the standard profile and only from a clean git
tree, so that every provenance record names a real commit; ``--allow-dirty`` (or
``SRLIB_ALLOW_DIRTY=1``) overrides that for local work. The runner samples the memory of each notebook's process tree and prints a
summary (notebook, ok/failed, seconds, peak memory); it exits non-zero when any notebook failed,
naming the cell and the error.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from .profiles import PROFILE_NAMES, get_profile
from .report import COURSE_RUNNER_ENV, committed_figures_dir, git_commit

KERNEL_NAME = "srlib-course"
REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_NOTEBOOKS = REPO_ROOT / "notebooks"
# Per-notebook wall-clock limits (seconds); the course promises 90 s / 10 min / hours.
DEFAULT_TIMEOUT = {"smoke": 300, "standard": 1200, "paper": 24 * 3600, "dry_run": 900}
"""Seconds per notebook. A dry run trains the papers' full-size networks a step per phase and times
their CPU forward passes (EDSR 256 x 32 in notebook 05), so it gets more than smoke."""
# The kernel's matplotlib backend: inline, so figures land in the executed notebook's outputs.
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"
ALLOW_DIRTY_ENV = "SRLIB_ALLOW_DIRTY"


@dataclass
class Result:
    notebook: str
    ok: bool
    seconds: float
    peak_mb: float
    output: str
    error: str = ""


def list_notebooks(notebooks_dir: Path, only: list[str] | None = None) -> list[Path]:
    """Course notebooks (``NN_name.ipynb``) in order; ``only`` keeps those whose name starts
    with one of the given prefixes (``00``, ``02_srgan``)."""
    found = sorted(p for p in Path(notebooks_dir).glob("[0-9][0-9]_*.ipynb"))
    if only:
        chosen = [p for p in found if any(p.name.startswith(o) for o in only)]
        missing = [o for o in only if not any(p.name.startswith(o) for p in found)]
        if missing:
            names = ", ".join(p.stem for p in found) or "none"
            raise SystemExit(f"error: no notebook matches {', '.join(missing)}; available: {names}")
        return chosen
    return found


def run_order(notebooks: list[Path], only=None) -> list[Path]:
    """The order in which the notebooks start: that of ``only`` when given, else course order.

    With several jobs the order matters: starting the longest notebooks first lets the job slots
    finish together (``make dry-run`` lists its notebooks heaviest first for this reason).
    """
    if not only:
        return list(notebooks)
    rank = lambda p: min(i for i, o in enumerate(only) if p.name.startswith(o))  # noqa: E731
    return sorted(notebooks, key=rank)


def install_kernel(root: Path) -> Path:
    """Write a kernelspec for this interpreter under ``root/kernels`` and return ``root``.

    Pointing ``JUPYTER_PATH`` at ``root`` makes the kernel name resolve to exactly the Python
    that runs the course, whatever kernels the user has installed elsewhere.
    """
    spec_dir = root / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"srlib course ({Path(sys.executable).parent.parent.name})",
        "language": "python",
        "env": {"MPLBACKEND": INLINE_BACKEND, "SRLIB_HEADLESS": "1", COURSE_RUNNER_ENV: "1"},
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=1))
    return root


def _tree_rss(proc) -> int:
    total = 0
    try:
        procs = [proc] + proc.children(recursive=True)
    except Exception:
        return 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except Exception:
            pass
    return total


def _kill_tree(pid: int) -> None:
    try:
        import psutil

        parent = psutil.Process(pid)
        for p in parent.children(recursive=True) + [parent]:
            try:
                p.send_signal(signal.SIGKILL)
            except Exception:
                pass
    except Exception:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def run_one(nb: Path, *, profile: str, seed: int, device: str, figures_dir: Path, out_dir: Path,
            timeout: float, jupyter_path: Path, extra_params: dict | None = None,
            threads: int | None = None, extra_env: dict | None = None) -> Result:
    """Execute one notebook in a child process; measure wall time and peak memory of its tree."""
    import psutil

    out_dir.mkdir(parents=True, exist_ok=True)
    output = out_dir / nb.name
    params = {"profile": profile, "seed": seed, "device": device,
              "figures_dir": str(figures_dir.resolve()), **(extra_params or {})}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        status_file = Path(fh.name)
    cmd = [sys.executable, "-m", "srlib.course", "--_child", str(nb), str(output),
           json.dumps(params), str(status_file)]
    env = dict(os.environ, JUPYTER_PATH=os.pathsep.join(
        [str(jupyter_path)] + [p for p in os.environ.get("JUPYTER_PATH", "").split(os.pathsep) if p]),
        MPLBACKEND=INLINE_BACKEND, SRLIB_HEADLESS="1", PYDEVD_DISABLE_FILE_VALIDATION="1",
        **{COURSE_RUNNER_ENV: "1"})
    if threads and "OMP_NUM_THREADS" not in os.environ:
        env["OMP_NUM_THREADS"] = str(threads)
    env.update(extra_env or {})
    start = time.time()
    proc = subprocess.Popen(cmd, cwd=nb.parent, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    ps = psutil.Process(proc.pid)
    peak = 0
    timed_out = False
    while proc.poll() is None:
        peak = max(peak, _tree_rss(ps))
        if time.time() - start > timeout:
            timed_out = True
            _kill_tree(proc.pid)
            break
        time.sleep(0.25)
    log, _ = proc.communicate()
    seconds = time.time() - start
    try:
        status = json.loads(status_file.read_text() or "{}")
    except (OSError, json.JSONDecodeError):
        status = {}
    finally:
        status_file.unlink(missing_ok=True)
    if timed_out:
        error = f"timed out after {timeout:.0f} s"
    elif proc.returncode != 0 or not status.get("ok"):
        error = status.get("error") or f"exited with code {proc.returncode}: {log.strip()[-2000:]}"
    else:
        error = ""
    return Result(nb.stem, not error, round(seconds, 1), round(peak / 2**20, 1), str(output), error)


def _child(nb: str, output: str, params_json: str, status_file: str) -> int:
    """Runs inside the child process: papermill one notebook, write a status record."""
    import papermill as pm

    status: dict = {"ok": False}
    try:
        pm.execute_notebook(nb, output, parameters=json.loads(params_json), kernel_name=KERNEL_NAME,
                            cwd=str(Path(nb).parent), progress_bar=False, log_output=False,
                            request_save_on_cell_execute=True)
        status["ok"] = True
    except pm.PapermillExecutionError as exc:
        first = (exc.source or "").strip().splitlines()
        status["error"] = (f"cell {exc.cell_index} of the executed notebook (execution count {exc.exec_count}"
                           f"{', `' + first[0][:60] + '`' if first else ''}) raised "
                           f"{exc.ename}: {exc.evalue}")
    except Exception as exc:  # kernel died, bad notebook JSON, ...
        status["error"] = f"{type(exc).__name__}: {exc}"
    Path(status_file).write_text(json.dumps(status))
    return 0 if status["ok"] else 1


def summary_table(results: list[Result]) -> str:
    lines = ["| notebook | status | seconds | peak memory (MB) |", "|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r.notebook} | {'ok' if r.ok else 'FAILED'} | {r.seconds:.1f} | "
                     f"{r.peak_mb:.0f} |")
    total = sum(r.seconds for r in results)
    lines.append(f"| total | {sum(r.ok for r in results)}/{len(results)} ok | {total:.1f} | "
                 f"{max((r.peak_mb for r in results), default=0):.0f} |")
    return "\n".join(lines)


def check_figures_target(figures_dir: Path, profile: str, *, allow_dirty: bool = False,
                         commit: str | None = None) -> None:
    """Refuse to write the committed ``figures/`` from anything but a clean standard run.

    ``commit`` is the tree's :func:`srlib.report.git_commit` (looked up when not given). Raises
    ``SystemExit`` with what to do; other folders are always fine.
    """
    if Path(figures_dir).resolve() != committed_figures_dir().resolve():
        return
    if profile != "standard":
        raise SystemExit(f"error: the committed figures/ come from the standard profile; write a "
                         f"{profile!r} run elsewhere (--figures-dir build/figures/{profile})")
    if allow_dirty:
        return
    commit = commit if commit is not None else git_commit(committed_figures_dir().parent)
    if commit is None or commit.endswith("-dirty"):
        state = "is not a git checkout" if commit is None else "has uncommitted changes (git status)"
        raise SystemExit(
            f"error: the working tree {state}; make course writes the committed figures/ only from "
            "a clean tree, so that every provenance record names a real commit. Commit (or set "
            "aside) the changes first, or pass --allow-dirty (SRLIB_ALLOW_DIRTY=1 make course) "
            "for local work, or write elsewhere with --figures-dir build/figures/standard.")


def run_course(*, profile: str, notebooks_dir: Path = DEFAULT_NOTEBOOKS, only=None, jobs: int = 1,
               figures_dir: Path, out_dir: Path, seed: int = 0, device: str = "auto",
               timeout: float | None = None, allow_dirty: bool = False, dry_run: bool = False,
               log=print) -> list[Result]:
    """Run the selected notebooks (``jobs`` at a time) and write ``out_dir/summary.{md,json}``.

    Writing into the committed ``figures/`` needs the standard profile and a clean tree
    (:func:`check_figures_target`; ``allow_dirty`` overrides the second). ``dry_run`` (paper
    profile only, :mod:`srlib.dry_run`): a fake data tree in ``out_dir/fake_data`` as
    ``$SRLIB_DATA``, a model cache in ``out_dir/cache``, ``$SRLIB_DRY_RUN=1`` and the papermill
    parameter ``dry_run=True``, under its own timeout (``DEFAULT_TIMEOUT['dry_run']``).
    """
    get_profile(profile)  # a wrong name fails here, before any kernel starts
    if dry_run and profile != "paper":
        raise SystemExit(f"error: a dry run exercises the paper profile; use --profile paper, not {profile!r}")
    notebooks = list_notebooks(Path(notebooks_dir).resolve(), only)
    if not notebooks:
        raise SystemExit(f"error: no notebooks found in {notebooks_dir}")
    # absolute paths: each notebook runs with notebooks/ as its working directory
    out_dir = Path(out_dir).resolve()
    figures_dir = Path(figures_dir).resolve()
    check_figures_target(figures_dir, profile, allow_dirty=allow_dirty)
    figures_dir.mkdir(parents=True, exist_ok=True)
    jupyter_path = install_kernel(out_dir / ".jupyter")
    timeout = timeout or DEFAULT_TIMEOUT["dry_run" if dry_run else profile]
    extra_params, extra_env = None, None
    if dry_run:
        import shutil

        from .datasets import DATA_ENV
        from .dry_run import DRY_RUN_ENV, make_fake_tree
        from .paths import CACHE_ENV

        fake = out_dir / "fake_data"
        shutil.rmtree(fake, ignore_errors=True)
        make_fake_tree(fake)
        extra_params = {"dry_run": True}
        extra_env = {DATA_ENV: str(fake), CACHE_ENV: str(out_dir / "cache"), DRY_RUN_ENV: "1"}
        log(f"dry run: fake data tree {fake}, model cache {out_dir / 'cache'}")
    log(f"running {len(notebooks)} notebook(s), profile={profile}{' (dry run)' if dry_run else ''}, jobs={jobs}, "
        f"timeout={timeout:.0f}s each, figures -> {figures_dir}, executed -> {out_dir}")

    # Notebooks running side by side share the cores: torch's default of one thread per core in
    # each of them oversubscribes the machine (measured ~3x slower steps on 2 cores), so each
    # job gets its share unless OMP_NUM_THREADS is set by the caller.
    threads = max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else None

    def job(nb: Path) -> Result:
        res = run_one(nb, profile=profile, seed=seed, device=device, figures_dir=figures_dir,
                      out_dir=out_dir, timeout=timeout, jupyter_path=jupyter_path, threads=threads,
                      extra_params=extra_params, extra_env=extra_env)
        log(f"  {res.notebook}: {'ok' if res.ok else 'FAILED'} in {res.seconds:.1f} s, "
            f"peak {res.peak_mb:.0f} MB" + (f"\n    {res.error}" if res.error else ""))
        return res

    order = run_order(notebooks, only)
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        results = dict(zip(order, pool.map(job, order)))
    results = [results[nb] for nb in notebooks]  # the summary lists them in course order
    table = summary_table(results)
    (out_dir / "summary.md").write_text(f"profile: {profile}{' (dry run)' if dry_run else ''}\n\n{table}\n")
    (out_dir / "summary.json").write_text(json.dumps([asdict(r) for r in results], indent=1))
    return results


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "--_child":
        return _child(*argv[1:5])
    ap = argparse.ArgumentParser(prog="python -m srlib.course", description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="standard",
                    help=f"one of {', '.join(PROFILE_NAMES)} (default: standard)")
    ap.add_argument("--only", nargs="+", metavar="NN",
                    help="run only notebooks starting with these, started in this order")
    ap.add_argument("--jobs", type=int, default=1, help="notebooks run at the same time")
    ap.add_argument("--figures-dir", type=Path, default=REPO_ROOT / "figures")
    ap.add_argument("--allow-dirty", action="store_true",
                    default=os.environ.get(ALLOW_DIRTY_ENV, "") not in ("", "0"),
                    help="write the committed figures/ from a tree with uncommitted changes (local "
                         f"work only; also {ALLOW_DIRTY_ENV}=1)")
    ap.add_argument("--out-dir", type=Path, default=REPO_ROOT / "build" / "notebooks")
    ap.add_argument("--notebooks-dir", type=Path, default=DEFAULT_NOTEBOOKS)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda")
    ap.add_argument("--timeout", type=float, default=None, help="seconds per notebook")
    ap.add_argument("--dry-run", action="store_true",
                    help="paper profile on a tiny fake data tree, a few steps, on CPU (srlib.dry_run)")
    args = ap.parse_args(argv)
    try:
        get_profile(args.profile)
        from .runtime import pick_device
        pick_device(args.device)  # a wrong or missing device fails here, before any kernel starts
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    results = run_course(profile=args.profile, notebooks_dir=args.notebooks_dir, only=args.only,
                         jobs=args.jobs, figures_dir=args.figures_dir, out_dir=args.out_dir,
                         seed=args.seed, device=args.device, timeout=args.timeout,
                         allow_dirty=args.allow_dirty, dry_run=args.dry_run)
    print()
    print(summary_table(results))
    failed = [r for r in results if not r.ok]
    if failed:
        print(file=sys.stderr)
        for r in failed:
            print(f"FAILED {r.notebook}: {r.error}  (executed notebook: {r.output})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
