# SPDX-License-Identifier: Apache-2.0
"""scripts/bench: pristine's performance figures, measured side by side in one run.

  scripts/bench [--quick] [--rounds N] [--no-build] [--json PATH] [--plot PATH] [--save]
  scripts/bench --markdown [--json PATH] [--doc PATH] [--check]

Builds the library and the bench program if needed, then runs every job of bench/figures.py as a
separate process, with and without LD_PRELOAD=libpristine.so, in interleaved rounds (the order of
the jobs is reversed every other round, so that a slow drift of the machine hits both sides
alike). A figure's value is the median over rounds of each process's median; its ratio is the
median over rounds of the ratio within each round. Prints the table, and writes the results as
JSON (default: <build>/bench/results.json) and a plot of the concurrent creators
(<build>/bench/bench.png): nothing tracked changes.

--save also copies both to the tracked bench/results/latest.json and docs/bench.png.
--markdown measures nothing: it regenerates the marked blocks of docs/performance.md (and of
README.md, where it has them) from a results file (default: bench/results/latest.json);
with --check it only reports whether they are up to date (exit 1 if not).
--quick runs a tiny version in seconds (results in <build>/bench/quick.*): its numbers are
meaningless; it proves that every figure is produced (pytests/test_bench.py).

Environment: PRISTINE_BUILD_DIR (default: build/ in the checkout).
"""

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from . import figures as F
from . import markdown

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.abspath(os.environ.get("PRISTINE_BUILD_DIR") or os.path.join(ROOT, "build"))
LIBRARY = os.path.join(BUILD, "shim", "libpristine.so")
PROGRAM = os.path.join(BUILD, "bench", "pristine-bench")
EMPTY_PRELOAD = os.path.join(BUILD, "bench", "libpristine-empty-preload.so")
SAVED_JSON = os.path.join(ROOT, "bench", "results", "latest.json")
SAVED_PLOT = os.path.join(ROOT, "docs", "bench.png")


def die(msg):
    print(f"scripts/bench: {msg}", file=sys.stderr)
    sys.exit(1)


