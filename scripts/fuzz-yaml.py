#!/usr/bin/env python3
"""Fuzz cegraph's pipeline loading: seeded mutations of the bundled pipelines plus hostile
files (billion laughs, deep nesting, a 10 MB scalar, invalid UTF-8, NUL bytes, duplicate keys,
tags, anchors to themselves), each run through `cegraph status` with a time limit.

Prints panics (exit 101 or "panicked"), hangs (time limit hit), the slowest case, and the
share of rejections (exit 2) located at file:line:col. Exits 1 on any panic or hang.

    scripts/fuzz-yaml.py [--bin target/release/cegraph] [--cases 1000] [--seed 1]
"""

import argparse
import glob
import os
import random
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOCATED = re.compile(rb"cegraph\.yaml:[1-9][0-9]*:[1-9][0-9]*")


def hostile_cases():
    """(name, bytes) of files built to hurt a parser."""
    lol = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    names = "abcdefghi"
    for prev, nxt in zip(names, names[1:]):
        lol += f"{nxt}: &{nxt} [{','.join(['*' + prev] * 9)}]\n"
    lol = "vars:\n  " + lol.replace("\n", "\n  ") + "stages:\n  s: {cmd: echo}\n"
    deep = 100_000
    yield "billion-laughs", lol.encode()
    yield "deep-flow", f"vars:\n  x: {'[' * deep}{']' * deep}\nstages:\n  s: {{cmd: echo}}\n".encode()
    yield "deep-flow-maps", f"vars:\n  x: {'{a: ' * deep}1{'}' * deep}\n".encode()
    block = "".join(" " * (i + 1) + "k:\n" for i in range(5_000))  # 12.5 MB, under the limit
    yield "deep-block", f"vars:\n{block}stages: {{}}\n".encode()
    yield "deep-seq", ("vars:\n  x:\n" + "".join("  " * (i + 2) + "-\n" for i in range(3_000))).encode()
    yield "scalar-10MB", b"stages:\n  a:\n    cmd: echo\n    outz: " + b"x" * 10_000_000 + b"\n"
    yield "scalar-10MB-valid", b"stages:\n  a:\n    cmd: echo " + b"x" * 10_000_000 + b"\n"
    yield "key-10MB", b"stages:\n  " + b"k" * 10_000_000 + b": {cmd: echo}\n"
    yield "line-200KB", b"stages:\n  a: {cmd: echo, outs: [" + b"f, " * 70_000 + b"{x: 1}]}\n"
    yield "over-limit-17MB", b"stages:\n  a: {cmd: echo}\n" + b"# pad\n" * 3_000_000
    yield "invalid-utf8", b"stages:\n  a:\n    cmd: echo caf\xe9\n"
    yield "invalid-utf8-start", b"\xff\xfe\x00s\x00t"
    yield "utf16-bom", "stages:\n  a: {cmd: echo}\n".encode("utf-16")
    yield "nul-bytes", b"stages:\n  a:\n    cmd: echo \x00\x00\n"
    yield "nul-only", b"\x00" * 1000
    yield "duplicate-keys", b"stages:\n  a:\n    cmd: echo\n    cmd: echo\n"
    yield "duplicate-stages", b"stages:\n  a: {cmd: echo}\n  a: {cmd: echo}\n"
    yield "tag-python", b"stages:\n  a:\n    cmd: !!python/object:os.system echo\n"
    yield "tag-custom", b"stages: !mine\n  a: {cmd: echo}\n"
    yield "tag-binary", b"stages:\n  a:\n    cmd: !!binary aGVsbG8=\n"
    yield "anchor-self", b"stages: &s\n  a: *s\n"
    yield "anchor-self-seq", b"vars: &v\n  x: [*v]\nstages:\n  a: {cmd: echo}\n"
    yield "anchor-unknown", b"stages:\n  a: *nope\n"
    yield "many-aliases", ("vars:\n  a: &a 1\n  b: [" + ", ".join(["*a"] * 60_000) + "]\n").encode()
    yield "many-anchors", ("vars:\n" + "".join(f"  k{i}: &a{i} {i}\n" for i in range(60_000))).encode()
    yield "many-docs", b"---\nstages: {}\n" * 5_000
    yield "merge-bomb", b"vars:\n  a: &a {x: 1}\n  b: {<<: [*a, *a, *a]}\nstages:\n  s: {cmd: echo}\n"
    yield "empty", b""
    yield "only-comment", b"# nothing\n"
    yield "crlf", b"stages:\r\n  a:\r\n    cmd: echo\r\n    outz: 1\r\n"
    yield "null-stage", b"stages:\n  a:\n"
    yield "huge-matrix", ("stages:\n  a:\n    matrix: {i: [" + ", ".join(map(str, range(20_000))) + "]}\n    cmd: echo ${i} > ${outs[0]}\n    outs: [\"o/${i}\"]\n").encode()
    yield "interp-unclosed", b"stages:\n  a:\n    cmd: echo ${\n"
    yield "interp-backtick", b"vars: {v: x}\nstages:\n  a:\n    cmd: echo `echo ${v}`\n"


