"""Net lines of recsim_gym/*.py outside the later issues' own modules (the 'rest'), per first-parent step of main
since e017f46 (a merge counts as its whole branch, as merged), with the files that moved most, then a summary:
`wc -l` of recsim_gym/ at e017f46 and at END, the lines of the modules later issues added whole (per issue), and the
rest. BENCHMARKS.md, "Kernel refactor: before and after".

Usage, from the repository root: python docs/lab_notes/code_size.py [END_COMMIT (default HEAD)] [--summary]
(--summary: only the summary, no per-step table).
"""

import re
import subprocess
import sys

# Modules that later issues added whole (they did not exist at e017f46), by issue. Lines these issues added to
# modules that existed before (data/logs.py, evaluation.py, registration.py, ...) stay in the rest.
LATER = {
    "19 RecSimu": r"recsimu",
    "20 catalogue scale": (
        r"fast_reader|observation_v1|sample_logs|scale_benchmark|gpu_report|bench_timing|agents/top_k"
    ),
    "21 fidelity": r"recsim_gym/fidelity/",
    "22 peers": r"peers_|step_profile",
    "Ray and RL Zoo (rayzoo branch)": r"ray_units|integrations/rl_zoo",
}
EX = re.compile("|".join(LATER.values()))


def git(*a):
    return subprocess.run(["git", *a], capture_output=True, text=True, check=True).stdout


def lines(c, f):
    return git("show", f"{c}:{f}").count("\n")


def py_files(c):
    return [f for f in git("ls-tree", "-r", "--name-only", c, "recsim_gym").split() if f.endswith(".py")]


def rest_lines(c):
    return {f: lines(c, f) for f in py_files(c) if not EX.search(f)}


args = [a for a in sys.argv[1:] if not a.startswith("--")]
end = args[0] if args else "HEAD"
if "--summary" not in sys.argv:
    total = 0
    for c in reversed(git("rev-list", "--first-parent", f"e017f46..{end}").split()):
        a, b = rest_lines(c + "^1"), rest_lines(c)
        net = sum(b.values()) - sum(a.values())
        if net:
            total += net
            per = {f: b.get(f, 0) - a.get(f, 0) for f in set(a) | set(b)}
            top = ", ".join(
                f"{f.removeprefix('recsim_gym/')} {v:+d}"
                for f, v in sorted(per.items(), key=lambda x: -abs(x[1]))[:6]
                if v
            )
            print(f"{c[:7]}\t{net:+d}\t{git('log', '-1', '--format=%s', c)[:70]}\t{top}")
    print("rest, net change over the steps:", total)
for c in ("e017f46", end):
    files = git("ls-tree", "-r", "--name-only", c, "recsim_gym").split()
    py = {f: lines(c, f) for f in py_files(c)}
    later = {k: sum(n for f, n in py.items() if re.search(p, f)) for k, p in LATER.items()}
    print(
        f"{c}: wc -l recsim_gym/ {sum(lines(c, f) for f in files):,} ({len(files)} files); .py {sum(py.values()):,}; "
        f"later issues' own modules {sum(later.values()):,} ({', '.join(f'{k} {v:,}' for k, v in later.items())}); "
        f"rest {sum(n for f, n in py.items() if not EX.search(f)):,}"
    )
