# SPDX-License-Identifier: Apache-2.0
"""What the benchmark measures and what it must reach, as data.

The runner (bench/runner.py), the documentation generator (bench/markdown.py) and the tests
(pytests/test_bench.py) all read this module; nothing else lists a figure or a target.

* SCENARIOS: what the creating thread changed about itself before it creates (its *taint*), and the
  peers that can undo that taint. PEERS are the alternatives to the library, implemented inside
  the bench program and run without the library.
* FIGURES: one row of the results each: a measured value, what it is compared with (plain glibc,
  the best peer, an empty preloaded library) and how (a ratio, or a difference for memory).
* TARGETS: the figures that have a target, with the comparison that must hold.
* FLOORS: what the hardware and kernel cost, measured without the library, to tell how far each
  figure is from what any implementation must pay.

A figure's value and reference name *jobs*: one process of the bench program (bench/bench.cc),
run once per round, with or without the library, pinned to CPU 0 or not. `jobs(params)` lists
every job the figures, the concurrency series and the floors need, with its command line; job
keys are built by the helpers below so that a figure names exactly the process it reads.
"""

from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

# --- what is measured ---------------------------------------------------------------------------

THREADS = (1, 2, 4, 8, 16, 32)          # concurrent creators
WHERE = ("pinned", "across")            # pinned: the process under `taskset -c 0`
WHERE_LABEL = {"pinned": "pinned", "across": "across"}

NAMESPACES = frozenset({"net", "uts", "ipc", "cgroup"})
# Every dimension a thread can change on itself that the library isolates by default and the bench
# can set up without a single-threaded process (mnt, pid and time need one).
ISOLABLE = ("net", "uts", "ipc", "cgroup", "affinity", "fs", "files")


@dataclass(frozen=True)
class Peer:
    id: str
    label: str
    handles: frozenset  # the taints it undoes
    how: str


PEERS = {
    "repair": Peer("repair", "repair in the child", NAMESPACES,
                   "the tainted creator creates the thread; the new thread setns()es back to "
                   "namespace descriptors saved at start, then runs the routine"),
    "condvar": Peer("condvar", "mutex+condvar helper", frozenset(ISOLABLE),
                    "a helper thread started in the baseline creates the thread on request "
                    "(a mutex, a condition variable, and one more for the reply)"),
}


@dataclass(frozen=True)
class Scenario:
    id: str
    label: str
    taint: Tuple[str, ...]
    how: str  # how the library makes the clean thread (docs)

    @property
    def peers(self) -> Tuple[str, ...]:
        """The peers that handle this taint."""
        return tuple(p for p, peer in PEERS.items() if set(self.taint) <= peer.handles)


SCENARIOS = (
    Scenario("net", "netns only", ("net",),
             "repaired: the caller creates it, the new thread re-enters the baseline's "
             "network namespace before the routine"),
    Scenario("affinity", "affinity only", ("affinity",),
             "carried: the baseline's CPU set goes to glibc in the thread's attributes"),
    Scenario("all", "every isolable dimension at once", ISOLABLE,
             "forwarded: a spare thread or the template creates it (a private fs or fd table "
             "cannot be undone by a thread on itself)"),
)
SCENARIO = {s.id: s for s in SCENARIOS}

# glibc calls that start helper threads, measured from a tainted thread. "fs" alone is the
# forwarded case (the call runs on the template); "all" includes a private fd table, with which
# a call that takes descriptors stays on the caller.
LIBC_CALLS = {"aio_write": "aio_write", "timer_create": "timer_create (SIGEV_THREAD)"}
LIBC_SCENARIOS = SCENARIOS[:2] + (
    Scenario("fs", "a private cwd only", ("fs",), "forwarded: the call runs on the template"),
) + SCENARIOS[2:]

EXEC = {"true": "exec /bin/true (posix_spawn+wait)",
        "pipeline": "sh -c '/bin/true | /bin/true' (posix_spawn+wait)"}