def build(args):
    if args.no_build:
        return
    cmd = ["cmake", "-S", ROOT, "-B", BUILD]
    if not os.path.exists(os.path.join(BUILD, "CMakeCache.txt")):
        cmd.append("-DCMAKE_BUILD_TYPE=RelWithDebInfo")
    for c in (cmd, ["cmake", "--build", BUILD, "-j", str(os.cpu_count() or 2),
                    "--target", "pristine", "pristine-bench", "pristine-empty-preload"]):
        r = subprocess.run(c, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            die(f"build failed: {' '.join(c)}\n{r.stdout[-4000:]}")
    try:
        with open(os.path.join(BUILD, "CMakeCache.txt")) as f:
            for line in f:
                if line.startswith("CMAKE_BUILD_TYPE:"):
                    bt = line.split("=", 1)[1].strip()
                    if bt not in ("Release", "RelWithDebInfo"):
                        print(f"scripts/bench: warning: the build is {bt or 'unoptimised'}; "
                              f"timings are meant for Release/RelWithDebInfo", file=sys.stderr)
    except OSError:
        pass


def git(*args):
    """git's answer, or "" where there is no git (a tarball, a machine without it)."""
    try:
        return subprocess.run(["git", "-C", ROOT, *args], capture_output=True,
                              text=True).stdout.strip()
    except OSError:
        return ""


def machine():
    glibc = os.confstr("CS_GNU_LIBC_VERSION") if hasattr(os, "confstr") else ""
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    dirty = git("status", "--porcelain", "--", "shim", "include")
    return {
        "nproc": os.cpu_count(),
        "arch": platform.machine(),
        "kernel": platform.release(),
        "glibc": glibc,
        "cpu": model,
        "commit": git("rev-parse", "--short", "HEAD") + ("+changes" if dirty else ""),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "loadavg_start": round(os.getloadavg()[0], 2),
    }


# --- jobs ---------------------------------------------------------------------------------------

class Job:
    """One process to run once per round."""

    def __init__(self, spec: F.JobSpec, ns_pid):
        self.spec = spec
        self.ns_pid = ns_pid
        self.results = []

    def argv(self):
        s = self.spec
        argv = [PROGRAM, *s.argv]
        if s.argv[0] == "spawn":
            argv += ["--library", LIBRARY, "--empty", EMPTY_PRELOAD]
        elif self.ns_pid:
            argv += ["--ns-pid", str(self.ns_pid)]
        return (["taskset", "-c", "0"] if s.pinned else []) + argv

    def run(self):
        s = self.spec
        env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "PRISTINE_OPTIONS")}
        if s.lib:
            env["LD_PRELOAD"] = LIBRARY
        cmd = self.argv()
        where = f"{' '.join(cmd)}{' (LD_PRELOAD=library)' if s.lib else ''}"
        try:
            r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300,
                               cwd=ROOT, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            die(f"{where} did not finish in 300 s")
        if r.returncode != 0:
            die(f"{where} exited {r.returncode}\n{r.stderr}")
        try:
            out = json.loads(r.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            die(f"{where} printed no JSON:\n{r.stdout}\n{r.stderr}")
        if "library_loaded" in out and out["library_loaded"] != s.lib:
            die(f"{where}: library_loaded={out['library_loaded']}, expected {s.lib}")
        # The job measures what it claims: the creator carries the taint, and its threads are
        # clean (library, peers) or keep the taint (without the library).
        for what, expected in (("creator_dirty", s.expect_creator), ("child_dirty", s.expect_child)):
            if expected is not None and frozenset(out.get(what, ())) != expected:
                die(f"{where}: {what} is {sorted(out.get(what, ()))}, expected {sorted(expected)}"
                    f"\n(the job would not measure what its figure says)")
        self.results.append(out)

    def values(self, field):
        return [r[field] for r in self.results if r.get(field) is not None]


class NamespaceHolder:
    """A process holding net, uts, ipc and cgroup namespaces for the whole run (util-linux
    unshare): tainted threads enter those, so no namespace is created or torn down per process
    (the kernel tears a network namespace down slowly and asynchronously, which would disturb the
    next interleaved job)."""

    KINDS = ("net", "uts", "ipc", "cgroup")

    def __init__(self):
        self.proc = None
        self.pid = None

    def __enter__(self):
        if shutil.which("unshare") is None:
            print("scripts/bench: warning: no unshare(1); each process unshares its own "
                  "namespaces", file=sys.stderr)
            return self
        self.proc = subprocess.Popen(["unshare", "--net", "--uts", "--ipc", "--cgroup",
                                      "sleep", "1000000"], stdin=subprocess.DEVNULL)
        mine = {k: os.readlink(f"/proc/self/ns/{k}") for k in self.KINDS}
        for _ in range(500):
            try:
                if all(os.readlink(f"/proc/{self.proc.pid}/ns/{k}") != mine[k] for k in self.KINDS):
                    self.pid = self.proc.pid
                    break
            except OSError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.01)
        if self.pid is None:
            print("scripts/bench: warning: no held namespaces; each process unshares its own",
                  file=sys.stderr)
        return self

    def __exit__(self, *exc):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def run_phase(jobs, phase, rounds):
    selected = [j for j in jobs.values() if j.spec.phase == phase]
    for r in range(rounds):
        for j in (selected if r % 2 == 0 else list(reversed(selected))):
            j.run()
        print(f"  {phase}: round {r + 1}/{rounds}", file=sys.stderr, flush=True)


# --- evaluation ---------------------------------------------------------------------------------

