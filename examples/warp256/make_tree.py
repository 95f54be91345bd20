"""The training tree of the shipped warp256 model: shared media -> ``person/clip`` symlinks, held-out people left out.

    python examples/warp256/make_tree.py ../shared/media data/warp256_tree

Reads the video tables of ``SOURCES.md`` and ``SOURCES2.md`` in the media folder. The first batch has one person
per file; the second names each clip's person in its ``person`` column. Every clip becomes
``TREE/<person>/<file>`` (a symlink), which ``fsth landmarks TREE --dataset DS`` reads as one video of that person
per file. The four held-out people (``HELD_OUT``) are left out entirely: ``benchmarks/default_model.py`` measures on
them.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

# One clip each of four people who appear nowhere else in the media: never trained on, measured on.
HELD_OUT = (
    "videos/lia_vox_driving2.mp4",  # man, 256x256 VoxCeleb crop, talking
    "videos/retalking_face4.mp4",  # woman, blue background, talking
    "videos2/dpe_s.mp4",  # man in a suit, HDTF-style, talking
    "videos2/dagan_driving.mp4",  # woman, 256x256 VoxCeleb-style crop, head turns and blinks
)


def clips(media: Path) -> list[tuple[str, str]]:
    """(relative path, person) of every video listed in the media's SOURCES tables."""
    rows = []
    for table in ("SOURCES.md", "SOURCES2.md"):
        for line in (media / table).read_text(encoding="utf-8").splitlines():
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not cells or not re.fullmatch(r"`videos2?/[^`]+`", cells[0]):
                continue
            path = cells[0].strip("`")
            person = cells[2].strip("`") if table == "SOURCES2.md" else Path(path).stem
            rows.append((path, re.sub(r"[^A-Za-z0-9_.-]+", "_", person).strip("_")))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("media", type=Path, help="the shared media folder (with SOURCES.md, SOURCES2.md)")
    parser.add_argument("tree", type=Path, help="the tree to make (must not exist yet)")
    args = parser.parse_args()
    if args.tree.exists():
        print(f"error: {args.tree} already exists", file=sys.stderr)
        return 1
    rows = clips(args.media)
    if not rows:
        print(f"error: no video tables in {args.media}/SOURCES*.md", file=sys.stderr)
        return 1
    kept = held = 0
    for path, person in rows:
        if path in HELD_OUT:
            held += 1
            continue
        src = (args.media / path).resolve()
        if not src.is_file():
            print(f"warning: {src} is listed but missing; skipped", file=sys.stderr)
            continue
        link = args.tree / person / Path(path).name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(src)
        kept += 1
    persons = len({p for path, p in rows if path not in HELD_OUT})
    print(f"{kept} clips of {persons} people in {args.tree}; {held} held out", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