SPECIAL = [b":", b": ", b"-", b"- ", b"[", b"]", b"{", b"}", b"&a ", b"*a", b"!!str ", b"!x ",
           b'"', b"'", b"\t", b"\n", b"\x00", b"\xff", b"${", b"}", b"#", b"|", b">", b"%",
           b"@", b"`", b"<<: ", b"? ", b",", b"\r", b"\\", b"~", b"null", b"${vars.x}",
           b"$(touch PWNED)", b"\xe2\x80\xa8", b"\xef\xbb\xbf"]


def mutate(rng, data):
    """Apply 1-4 random edits to the bytes of a pipeline."""
    data = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(9)
        i = rng.randrange(len(data) + 1)
        if op == 0 and data:  # flip a byte
            data[min(i, len(data) - 1)] = rng.randrange(256)
        elif op == 1:  # insert a YAML-special token
            data[i:i] = rng.choice(SPECIAL)
        elif op == 2 and data:  # delete a run
            del data[i:i + rng.randint(1, 20)]
        else:
            lines = bytes(data).split(b"\n")
            j = rng.randrange(len(lines))
            if op == 3:  # duplicate a line
                lines.insert(j, lines[j])
            elif op == 4:  # delete a line
                del lines[j]
            elif op == 5:  # re-indent a line
                lines[j] = b" " * rng.choice([0, 1, 3, 5, 8]) + lines[j].lstrip(b" ")
            elif op == 6:  # swap two lines
                k = rng.randrange(len(lines))
                lines[j], lines[k] = lines[k], lines[j]
            elif op == 7:  # truncate
                lines = lines[:j]
            else:  # blow a line up
                lines[j] = lines[j] * rng.randint(2, 2000)
            data = bytearray(b"\n".join(lines))
    return bytes(data)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_bin = os.path.join(ROOT, "target", "release", "cegraph")
    if not os.path.exists(default_bin):
        default_bin = os.path.join(ROOT, "target", "debug", "cegraph")
    ap.add_argument("--bin", default=default_bin)
    ap.add_argument("--cases", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=10.0)
    args = ap.parse_args()
    args.bin = os.path.abspath(args.bin)

    rng = random.Random(args.seed)
    seeds = [open(p, "rb").read() for p in sorted(glob.glob(os.path.join(ROOT, "pipelines", "*.yaml")))]
    cases = list(hostile_cases())
    while len(cases) < args.cases:
        cases.append((f"mutant-{len(cases)}", mutate(rng, rng.choice(seeds))))
    cases = cases[: args.cases]

    panics, hangs, times, codes = [], [], [], {}
    rejected = located = 0
    with tempfile.TemporaryDirectory() as ws:
        open(os.path.join(ws, "cegraph.toml"), "w").close()
        env = dict(os.environ, NO_COLOR="1", CEGRAPH_SPEC_CACHE=os.path.join(ws, ".memo"))
        env.pop("CEGRAPH_CACHE", None)
        for name, data in cases:
            with open(os.path.join(ws, "cegraph.yaml"), "wb") as f:
                f.write(data)
            start = time.monotonic()
            try:
                p = subprocess.run([args.bin, "status", "cegraph.yaml"], cwd=ws, env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                   timeout=args.timeout)
            except subprocess.TimeoutExpired:
                hangs.append(name)
                times.append((args.timeout, name))
                continue
            elapsed = time.monotonic() - start
            times.append((elapsed, name))
            codes[p.returncode] = codes.get(p.returncode, 0) + 1
            if p.returncode == 101 or b"panicked" in p.stderr:
                panics.append((name, p.stderr[-400:].decode("utf-8", "replace")))
            if p.returncode == 2:
                rejected += 1
                located += bool(LOCATED.search(p.stderr))
            if os.path.exists(os.path.join(ws, "PWNED")):
                panics.append((name, "a value ran as shell code (PWNED exists)"))
                os.remove(os.path.join(ws, "PWNED"))

    times.sort()
    print(f"binary   {args.bin}")
    print(f"cases    {len(cases)} (seed {args.seed}; {len(list(hostile_cases()))} hostile, rest mutants of {len(seeds)} pipelines)")
    print(f"exit     " + ", ".join(f"{c}: {n}" for c, n in sorted(codes.items())))
    print(f"panics   {len(panics)}")
    for name, err in panics:
        print(f"  {name}: {err}")
    print(f"hangs    {len(hangs)} (limit {args.timeout:g} s) {' '.join(hangs)}")
    print(f"time     max {times[-1][0]:.3f} s ({times[-1][1]}), median {times[len(times) // 2][0]:.3f} s")
    print(f"over 1s  {sum(t >= 1.0 for t, _ in times)}")
    print(f"located  {located}/{rejected} rejections at file:line:col ({100 * located / max(rejected, 1):.1f}%)")
    return 1 if panics or hangs else 0


if __name__ == "__main__":
    sys.exit(main())
