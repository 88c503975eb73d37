#!/usr/bin/env python3
"""The include rules of docs/DESIGN.md, checked: arrows point down (net -> fiber -> core), the
umbrella <weft/weft.hpp> is for programs only, and private headers are named by their layer
("core/detail/reactor.hpp"), never found by include-path order ("detail/reactor.hpp").

Usage: scripts/check_layers.py [SOURCE_ROOT]. Prints each broken rule; exits 1 if any.
"""
import pathlib
import re
import sys

LAYERS = ["core", "fiber", "net"]  # each may include itself and those before it
USERS = ["tests", "bench", "examples"]  # above every layer, the umbrella included
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.M)


def provider(root, name):
    """The layer a public <weft/...> header belongs to, or None when it is not weft's."""
    if not name.startswith("weft/"):
        return None
    if (root / name).is_file():
        return "umbrella"
    for layer in LAYERS:
        if (root / layer / name).is_file():
            return layer
    return None


def check(root):
    problems = []
    for layer in LAYERS + USERS:
        rank = LAYERS.index(layer) if layer in LAYERS else len(LAYERS)
        for path in sorted((root / layer).rglob("*")):
            if path.suffix not in (".cpp", ".hpp", ".h"):
                continue
            text = path.read_text(errors="replace")
            rel = path.relative_to(root)
            for match in INCLUDE.finditer(text):
                kind, name = match.groups()
                line = text.count("\n", 0, match.start()) + 1
                where = f"{rel}:{line}: #include {kind}{name}{'>' if kind == '<' else kind}"
                if kind == "<" and name.startswith("detail/"):
                    problems.append(f"{where}: a private header, named by include-path order")
                    continue
                if kind == "<":
                    owner = provider(root, name)
                    if owner == "umbrella" and layer in LAYERS:
                        problems.append(f"{where}: the umbrella header is for programs, not the library")
                    elif owner in LAYERS and LAYERS.index(owner) > rank:
                        problems.append(f"{where}: {layer}/ may not include {owner}/")
                    continue
                first = name.split("/")[0]
                if first in LAYERS:
                    if not (root / name).is_file():
                        problems.append(f"{where}: no such file")
                    elif LAYERS.index(first) > rank:
                        problems.append(f"{where}: {layer}/ may not include {first}/")
                elif name.startswith("detail/") or (layer in LAYERS and not (path.parent / name).is_file()):
                    problems.append(f"{where}: name a private header by its layer "
                                    f"(\"core/detail/...\"), not by include-path order")
    return problems


def main():
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
    problems = check(root)
    for p in problems:
        print(p)
    if problems:
        print(f"check_layers: {len(problems)} include(s) break the layer rules")
        return 1
    print("check_layers: every include follows the layer rules")
    return 0


if __name__ == "__main__":
    sys.exit(main())