def spread_pct(values):
    """The interquartile range of values, in % of their median (0 with fewer than 4)."""
    if len(values) < 4:
        return 0.0
    q = statistics.quantiles(values, n=4)
    med = statistics.median(values)
    return 100.0 * (q[2] - q[0]) / med if med else 0.0


def evaluate(jobs):
    """Every figure. The value and its reference are medians over rounds; the ratio (or the
    difference) is the median over rounds of the ratio within each round: the jobs of a round run
    within seconds of each other, so that a change of the shared machine's load between rounds
    cancels out. noise_pct is the interquartile range of those per-round ratios."""
    def values(ref):
        v = jobs[ref.job].values(ref.field)
        if not v:
            die(f"internal error: job {ref.job} has no {ref.field}")
        scale = 1000.0 if ref.field.endswith("_ns") else 1.0
        return [x / scale for x in v]

    out = []
    for f in F.FIGURES:
        value = values(f.value)
        candidates = [(values(r), r) for r in f.against]
        pick = max if f.higher_is_better else min
        against, ref = pick(candidates, key=lambda c: statistics.median(c[0]))
        if f.compare == "difference":
            per_round = [a - b for a, b in zip(value, against)]
            noise = 0.0
        else:
            per_round = [a / b for a, b in zip(value, against) if b]
            noise = spread_pct(per_round)
        label = f.against_label
        if label == "best peer":
            label = f"best peer: {F.peer_of(ref.job).label}"
        ratio = statistics.median(per_round) if per_round else None
        t = f.target
        out.append({
            "id": f.id, "group": f.group, "description": f.description,
            "value": statistics.median(value), "against": statistics.median(against),
            "against_label": label, "against_job": ref.job, "unit": f.unit,
            "compare": f.compare, "ratio": ratio,
            "target": t.value if t else None, "target_op": t.op if t else None,
            "pass": (t.holds(ratio) if t and ratio is not None else None),
            "noise_pct": round(noise, 1), "note": f.note,
        })
    return out


def floors(jobs):
    res = {}
    for fl in F.FLOORS:
        res[fl.id] = {}
        for w in F.WHERE:
            v = jobs[F.floor_key(w)].values(fl.field)
            res[fl.id][w] = statistics.median(v) / 1000.0 if v else None
    return res


def concurrency(jobs):
    out = {"threads": list(F.THREADS), "scenarios": {}}
    for scen, series in F.concurrency_series().items():
        out["scenarios"][scen] = {
            name: [statistics.median(jobs[k].values("creates_per_s")) for k in keys]
            for name, keys in series.items()}
    return out


# --- plot ---------------------------------------------------------------------------------------

# One style per series, the same in every panel.
PLOT_STYLE = {
    "plain": "lc rgb '#000000' pt 7",
    "library": "lc rgb '#d55e00' pt 5",
    F.PEERS["repair"].label: "lc rgb '#0072b2' pt 9",
    F.PEERS["condvar"].label: "lc rgb '#009e73' pt 11",
    F.UNFIXED: "lc rgb '#999999' pt 1 dt 2",
}