MEMORY = {  # id -> (label, the taint scenario of its creates, or None)
    "never": ("a process that never makes a tainted create", None),
    "repaired": ("after 100 repaired creates (netns)", "net"),
    "forwarded": ("after 100 forwarded creates (private cwd)", "fs"),
}


# --- job keys -----------------------------------------------------------------------------------
# create:<mode>:<scenario|none>:<lib|nolib>:<where>   create+join, call and start latency
# conc:<mode>:<scenario|none>:<lib|nolib>:<threads>   concurrent creators (across)
# spawn:<what>                                         exec with nothing, the library and an
#                                                      empty library preloaded, in turn
# libc:<call>:<scenario|none>:<lib|nolib>             a helper-starting glibc call
# mem:<scenario|none>:<lib|nolib>                      resident memory
# floor:<where>                                        the floors

def create_key(mode, scenario, lib, where):
    return f"create:{mode}:{scenario or 'none'}:{'lib' if lib else 'nolib'}:{where}"


def conc_key(mode, scenario, lib, threads):
    return f"conc:{mode}:{scenario or 'none'}:{'lib' if lib else 'nolib'}:{threads}"


def spawn_key(what):
    return f"spawn:{what}"


def libc_key(call, scenario, lib):
    return f"libc:{call}:{scenario or 'none'}:{'lib' if lib else 'nolib'}"


def mem_key(scenario, lib):
    return f"mem:{scenario or 'none'}:{'lib' if lib else 'nolib'}"


def floor_key(where):
    return f"floor:{where}"


def peer_of(key) -> Optional[Peer]:
    """The peer a create or conc job runs, if any."""
    mode = key.split(":")[1]
    return PEERS.get(mode)


# --- figures ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Ref:
    """A measured quantity: the median over rounds of `field` of job `job`."""
    job: str
    field: str


@dataclass(frozen=True)
class Target:
    op: str       # "<=", ">=" or "<", applied as: figure's ratio OP value
    value: float

    def holds(self, ratio: float) -> bool:
        return {"<=": ratio <= self.value, ">=": ratio >= self.value,
                "<": ratio < self.value}[self.op]

    def __str__(self):
        return f"{self.op} {self.value:g}"


@dataclass(frozen=True)
class Figure:
    id: str
    group: str
    description: str
    value: Ref                       # the measured side
    against: Tuple[Ref, ...]         # what it is compared with; several: the best of them
    against_label: str               # "plain", "best peer", ...
    unit: str                        # "us" (fields in ns), "/s" or "kB"
    compare: str = "ratio"           # "ratio": value / against; "difference": value - against
    note: str = ""

    @property
    def target(self) -> Optional[Target]:
        return TARGETS.get(self.id)

    @property
    def higher_is_better(self) -> bool:
        return self.unit == "/s"


GROUPS = {  # id -> title, in table order
    "untainted": "Untainted creates",
    "net": "netns only",
    "affinity": "affinity only",
    "all": "Every isolable dimension at once (net, uts, ipc, cgroup, affinity, fs, files)",
    "concurrent": "Concurrent tainted creators (creates/s, across)",
    "exec": "Process start",
    "libc": "glibc calls that start helper threads, from a tainted thread",
    "memory": "Memory",
}

# Targets, as ratios measured side by side in one run (2-core machine). Every tainted scenario is
# held to the best peer that handles it, pinned and across; "every dimension at once" must be
# strictly below the condvar helper, its only peer.
TARGETS: Dict[str, Target] = {
    "untainted_pinned": Target("<=", 1.02),
    "untainted_across": Target("<=", 1.02),
    "net_pinned": Target("<=", 1.10),
    "net_pinned_vs_peer": Target("<=", 1.0),
    "net_across_vs_peer": Target("<=", 1.0),
    "net_concurrent_8": Target(">=", 0.9),
    "affinity_pinned": Target("<=", 1.03),
    "affinity_across": Target("<=", 1.03),
    "affinity_pinned_vs_peer": Target("<=", 1.0),
    "affinity_across_vs_peer": Target("<=", 1.0),
    "all_pinned": Target("<=", 1.25),
    "all_across": Target("<=", 1.25),
    "all_pinned_vs_peer": Target("<", 1.0),
    "all_across_vs_peer": Target("<", 1.0),
    "exec_true": Target("<=", 1.01),
    "exec_pipeline": Target("<=", 1.01),
}


