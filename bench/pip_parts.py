"""`rag model prepare`'s part install: one pip call per part (before) vs one call for all (now).

Synthetic part wheels (N packages of SIZE_MB each, built here, like the presets' part packages)
are installed from a local folder (--no-index --find-links) into a fresh --target folder, with
the command `rag_app.serving.presets.pip_install_command` builds: either for each part alone
(the old loop) or for all parts at once. No registry is involved, so the numbers are the saved
per-call overhead (pip start-up, resolve, install bookkeeping) and leave out the per-call index
requests a real `rag model prepare` also saves. The two ways alternate run by run.

    python -m bench.pip_parts --parts 22 --runs 3
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):  # run as a file (python bench/x.py): make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import percentile, print_section, write_results  # noqa: E402
from rag_app.serving.presets import PartPackage, pip_install_command, split_parts  # noqa: E402


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.pip_parts", description=__doc__)
    p.add_argument("--parts", type=int, default=22, help="part packages (the 1.5B preset: 22)")
    p.add_argument("--size-mb", type=float, default=1.0, help="data file size of each part")
    p.add_argument("--runs", type=int, default=3, help="timed runs of each way")
    p.add_argument("--name", default="pip_parts", help="results file bench/results/NAME.json")
    return p.parse_args(argv)


def build_wheel(part: PartPackage, size: int, folder: Path) -> Path:
    """A minimal pure-Python wheel holding `part.member`, as the real part packages do."""
    dist = part.name.replace("-", "_")
    wheel = folder / f"{dist}-{part.version}-py3-none-any.whl"
    info = f"{dist}-{part.version}.dist-info"
    files = {
        part.member: os.urandom(size),
        f"{part.member.split('/')[0]}/__init__.py": b"",
        f"{info}/METADATA": (
            f"Metadata-Version: 2.1\nName: {part.name}\nVersion: {part.version}\n"
        ).encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: bench\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }
    record = "".join(f"{name},,\n" for name in files) + f"{info}/RECORD,,\n"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_STORED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
        zf.writestr(f"{info}/RECORD", record)
    return wheel


def install(commands: list[list[str]], wheels: Path, target: Path) -> float:
    """Wall seconds to run every command (into an emptied `target`); fails loudly."""
    shutil.rmtree(target, ignore_errors=True)
    extra = ["--no-index", "--find-links", str(wheels), "--target", str(target)]
    start = time.perf_counter()
    for command in commands:
        subprocess.run([*command, *extra], check=True, capture_output=True, timeout=900)
    return time.perf_counter() - start


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    parts = split_parts("rag-bench-model", "0.1.0", args.parts)
    ways = {
        "one pip call per part (before)": [pip_install_command([p]) for p in parts],
        "one pip call for all parts (now)": [pip_install_command(parts)],
    }
    samples: dict[str, list[float]] = {way: [] for way in ways}
    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="rag-pip-parts-") as tmp:
        wheels = Path(tmp) / "wheels"
        wheels.mkdir()
        for part in parts:
            build_wheel(part, int(args.size_mb * 2**20), wheels)
        for commands in ways.values():  # untimed: warms the page cache
            install(commands, wheels, Path(tmp) / "target")
        for _ in range(args.runs):
            for way, commands in ways.items():
                samples[way].append(install(commands, wheels, Path(tmp) / "target"))
    load_end = os.getloadavg()[0]
    rows = [
        {
            "way": way,
            "pip calls": len(ways[way]),
            "p50 s": percentile(s, 50),
            "min s": min(s),
            "max s": max(s),
        }
        for way, s in samples.items()
    ]
    title = f"{args.parts} part wheels of {args.size_mb} MB, {args.runs} runs each (load avg 1m "
    title += f"{load_start:.1f} -> {load_end:.1f} on {os.cpu_count()} cores)"
    print_section(title, rows)
    params = {
        "parts": args.parts,
        "size_mb": args.size_mb,
        "runs": args.runs,
        "load_avg_1m_at_start": round(load_start, 2),
        "load_avg_1m_at_end": round(load_end, 2),
        "note": "local wheels (--no-index --find-links), --target; ways alternate run by run",
    }
    print(f"wrote {write_results(args.name, {'rows': rows, 'samples': samples}, params)}")


if __name__ == "__main__":
    main()