def plot(conc, path, mach):
    gp = shutil.which("gnuplot")
    if gp is None:
        print("scripts/bench: gnuplot not found; no plot", file=sys.stderr)
        return None
    terms = subprocess.run([gp, "-e", "set terminal"], capture_output=True, text=True)
    term = "pngcairo size 1200,420 font ',9'" if "pngcairo" in (terms.stdout + terms.stderr) \
        else "png size 1200,420"
    os.makedirs(os.path.dirname(os.path.abspath(path)) or ".", exist_ok=True)
    with tempfile.TemporaryDirectory() as d:
        script = [f"set terminal {term}", f"set output '{os.path.abspath(path)}'",
                  f"set multiplot layout 1,{len(conc['scenarios'])} title \"wall time per "
                  f"create+join against concurrent creators ({mach['nproc']} CPUs, Linux "
                  f"{mach['kernel']}, {mach['glibc']})\"",
                  "set xlabel 'concurrent tainted creators'", "set logscale x 2",
                  "set xtics (1,2,4,8,16,32)", "set yrange [0:*]", "set key top left",
                  "set grid"]
        for i, (scen, series) in enumerate(conc["scenarios"].items()):
            data = os.path.join(d, f"{scen}.dat")
            names = list(series)
            with open(data, "w") as f:
                for k, t in enumerate(conc["threads"]):
                    f.write(f"{t} " + " ".join(f"{1e6 / max(series[n][k], 1):.3f}"
                                               for n in names) + "\n")
            script.append(f"set title '{F.SCENARIO[scen].label}'")
            script.append(f"set ylabel '{'us per create (aggregate)' if i == 0 else ''}'")
            script.append("plot " + ", ".join(
                f"'{data}' using 1:{k + 2} with linespoints lw 2 {PLOT_STYLE.get(n, '')} "
                f"title '{n}'" for k, n in enumerate(names)))
        script.append("unset multiplot")
        r = subprocess.run([gp], input="\n".join(script), capture_output=True, text=True)
        if r.returncode != 0:
            print(f"scripts/bench: gnuplot failed:\n{r.stderr}", file=sys.stderr)
            return None
    return path


# --- main ---------------------------------------------------------------------------------------

def relative(obj):
    """obj with every path inside the checkout or the build made relative to them."""
    if isinstance(obj, dict):
        return {k: relative(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [relative(v) for v in obj]
    if isinstance(obj, str):
        for base, name in ((BUILD, "<build>"), (ROOT, ".")):
            if obj.startswith(base + os.sep):
                return name + obj[len(base):]
    return obj


def dumps(result):
    """JSON with one line per figure and per job's raw results, so that a diff between two saved
    runs reads figure by figure."""
    def lines(key, value):
        if isinstance(value, list) and key == "figures":
            return "[\n" + ",\n".join("  " + json.dumps(v) for v in value) + "\n ]"
        if isinstance(value, dict) and key in ("raw", "floors_us", "concurrency", "params",
                                               "machine"):
            return "{\n" + ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}"
                                       for k, v in value.items()) + "\n }"
        return json.dumps(value)
    return "{\n" + ",\n".join(f" {json.dumps(k)}: {lines(k, v)}" for k, v in result.items()) \
        + "\n}\n"


def write_json(path, result):
    os.makedirs(os.path.dirname(os.path.abspath(path)) or ".", exist_ok=True)
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(dumps(result))
    os.replace(tmp, path)


def measure(args):
    p = dict(F.QUICK if args.quick else F.FULL)
    if args.rounds:
        p["rounds"] = p["create_rounds"] = args.rounds
    name = "quick" if args.quick else "results"
    json_path = os.path.abspath(args.json or os.path.join(BUILD, "bench", f"{name}.json"))
    plot_path = os.path.abspath(args.plot or os.path.join(BUILD, "bench",
                                                         "quick.png" if args.quick else "bench.png"))

    start = time.monotonic()
    build(args)
    for f in (LIBRARY, PROGRAM, EMPTY_PRELOAD):
        if not os.path.exists(f):
            die(f"{f} is missing (build with `cmake -S . -B build && cmake --build build`)")
    if shutil.which("taskset") is None:
        die("taskset(1) is needed for the pinned figures (util-linux)")
    mach = machine()
    print(f"scripts/bench: nproc={mach['nproc']} kernel={mach['kernel']} {mach['glibc']} "
          f"load={mach['loadavg_start']}", file=sys.stderr)
    with NamespaceHolder() as holder:
        jobs = {k: Job(s, holder.pid) for k, s in F.jobs(p).items()}
        for phase in F.PHASES:
            rounds = {"create": p["create_rounds"], "memory": p["floor_rounds"]}.get(phase,
                                                                                     p["rounds"])
            run_phase(jobs, phase, rounds)
    mach["loadavg_end"] = round(os.getloadavg()[0], 2)
    elapsed = time.monotonic() - start

    conc = concurrency(jobs)
    png = plot(conc, plot_path, mach)
    result = {
        "schema": 1,
        "machine": mach,
        "params": p,
        "quick": args.quick,
        "elapsed_s": round(elapsed, 1),
        "figures": evaluate(jobs),
        "floors_us": floors(jobs),
        "concurrency": conc,
        "plot": png,
        "raw": {k: j.results for k, j in jobs.items()},
    }
    print(markdown.console(result))
    print(f"elapsed: {elapsed:.0f} s")
    write_json(json_path, relative(result))
    print(f"results: {json_path}" + (f"; plot: {png}" if png else ""))
    if args.save:
        saved = dict(result, plot=None)
        if png:
            os.makedirs(os.path.dirname(SAVED_PLOT), exist_ok=True)
            shutil.copyfile(png, SAVED_PLOT)
            saved["plot"] = SAVED_PLOT
        write_json(SAVED_JSON, relative(saved))
        print(f"saved: {os.path.relpath(SAVED_JSON, ROOT)}"
              + (f", {os.path.relpath(SAVED_PLOT, ROOT)}" if png else "")
              + "; run `scripts/bench --markdown` to update docs/performance.md")