def _figures() -> List[Figure]:
    out = []
    add = out.append
    plain = {w: create_key("plain", None, False, w) for w in WHERE}
    for w in WHERE:
        add(Figure(f"untainted_{w}", "untainted",
                   f"untainted create+join, library / none ({w})",
                   Ref(create_key("plain", None, True, w), "create_join_ns"),
                   (Ref(plain[w], "create_join_ns"),), "none", "us"))
    for s in SCENARIOS:
        for w in WHERE:
            lib = create_key("taint", s.id, True, w)
            peers = tuple(create_key(p, s.id, False, w) for p in s.peers)
            add(Figure(f"{s.id}_{w}", s.id, f"{s.label}: create+join, library / plain ({w})",
                       Ref(lib, "create_join_ns"), (Ref(plain[w], "create_join_ns"),),
                       "plain", "us"))
            add(Figure(f"{s.id}_{w}_vs_peer", s.id,
                       f"{s.label}: create+join, library / best peer ({w})",
                       Ref(lib, "create_join_ns"), tuple(Ref(k, "create_join_ns") for k in peers),
                       "best peer", "us"))
            for p, k in zip(s.peers, peers):
                add(Figure(f"{s.id}_{w}_peer_{p}", s.id,
                           f"{s.label}: create+join, {PEERS[p].label} / plain ({w})",
                           Ref(k, "create_join_ns"), (Ref(plain[w], "create_join_ns"),),
                           "plain", "us"))
            add(Figure(f"{s.id}_{w}_unfixed", s.id,
                       f"{s.label}: create+join without the library / plain ({w})",
                       Ref(create_key("taint", s.id, False, w), "create_join_ns"),
                       (Ref(plain[w], "create_join_ns"),), "plain", "us",
                       note="the new thread keeps the taint: what the taint itself costs"))
            add(Figure(f"{s.id}_{w}_call", s.id,
                       f"{s.label}: pthread_create call, library / plain ({w})",
                       Ref(lib, "call_ns"), (Ref(plain[w], "call_ns"),), "plain", "us"))
            add(Figure(f"{s.id}_{w}_start", s.id,
                       f"{s.label}: start latency (call to the routine's first instruction), "
                       f"library / plain ({w})",
                       Ref(lib, "start_ns"), (Ref(plain[w], "start_ns"),), "plain", "us"))
            add(Figure(f"{s.id}_{w}_start_vs_peer", s.id,
                       f"{s.label}: start latency, library / best peer ({w})",
                       Ref(lib, "start_ns"), tuple(Ref(k, "start_ns") for k in peers),
                       "best peer", "us"))
    for s in SCENARIOS:
        for t in THREADS:
            lib = Ref(conc_key("taint", s.id, True, t), "creates_per_s")
            add(Figure(f"{s.id}_concurrent_{t}", "concurrent",
                       f"{s.label}: {t} creators, library / plain", lib,
                       (Ref(conc_key("plain", None, False, t), "creates_per_s"),), "plain", "/s"))
            add(Figure(f"{s.id}_concurrent_{t}_vs_peer", "concurrent",
                       f"{s.label}: {t} creators, library / best peer", lib,
                       tuple(Ref(conc_key(p, s.id, False, t), "creates_per_s") for p in s.peers),
                       "best peer", "/s"))
    for what, label in EXEC.items():
        lib = Ref(spawn_key(what), "library_ns")
        empty = Ref(spawn_key(what), "empty_ns")
        none = Ref(spawn_key(what), "none_ns")
        add(Figure(f"exec_{what}", "exec", f"{label}, library / empty preloaded library", lib,
                   (empty,), "empty preload", "us",
                   note="an empty preloaded library is the floor of any LD_PRELOAD library"))
        add(Figure(f"exec_{what}_vs_none", "exec", f"{label}, library / nothing preloaded", lib,
                   (none,), "none", "us"))
        add(Figure(f"exec_{what}_floor", "exec", f"{label}, empty preload / nothing preloaded",
                   empty, (none,), "none", "us"))
    for call, label in LIBC_CALLS.items():
        plain_call = (Ref(libc_key(call, None, False), "call_ns"),)
        add(Figure(f"libc_{call}_untainted", "libc", f"{label}, untainted, library / plain",
                   Ref(libc_key(call, None, True), "call_ns"), plain_call, "plain", "us"))
        for s in LIBC_SCENARIOS:
            add(Figure(f"libc_{call}_{s.id}", "libc", f"{label}, {s.label}, library / plain",
                       Ref(libc_key(call, s.id, True), "call_ns"), plain_call, "plain", "us"))
    for mid, (label, scen) in MEMORY.items():
        for kind in ("rss", "pss"):
            add(Figure(f"mem_{kind}_{mid}", "memory",
                       f"{kind.upper()} added by the library, {label}",
                       Ref(mem_key(scen, True), f"{kind}_kb"),
                       (Ref(mem_key(scen, False), f"{kind}_kb"),), "none", "kB", "difference"))
    return out


