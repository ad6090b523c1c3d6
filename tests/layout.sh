#!/usr/bin/env bash
# layout.sh — the source layout's two rules, checked over the tree (docs/HACKING.md "Layers").
# (a) Layers: every #include "..." in harness/, kernels/ and featuremaps/ is a path relative to
#     the including file that exists, and names a file of the same or a lower layer (the table
#     LAYERS below, lowest first); anything else fails with file:line and both layers.
# (b) Paths: every repository path of the forms harness/..., kernels/..., featuremaps/...,
#     tests/..., scripts/..., plots/..., experiments/... named in a comment (C, shell, Makefile,
#     gnuplot, YAML) or in a *.md file exists; a glob (tests/test_*.c, experiments/paper/*.yaml,
#     a{b,c}) or a placeholder in capitals (plots/NAME.gp) must match at least one file, and a
#     path .gitignore lists (a build output such as plots/out/) counts as existing.  A missing
#     one fails with file:line.
# Not a compiler check: the build catches includes that do not resolve with the flags given;
# this catches includes that resolve but go the wrong way.  Run by `make check`; the rules
# are plain Python 3 (python3 is in the check dependencies).  No arguments; runs from anywhere.
set -u
cd "$(dirname "$0")/.." || exit 2
exec python3 - <<'EOF'
import fnmatch, glob, os, re, sys

# Layer of each source folder, lowest first: a file may include its own layer or one to its
# left, never one to its right.
LAYERS = ["harness/core", "kernels", "featuremaps", "harness/model", "harness/experiment",
          "harness/store", "harness/engine", "harness/figures", "harness/cli"]
GENERATED = {"la_build_info.h"}  # written by the Makefile into $(BUILD)/gen (found with -I)
SKIP_DIRS = {".git", "data", ".fresh-debian"}
PREFIXES = ("harness", "kernels", "featuremaps", "tests", "scripts", "plots", "experiments")

def layer_of(path):
    for i, l in enumerate(LAYERS):
        if os.path.dirname(path) == l:
            return i
    return None

def ignored_patterns():
    pats = []
    if os.path.isfile(".gitignore"):
        for l in open(".gitignore", encoding="utf-8"):
            l = l.strip()
            if l and not l.startswith("#"):
                pats.append(l)
    return pats

IGN = ignored_patterns()

def is_ignored(p):
    parts = p.rstrip("/").split("/")
    for pat in IGN:
        anchored = pat.startswith("/")
        pat = pat.strip("/")
        for k in range(1, len(parts) + 1):
            head = "/".join(parts[:k])
            if fnmatch.fnmatch(head, pat) or (not anchored and fnmatch.fnmatch(parts[k - 1], pat)):
                return True
    return False

def repo_files():
    for root, dirs, files in os.walk("."):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS
                         and not is_ignored(os.path.normpath(os.path.join(root, d))))
        for f in sorted(files):
            yield os.path.normpath(os.path.join(root, f))

errors = []

# ---- (a) includes ---------------------------------------------------------------------------
inc = re.compile(r'^\s*#\s*include\s+"([^"]+)"')
nsrc = 0
for path in repo_files():
    if not path.endswith((".c", ".h")):
        continue
    src = layer_of(path)
    if src is None:
        if path.startswith(("harness/", "kernels/", "featuremaps/")):
            errors.append(f"{path}:1: not in any layer folder of tests/layout.sh's table")
        continue
    nsrc += 1
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            m = inc.match(line)
            if not m or m.group(1) in GENERATED:
                continue
            target = os.path.normpath(os.path.join(os.path.dirname(path), m.group(1)))
            if not os.path.isfile(target):
                errors.append(f"{path}:{n}: #include \"{m.group(1)}\" is not a path relative "
                              f"to this file")
                continue
            dst = layer_of(target)
            if dst is None:
                errors.append(f"{path}:{n}: #include \"{m.group(1)}\" is outside the layers")
            elif dst > src:
                errors.append(f"{path}:{n}: {LAYERS[src]}/ includes {target}, a higher layer "
                              f"({LAYERS[dst]}/); order: {' < '.join(LAYERS)}")

# ---- (b) paths named in comments and docs ---------------------------------------------------
def c_comments(text):
    """(line, text) of every C comment; strings and character constants are skipped."""
    out, i, n, line = [], 0, len(text), 1
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append((line, text[i:j])); i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append((line, text[i:j])); line += text.count("\n", i, j); i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            line += text.count("\n", i, j + 1); i = j + 1
        else:
            if c == "\n":
                line += 1
            i += 1
    return out

def hash_comments(text):
    """(line, text) of '#' comments: whole lines, and ' # ...' after code (shell, make, gp)."""
    out = []
    for n, l in enumerate(text.split("\n"), 1):
        s = l.lstrip()
        if s.startswith("#!"):
            continue
        if s.startswith("#"):
            out.append((n, s))
        else:
            m = re.search(r"\s#\s.*$", l)
            if m:
                out.append((n, m.group(0)))
    return out

def kind(path):
    b = os.path.basename(path)
    if path.endswith((".c", ".h")):
        return "c"
    if path.endswith(".md"):
        return "md"
    if b == "Makefile" or path.endswith((".sh", ".sbatch", ".gp", ".yaml")) or path == ".ci/run":
        return "hash"
    return None

def braces(p):
    m = re.search(r"\{([^{}]*)\}", p)
    if not m:
        return [p]
    return [q for alt in m.group(1).split(",") for q in braces(p[:m.start()] + alt + p[m.end():])]

def placeholders(p):
    """A component whose name is capitals (NAME.gp, X.yaml, FIG) stands for any name."""
    return re.sub(r"(?<![^/])[A-Z][A-Z0-9_]*(?=[./]|$)", "*", p)

def exists(p):
    if os.path.exists(p.rstrip("/")):
        return True
    for q in braces(placeholders(p)):
        if any(ch in q for ch in "*?["):
            if not glob.glob(q.rstrip("/")) and not is_ignored(q):
                return False
        elif not os.path.exists(q.rstrip("/")) and not is_ignored(q):
            return False
    return True

mention = re.compile(r"(?<![\w./~$-])(?:%s)/[\w.*?{},/\[\]-]*" % "|".join(PREFIXES))
nmention = 0
for path in repo_files():
    k = kind(path)
    if k is None:
        continue
    text = open(path, encoding="utf-8", errors="replace").read()
    chunks = (c_comments(text) if k == "c" else hash_comments(text) if k == "hash"
              else list(enumerate(text.split("\n"), 1)))
    for line, chunk in chunks:
        for off, part in enumerate(chunk.split("\n")):
            for m in mention.finditer(part):
                p = m.group(0).rstrip(".,:;)]}")
                if p.count("{") != p.count("}"):
                    p = p.split("{")[0]
                nmention += 1
                if not exists(p):
                    errors.append(f"{path}:{line + off}: names {p}, which does not exist")

for e in errors:
    print(e)
print(f"layout: {nsrc} source files in {len(LAYERS)} layers, {nmention} path mentions, "
      f"{len(errors)} problems")
sys.exit(1 if errors else 0)
EOF
