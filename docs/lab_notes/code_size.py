"""Net lines of recsim_gym/*.py outside the later issues' own modules (the 'rest'), per first-parent step of main
since e017f46 (a merge counts as its whole branch, as merged), with the files that moved most. BENCHMARKS.md,
"Kernel refactor: before and after".

Usage, from the repository root: python docs/lab_notes/code_size.py [END_COMMIT (default e13d505)]
"""
import re, subprocess, sys
EX = re.compile(r"recsimu|peers_|step_profile|ray_units|integrations/rl_zoo|fast_reader|observation_v1|sample_logs")
def git(*a): return subprocess.run(["git", *a], capture_output=True, text=True, check=True).stdout
def rest_lines(c):
    files = [f for f in git("ls-tree", "-r", "--name-only", c, "recsim_gym").split() if f.endswith(".py") and not EX.search(f)]
    return {f: git("show", f"{c}:{f}").count("\n") for f in files}
end = sys.argv[1] if len(sys.argv) > 1 else "e13d505"
total = 0
for c in reversed(git("rev-list", "--first-parent", f"e017f46..{end}").split()):
    a, b = rest_lines(c + "^1"), rest_lines(c)
    net = sum(b.values()) - sum(a.values())
    if net:
        total += net
        per = {f: b.get(f, 0) - a.get(f, 0) for f in set(a) | set(b)}
        top = ", ".join(f"{f.removeprefix('recsim_gym/')} {v:+d}" for f, v in sorted(per.items(), key=lambda x: -abs(x[1]))[:6] if v)
        print(f"{c[:7]}\t{net:+d}\t{git('log', '-1', '--format=%s', c)[:70]}\t{top}")
print("total", total)