FIGURES: Tuple[Figure, ...] = tuple(_figures())
FIGURE = {f.id: f for f in FIGURES}
FIGURE_IDS: Tuple[str, ...] = tuple(FIGURE)

# The summary (README): the headline figures, in this order.
SUMMARY = ("untainted_pinned", "net_pinned", "net_pinned_vs_peer", "net_across_vs_peer",
           "net_concurrent_8", "affinity_pinned", "affinity_across", "all_pinned", "all_across",
           "all_pinned_vs_peer", "all_across_vs_peer", "exec_true")


# --- floors -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Floor:
    id: str
    description: str
    field: str  # of the floor job, in ns


FLOORS = (
    Floor("syscall", "one system call (getppid)", "syscall_ns"),
    Floor("futex_round_trip", "futex wake round trip between two threads", "futex_round_trip_ns"),
    Floor("clone_exit_wait", "bare clone + exit + wait, no glibc", "clone_exit_wait_ns"),
    Floor("clone_call", "the clone call alone", "clone_call_ns"),
    *(Floor(f"setns_{ns}", f"one setns ({ns})", f"setns_{ns}_ns")
      for ns in ("net", "uts", "ipc", "cgroup")),
    Floor("sched_setaffinity", "one sched_setaffinity (own thread, keeps its CPU)",
          "sched_setaffinity_ns"),
)
FLOOR_IDS = tuple(f.id for f in FLOORS)
# Floors only some architectures can measure (the bare clone is hand-written x86-64).
ARCH_SPECIFIC_FLOORS = frozenset({"clone_exit_wait", "clone_call"})


# --- jobs ---------------------------------------------------------------------------------------

@dataclass
class JobSpec:
    key: str
    argv: List[str]                  # after the program's name
    lib: bool                        # LD_PRELOAD=libpristine.so
    pinned: bool                     # under taskset -c 0
    phase: str                       # which rounds it belongs to (PHASES)
    expect_creator: Optional[frozenset] = None   # what create/conc must report
    expect_child: Optional[frozenset] = None


PHASES = ("create", "concurrent", "exec", "libc", "memory")

FULL = {"create_rounds": 15, "iters": 1500, "warmup_ms": 200, "rounds": 7, "ms": 300,
        "spawn_iters": 300, "libc_iters": 2000, "mem_creates": 100, "floor_iters": 2000,
        "floor_rounds": 3}