def render(args):
    src = args.json or SAVED_JSON
    try:
        with open(src) as f:
            result = json.load(f)
    except (OSError, ValueError) as e:
        die(f"cannot read results {src}: {e}")
    if result.get("schema") != 1:
        die(f"{src}: not a results file of this bench (schema {result.get('schema')!r})")
    docs = [args.doc] if args.doc else [os.path.join(ROOT, "docs", "performance.md"),
                                        os.path.join(ROOT, "README.md")]
    stale = []
    for doc in docs:
        try:
            with open(doc) as f:
                text = f.read()
        except OSError as e:
            die(f"cannot read {doc}: {e}")
        try:
            new = markdown.update(text, result)
        except ValueError as e:
            die(f"{doc}: {e}")
        if new == text:
            continue
        stale.append(doc)
        if not args.check:
            with open(doc, "w") as f:
                f.write(new)
            print(f"updated {os.path.relpath(doc, ROOT)}")
    if args.check and stale:
        die("out of date with " + os.path.relpath(src, ROOT) + ": "
            + ", ".join(os.path.relpath(d, ROOT) for d in stale)
            + " (run scripts/bench --markdown)")


def main(argv=None):
    ap = argparse.ArgumentParser(prog="scripts/bench", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    ap.add_argument("--quick", action="store_true", help="a tiny run, seconds; numbers meaningless")
    ap.add_argument("--rounds", type=int, help="interleaved rounds (default 15 for create+join, "
                                               "7 for the others; quick: 1)")
    ap.add_argument("--no-build", action="store_true", help="use the existing build as is")
    ap.add_argument("--json", help="results file to write (or, with --markdown, to read)")
    ap.add_argument("--plot", help="PNG to write")
    ap.add_argument("--save", action="store_true",
                    help="also write bench/results/latest.json and docs/bench.png")
    ap.add_argument("--markdown", action="store_true",
                    help="measure nothing: regenerate the documentation's tables from results")
    ap.add_argument("--doc", help="with --markdown: the one file to update")
    ap.add_argument("--check", action="store_true",
                    help="with --markdown: change nothing, exit 1 if a file is out of date")
    args = ap.parse_args(argv)
    if args.markdown:
        if args.quick or args.save or args.plot or args.rounds:
            ap.error("--markdown measures nothing: it takes only --json, --doc and --check")
        render(args)
        return
    if args.doc or args.check:
        ap.error("--doc and --check go with --markdown")
    if args.save and (args.quick or args.rounds):
        ap.error("--save keeps a full run only (no --quick, no --rounds)")
    measure(args)
