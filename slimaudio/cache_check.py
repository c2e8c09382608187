"""Verify DVC's local cache against its content hashes (DVC 3 has no command for it).

Every object under `<cache>/files/md5/` is named by the md5 of its bytes (a directory's
`.dir` listing too). An object whose bytes no longer match was damaged in place: before this
project set `cache.type = reflink,copy`, outputs were hardlinks into the cache, and any
in-place write to an output (root ignores the read-only bit) wrote into the cache as well;
`dvc checkout` then keeps bringing the damaged file back. `python -m slimaudio.cache_check`
(`make verify-cache`) names each damaged object and the dvc.lock outputs that use it;
`--remove` deletes them, so that `dvc repro` rebuilds those outputs instead of restoring them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import yaml

CHUNK = 1 << 20


def objects(cache: Path) -> Iterator[Path]:
    root = cache / "files" / "md5"
    if root.is_dir():
        yield from sorted(p for p in root.glob("*/*") if p.is_file())


def expected_md5(obj: Path) -> str:
    return obj.parent.name + obj.name.removesuffix(".dir")


def actual_md5(obj: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with obj.open("rb") as fh:
        while block := fh.read(CHUNK):
            h.update(block)
    return h.hexdigest()


def damaged(cache: Path, progress: bool = False) -> list[Path]:
    """The objects whose bytes do not hash to their name."""
    bad, objs = [], list(objects(cache))
    for i, obj in enumerate(objs, 1):
        if actual_md5(obj) != expected_md5(obj):
            bad.append(obj)
        if progress and (i % 500 == 0 or i == len(objs)):
            print(f"  checked {i}/{len(objs)} objects", file=sys.stderr, flush=True)
    return bad


def users(lock: Path, cache: Path) -> dict[str, list[str]]:
    """md5 -> the dvc.lock outputs (or files inside output folders) stored under it."""
    if not lock.is_file():
        return {}
    out: dict[str, list[str]] = {}
    stages = (yaml.safe_load(lock.read_text(encoding="utf-8")) or {}).get("stages", {})
    for name, stage in stages.items():
        for o in stage.get("outs", []):
            md5, path = o.get("md5", ""), o.get("path", "")
            out.setdefault(md5.removesuffix(".dir"), []).append(f"{path} ({name})")
            listing = cache / "files" / "md5" / md5[:2] / md5[2:]
            if md5.endswith(".dir") and listing.is_file():
                try:
                    entries = json.loads(listing.read_text(encoding="utf-8"))
                except (ValueError, UnicodeDecodeError):
                    continue  # a damaged listing is reported as such
                for e in entries:
                    out.setdefault(e["md5"], []).append(f"{path}/{e['relpath']} ({name})")
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("--cache", default=".dvc/cache", help="the DVC cache folder")
    p.add_argument("--lock", default="dvc.lock", help="to name the outputs of damaged objects")
    p.add_argument("--remove", action="store_true", help="delete the damaged objects")
    args = p.parse_args(argv)
    cache = Path(args.cache)
    n = sum(1 for _ in objects(cache))
    bad = damaged(cache, progress=True)
    who = users(Path(args.lock), cache) if bad else {}
    for obj in bad:
        used = ", ".join(who.get(expected_md5(obj), [])) or "no output of dvc.lock"
        print(f"damaged: {obj} (used by {used})")
        if args.remove:
            obj.chmod(0o644)
            obj.unlink()
    if not bad:
        print(f"{n} objects in {cache}: every one matches its hash")
        return
    what = "removed; `dvc repro` rebuilds" if args.remove else "run with --remove, then `dvc repro` rebuilds"
    print(f"{len(bad)} of {n} objects damaged ({what} the outputs that use them)")
    sys.exit(1)


if __name__ == "__main__":
    main()