QUICK = {"create_rounds": 1, "iters": 100, "warmup_ms": 0, "rounds": 1, "ms": 20,
         "spawn_iters": 6, "libc_iters": 50, "mem_creates": 10, "floor_iters": 100,
         "floor_rounds": 1}


def _taint_arg(scenario):
    if scenario == "none":
        return "none"
    s = SCENARIO.get(scenario) or next(x for x in LIBC_SCENARIOS if x.id == scenario)
    return ",".join(s.taint)


def _taint_set(scenario):
    return frozenset() if scenario == "none" else frozenset(_taint_arg(scenario).split(","))


def job(key: str, p: dict) -> JobSpec:
    """The job behind `key`, with parameters `p` (FULL or QUICK)."""
    kind, *rest = key.split(":")
    if kind in ("create", "conc"):
        mode, scen, lib, last = rest
        taint = _taint_set(scen)
        creator = frozenset() if mode == "plain" else taint
        child = taint if (mode == "taint" and lib == "nolib") else frozenset()
        if kind == "create":
            argv = ["create", "--mode", mode, "--taint", _taint_arg(scen), "--iters", p["iters"],
                    "--warmup-ms", p["warmup_ms"]]
            return JobSpec(key, [str(a) for a in argv], lib == "lib", last == "pinned", "create",
                           creator, child)
        argv = ["concurrent", "--mode", mode, "--taint", _taint_arg(scen), "--threads", last,
                "--ms", p["ms"]]
        return JobSpec(key, [str(a) for a in argv], lib == "lib", False, "concurrent",
                       creator, child)
    if kind == "spawn":
        (what,) = rest
        n = p["spawn_iters"] if what == "true" else max(1, p["spawn_iters"] // 3)
        # The runner adds --library and --empty: the paths of this build.
        return JobSpec(key, ["spawn", "--cmd", what, "--iters", str(n)], False, False, "exec")
    if kind == "libc":
        call, scen, lib = rest
        argv = ["libc", "--call", call, "--taint", _taint_arg(scen), "--iters", p["libc_iters"]]
        return JobSpec(key, [str(a) for a in argv], lib == "lib", False, "libc")
    if kind == "mem":
        scen, lib = rest
        creates = p["mem_creates"] if scen != "none" else 1
        argv = ["mem", "--taint", _taint_arg(scen), "--creates", creates]
        return JobSpec(key, [str(a) for a in argv], lib == "lib", False, "memory")
    if kind == "floor":
        (where,) = rest
        return JobSpec(key, ["floor", "--iters", str(p["floor_iters"])], False, where == "pinned",
                       "memory")
    raise ValueError(f"unknown job key {key}")


def jobs(p: dict) -> Dict[str, JobSpec]:
    """Every job the figures, the floors and the concurrency plot need, in a stable order."""
    keys = []
    for f in FIGURES:
        for ref in (f.value, *f.against):
            if ref.job not in keys:
                keys.append(ref.job)
    for series in concurrency_series().values():
        keys += [k for ks in series.values() for k in ks if k not in keys]
    keys += [floor_key(w) for w in WHERE]
    return {k: job(k, p) for k in keys}


UNFIXED = "no library (keeps the taint)"


def concurrency_series() -> Dict[str, Dict[str, List[str]]]:
    """Per scenario: plain, the library, each peer and the tainted creators without the library,
    one job key per THREADS entry."""
    out = {}
    for s in SCENARIOS:
        series = {"plain": [conc_key("plain", None, False, t) for t in THREADS],
                  "library": [conc_key("taint", s.id, True, t) for t in THREADS]}
        for p in s.peers:
            series[PEERS[p].label] = [conc_key(p, s.id, False, t) for t in THREADS]
        # What the taint itself does to the creators (the threads keep it): pinned creators,
        # for one, are not comparable with plain ones.
        series[UNFIXED] = [conc_key("taint", s.id, False, t) for t in THREADS]
        out[s.id] = series
    return out
