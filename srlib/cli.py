"""Command line: ``python -m srlib <command>``.

    python -m srlib upscale IN OUT --weights FILE [--arch rrdbnet] [--scale 4] [--tile 256]
    python -m srlib upscale IN OUT --model RealESRGAN_x4plus      (fetches the official file)
    python -m srlib info FILE [--json]                            (what a checkpoint holds)
    python -m srlib list                                          (official files: URL, sha256, cached?)

``--arch`` and the sizes (``--num-feat``, ``--num-block``, ``--num-grow-ch``, ``--scale``)
default to what the checkpoint's shapes say; give them to insist on a model, and a file
that does not fit is refused with the sizes it does fit. Any problem with the input (an
unreadable image, a wrong or corrupt weights file, a mismatched architecture, a download cut
off, running out of memory) ends with exit status 1 and one line on stderr, without a traceback.

``upscale`` in detail:

- Large images are cut into tiles of 256 LR pixels by default (``--tile auto``; overlap
  ``--tile-overlap 16``), so memory is bounded by the tile, not the image; ``--tile 0`` runs the
  whole image at once. Running out of memory is a one-line error that says to pass a smaller
  ``--tile``.
- An alpha channel (RGBA, gray + alpha, transparent palette) is composited over white: the model
  sees RGB only, and the output has no alpha. A note on stderr says so.
- ``OUT`` is checked before any work: its suffix must be a lossless format (``.png``, ``.bmp``,
  ``.tif``, ``.ppm``) and its folder writable. An existing ``OUT`` is not replaced unless
  ``--overwrite`` is given; ``OUT`` naming the input image itself (by any spelling: a relative
  path, a symbolic or hard link) is refused the same way.
- ``--device`` is checked before anything is loaded.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
from pathlib import Path

from . import weights as W
from .errors import SrlibError

EXIT_ERROR = 1
_BUFFERS = ("running_mean", "running_var", "num_batches_tracked", "weight_u", "weight_v")


def _tile_arg(text: str):
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of pixels, 0 or 'auto', got {text!r}") from None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m srlib", description="GAN super-resolution course tools")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = sub.add_parser("upscale", help="super-resolve an image with a trained generator")
    up.add_argument("input", type=Path, help="input image (PNG, JPEG, ...); an alpha channel is "
                                             "composited over white (the output is RGB)")
    up.add_argument("output", type=Path, help="output image, lossless (.png, .bmp, .tif, .ppm); "
                                              "an existing file is kept unless --overwrite")
    src = up.add_mutually_exclusive_group(required=True)
    src.add_argument("--weights", type=Path, help="checkpoint file (.pth)")
    src.add_argument("--model", choices=[k for k, e in W.OFFICIAL.items() if e.arch in ("rrdbnet", "edsr")],
                     help="an official generator, downloaded once into the cache")
    from .archs import ARCHS
    up.add_argument("--arch", choices=sorted(ARCHS), help="architecture (default: read from the file)")
    up.add_argument("--scale", type=int, help="upscaling factor (default: read from the file)")
    up.add_argument("--num-feat", type=int, help="feature channels")
    up.add_argument("--num-block", type=int, help="number of residual blocks")
    up.add_argument("--num-grow-ch", type=int, help="RRDBNet growth channels")
    up.add_argument("--tile", type=_tile_arg, default="auto",
                    help="tile side in input pixels; memory is bounded by the tile (default: auto = "
                         "256 for images larger than that; 0 = the whole image at once)")
    up.add_argument("--tile-overlap", type=int, default=16, help="overlap between tiles (16)")
    up.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda if available)")
    up.add_argument("--overwrite", action="store_true",
                    help="replace OUT if it exists (also when OUT is the input image itself)")

    info = sub.add_parser("info", help="describe a checkpoint file")
    info.add_argument("file", type=Path)
    info.add_argument("--json", action="store_true", help="print a JSON object")

    sub.add_parser("list", help="list the official pretrained files: URL, sha256, local path, "
                                "whether they are cached")
    return p


def build_model(state: dict, arch: str | None = None, scale: int | None = None,
                num_feat: int | None = None, num_block: int | None = None,
                num_grow_ch: int | None = None, source: str = "the checkpoint"):
    """Build the generator a state dict is meant for; explicit arguments override the file.

    Returns ``(model, scale)``. Raises WeightsError when the architecture cannot be told
    from the file and none is given, or when the weights do not fit.
    """
    from .archs import ARCHS

    guess = W.guess_architecture(state)
    if arch is None:
        if guess is None or guess["arch"] not in ARCHS:
            raise SrlibError(f"cannot tell which generator {source} is for "
                             f"({W.describe_guess(guess)}); pass --arch {{{','.join(sorted(ARCHS))}}}")
        arch = guess["arch"]
    kwargs = dict(guess["kwargs"]) if guess is not None and guess["arch"] == arch else \
        dict(num_in_ch=3, num_out_ch=3)
    scale_key = "scale" if arch == "rrdbnet" else "upscale"
    for key, value in ((scale_key, scale), ("num_feat", num_feat), ("num_block", num_block),
                       ("num_grow_ch", num_grow_ch if arch == "rrdbnet" else None)):
        if value is not None:
            kwargs[key] = value
    if num_grow_ch is not None and arch != "rrdbnet":
        raise SrlibError("--num-grow-ch only applies to --arch rrdbnet")
    try:
        model = ARCHS[arch](**kwargs)
    except (TypeError, ValueError) as exc:
        raise SrlibError(f"cannot build {arch} with {kwargs}: {exc}") from None
    W.load_weights(model, state)
    return model.eval(), int(kwargs.get(scale_key, 4))


def _same_file(a: Path, b: Path) -> bool:
    """Whether two spellings name one file: equal resolved paths, or one inode (a hard link)."""
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_output(input_path: Path, output: Path, overwrite: bool) -> None:
    """Everything about ``OUT`` that can be checked before the model runs (see the module docstring)."""
    from . import io

    if _same_file(input_path, output) and not overwrite:
        raise SrlibError(f"the output '{output}' is the input image itself: choose another output "
                         f"path, or pass --overwrite to replace the input")
    io.check_writable(output)
    if output.exists() and not overwrite:
        raise SrlibError(f"the output '{output}' exists already: choose another path, or pass "
                         f"--overwrite to replace it")


def cmd_upscale(args) -> int:
    from . import infer, io

    tile = args.tile
    if tile != "auto":
        if tile == 0:
            tile = None
        elif tile < 8:
            raise SrlibError(f"--tile {args.tile} is too small: use at least 8 input pixels (e.g. 256), "
                             f"or 0 for the whole image at once")
    if args.tile_overlap < 0:
        raise SrlibError(f"--tile-overlap must be 0 or more pixels, got {args.tile_overlap}")
    if args.device is not None:
        from .runtime import pick_device
        pick_device(args.device)  # a wrong or missing device fails before anything is loaded
    check_output(args.input, args.output, args.overwrite)
    image = io.read_image(args.input)  # read first: a bad image fails before the model loads
    if io.has_alpha(args.input):
        print(f"srlib: note: '{args.input}' has an alpha channel; it is composited over white and the "
              f"output has none", file=sys.stderr)
    path = W.fetch(args.model) if args.model else args.weights
    state = W.read_state_dict(path)
    model, scale = build_model(state, args.arch, args.scale, args.num_feat, args.num_block,
                               args.num_grow_ch, source=f"'{path}'")
    # x2 / x1 RRDBNet pixel-unshuffle their input: pieces must have sides divisible by 2 / 4
    multiple = {2: 2, 1: 4}.get(scale, 1) if type(model).__name__ == "RRDBNet" else 1
    out = infer.upscale(model, image, scale=scale, tile=tile, tile_overlap=args.tile_overlap,
                        device=args.device, pad_multiple=multiple)
    io.write_image(args.output, out)
    h, w = image.shape[:2]
    print(f"{args.input} ({w}x{h}) -> {args.output} ({out.shape[1]}x{out.shape[0]}), x{scale}")
    return 0


def checkpoint_info(path) -> dict:
    """What a checkpoint file holds, as a dict (the ``info`` command prints it)."""
    path = Path(path)
    raw = W._torch_load(path)
    params, key = W.select_params(raw, path)
    naming = W.esrgan_naming({k.removeprefix("module."): v for k, v in params.items()})
    state = W.normalize_state_dict(params)
    guess = W.guess_architecture(state)
    dtypes = sorted({str(v.dtype).removeprefix("torch.") for v in state.values()})
    return {
        "file": str(path),
        "size_bytes": path.stat().st_size,
        "top_level_keys": list(raw)[:20] if key is not None else [],
        "params_key": key,
        "module_prefix": any(k.startswith("module.") for k in params),
        "naming": {None: "basicsr", "esrgan": "original ESRGAN (converted to BasicSR names)",
                   "esrgan_old_arch": "original ESRGAN old_arch (converted to BasicSR names)"}[naming],
        "num_tensors": len(state),
        "num_params": sum(v.numel() for k, v in state.items() if not k.endswith(_BUFFERS)),
        "num_elements": sum(v.numel() for v in state.values()),
        "dtypes": dtypes,
        "architecture": guess["arch"] if guess else None,
        "kwargs": guess["kwargs"] if guess else None,
        "scale": guess["scale"] if guess else None,
        "model": W.describe_guess(guess) if guess else None,
    }


def cmd_info(args) -> int:
    info = checkpoint_info(args.file)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    mb = info["size_bytes"] / 1e6
    print(f"file:         {info['file']} ({mb:.1f} MB)")
    if info["params_key"]:
        print(f"top level:    {', '.join(map(str, info['top_level_keys']))} (weights from '{info['params_key']}')")
    else:
        print("top level:    a bare state dict")
    print(f"naming:       {info['naming']}{', module. prefix stripped' if info['module_prefix'] else ''}")
    print(f"tensors:      {info['num_tensors']} ({', '.join(info['dtypes'])})")
    print(f"parameters:   {info['num_params']:,}")
    if info["model"]:
        scale = f", x{info['scale']}" if info["scale"] else ""
        print(f"architecture: {info['model']}{scale}")
    else:
        print("architecture: not recognised (not an RRDBNet / EDSR / MSRResNet / discriminator file)")
    return 0


def _sha256_text(e) -> str:
    if e.sha256 is None:
        return "none published (the file is saved unverified, with a warning)"
    if e.sha256_prefix:
        return f"{e.sha256}... (the prefix in the official file name)"
    return e.sha256


def cmd_list(args) -> int:
    """Each official file: name, architecture, whether it is cached, its URL, sha256 and local path."""
    for i, (name, e) in enumerate(W.OFFICIAL.items()):
        path = W.cache_path(name)
        state = "cached" if path.is_file() else "not cached"
        print(("\n" if i else "") + f"{name}  ({e.arch}, {state})")
        print(f"  url:    {e.url}")
        print(f"  sha256: {_sha256_text(e)}")
        print(f"  file:   {path}")
        if e.note:
            print(f"  about:  {e.note}")
    return 0


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    command = {"upscale": cmd_upscale, "info": cmd_info, "list": cmd_list}[args.command]
    try:
        return command(args)
    except (SrlibError, OSError, ValueError, RuntimeError, MemoryError, http.client.HTTPException) as exc:
        # a user problem: one line, no traceback (details of a weights mismatch follow on later
        # lines of the message; the first line already says what fits)
        lines = str(exc).strip().splitlines() or [type(exc).__name__]
        print(f"srlib: error: {lines[0]}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("srlib: interrupted", file=sys.stderr)
        return 130
