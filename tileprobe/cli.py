"""`tileprobe` on the command line. `tileprobe info SLIDE...` says how tileprobe sees a scanner's files (format,
levels, µm per pixel, objective power, associated images) before any workflow is configured for them."""

from __future__ import annotations

import argparse
import json
import sys

from tileprobe.errors import TileprobeError


def slide_info(path: str) -> dict:
    from tileprobe.slides.registry import open_slide

    with open_slide(path) as slide:
        return {
            "path": str(slide.path),
            "format": slide.format,
            "reader": type(slide).__name__,
            "dimensions": list(slide.dimensions),
            "levels": [
                {"dimensions": list(d), "downsample": round(float(s), 4)}
                for d, s in zip(slide.level_dimensions, slide.level_downsamples)
            ],
            "mpp": slide.mpp,
            "mpp_source": slide.mpp_source,
            "objective_power": slide.objective_power,
            "associated_images": list(slide.associated_images),
        }


def format_info(info: dict) -> str:
    w, h = info["dimensions"]
    mpp = f"{info['mpp']:.4g} µm/px (from {info['mpp_source']})" if info["mpp"] else (
        "unknown: add an `mpp` column to the sample sheet for grid tilings")
    power = f"{info['objective_power']:g}x" if info["objective_power"] else "unknown"
    lines = [
        info["path"],
        f"  format       {info['format']} (read by {info['reader']})",
        f"  dimensions   {w} x {h} px",
        f"  mpp          {mpp}",
        f"  objective    {power}",
        f"  levels       {len(info['levels'])}",
    ]
    for i, level in enumerate(info["levels"]):
        lw, lh = level["dimensions"]
        lines.append(f"    {i}: {lw} x {lh} px, downsample {level['downsample']:g}")
    lines.append(f"  associated   {', '.join(info['associated_images']) or 'none'}")
    return "\n".join(lines)


def info(args) -> int:
    failed = 0
    results = []
    for path in args.slides:
        try:
            results.append(slide_info(path))
        except TileprobeError as e:  # report and go on: one bad file should not hide the others
            failed += 1
            print(f"error: {e}", file=sys.stderr)
            continue
        if not args.json:
            print(format_info(results[-1]))
    if args.json:
        print(json.dumps(results, indent=2))
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tileprobe", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("info", help="format, levels, dimensions, mpp, objective power of slides")
    p.add_argument("slides", nargs="+", metavar="SLIDE")
    p.add_argument("--json", action="store_true", help="print a JSON list instead of text")
    p.set_defaults(run=info)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
