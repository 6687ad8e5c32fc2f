# SPDX-License-Identifier: Apache-2.0
"""Fault injection around thread creation (testapps/faults.cc), with and without the shim.

Each case: the faulted create returns what glibc returns without the shim, the process has as
many threads afterwards as before (/proc/self/task), its mappings do not grow with the number of
rounds (/proc/self/maps), and nothing deadlocks (the subprocess timeout is far above a healthy
run's duration; reaching it is a hang, which fails the test).
"""

import json
import subprocess

import pytest

from conftest import BUILD_DIR, ROOT, cannot_run_here

FAULTS = BUILD_DIR / "testapps" / "faults"
TIMEOUT_S = 180  # healthy runs take well under a second each
# Constant extra mappings a run may legitimately end with: a malloc arena (2 lines), a cached
# thread stack with its guard page (2 lines), and the shim's spare threads (2 stacks with their
# guard pages at first; at a thread limit, creates that found none raise the pool, up to 13 lines
# seen). A leak per create shows up as 20 (limit cases: 20 faulted creates) to thousands (eintr,
# cancel) of lines.
MAPS_SLACK = 16


def run_faults(case, shim_path=None, args=(), options=None, expect_json=True):
    if not FAULTS.exists():
        pytest.fail(f"faults not built: {FAULTS} is missing")
    env = {"PATH": "/usr/bin:/bin"}
    if shim_path is not None:
        env["LD_PRELOAD"] = str(shim_path)
    if options is not None:
        env["PRISTINE_OPTIONS"] = options
    cmd = [str(FAULTS), case, *[str(a) for a in args]]
    where = f"{' '.join(cmd)}{' (LD_PRELOAD=shim)' if shim_path else ''}"
    try:
        proc = subprocess.run(cmd, cwd=str(ROOT), env=env, capture_output=True, text=True,
                              timeout=TIMEOUT_S, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        pytest.fail(f"HANG: {where} did not finish in {TIMEOUT_S} s")
    if proc.returncode == 3:
        cannot_run_here(where, proc.stderr, shim_path is not None,
                        lambda: run_faults_exit_code(case, args))
    if not expect_json:
        return proc, None
    assert proc.returncode == 0, f"{where}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    lines = [l for l in proc.stdout.splitlines() if l.startswith("{")]
    assert len(lines) == 1, f"{where}: {proc.stdout}"
    result = json.loads(lines[0])
    result["_where"] = where
    return proc, result


def run_faults_exit_code(case, args=()):
    """The exit code of a run without the library (for cannot_run_here)."""
    return subprocess.run([str(FAULTS), case, *[str(a) for a in args]], cwd=str(ROOT),
                          env={"PATH": "/usr/bin:/bin"}, capture_output=True,
                          timeout=TIMEOUT_S, stdin=subprocess.DEVNULL).returncode


def check_no_leak(r, plain):
    where = r["_where"]
    assert r["tasks_after"] == r["tasks_before"], f"thread leak: {r}"
    grown = r["maps_after"] - r["maps_before"]
    plain_grown = plain["maps_after"] - plain["maps_before"]
    assert grown <= max(plain_grown, 0) + MAPS_SLACK, \
        f"mappings grew by {grown} (without the shim: {plain_grown}): {where}: {r}"


def test_thread_limit_capacity_is_glibcs(shim):
    """Under a pids cgroup limit set before the program creates anything, a tainted worker holds
    threads alive until a create fails: it gets EAGAIN, as from glibc, and holds as many threads
    as without the shim, or one fewer (the template's slot): the spare threads' slots are given
    back when a create would fail."""
    _, plain = run_faults("cgroup")
    _, r = run_faults("cgroup", shim)
    assert r["rc"] == plain["rc"] == "EAGAIN", (plain, r)
    assert plain["held"] - 1 <= r["held"] <= plain["held"], (plain, r)
    assert r["rc_after"] == plain["rc_after"] == "0", (plain, r)
    assert r["children_wrong"] == 0, r
    assert plain["children_wrong"] == plain["children_ran"], plain
    check_no_leak(r, plain)
    check_no_leak(plain, plain)


@pytest.mark.parametrize("case", ["nproc", "rlimit-as"])
def test_limit_gives_glibc_result_and_nothing_leaks(shim, case):
    """nproc: RLIMIT_NPROC for uid 65534 (the whole process drops to it, template included);
    rlimit-as: a 64 MiB stack cannot be mapped under RLIMIT_AS."""
    _, plain = run_faults(case)
    _, r = run_faults(case, shim)
    assert r["rc"] == plain["rc"] == "EAGAIN", (plain, r)
    assert r["attempts_differing"] == plain["attempts_differing"] == 0, (plain, r)
    # A null attr may be served by a spare thread the shim made before the limit was reached.
    assert r["rc_default_attr"] in ("0", "EAGAIN"), r
    assert r["rc_after"] == plain["rc_after"] == "0", (plain, r)
    # Under the shim the tainted worker's children got the baseline netns; without it they did not.
    assert r["children_wrong"] == 0, r
    assert plain["children_wrong"] == plain["children_ran"], plain
    check_no_leak(r, plain)
    check_no_leak(plain, plain)


def test_eintr_storm_during_handoff(shim):
    """A tainted worker creates 2000 threads while SIGUSR1 (no SA_RESTART) hits it non-stop:
    every create succeeds once, every child runs, no thread is left over."""
    _, plain = run_faults("eintr")
    _, r = run_faults("eintr", shim)
    for res in (plain, r):
        assert res["failures"] == 0, res
        assert res["children_ran"] == res["rounds"] + 1, res  # + the warm-up create
        assert res["signals_received"] > 0, res
    assert r["children_wrong"] == 0, r
    check_no_leak(r, plain)


def test_cancel_waiting_caller(shim):
    """pthread_cancel (deferred) on a worker inside a forwarded pthread_create: pthread_create is
    not a cancellation point, so it completes and returns a joinable thread; the worker is
    cancelled at its next cancellation point."""
    _, plain = run_faults("cancel", args=["--rounds", "300"])
    _, r = run_faults("cancel", shim, args=["--rounds", "300"])
    for res in (plain, r):
        assert res["child_missing"] == 0, res   # the create always returned
        assert res["create_failed"] == 0, res
        assert res["child_joined"] == res["rounds"], res
        assert res["cancelled"] + res["not_cancelled"] == res["rounds"], res
        assert res["cancelled"] > 0, res
    assert r["children_wrong"] == 0, r
    check_no_leak(r, plain)


@pytest.mark.parametrize("delay_us", [0, 200, 2000, 20000])
@pytest.mark.parametrize("options", [None, "log=off"])
def test_exit_from_another_thread_mid_handoff(shim, delay_us, options):
    """exit(7) from one thread while four tainted threads are in forwarded creates: the process
    exits with 7 (not a crash, not a hang), as without the shim."""
    for _ in range(3):
        plain, _ = run_faults("exit", args=["--rounds", delay_us], expect_json=False)
        proc, _ = run_faults("exit", shim, args=["--rounds", delay_us], options=options,
                             expect_json=False)
        assert plain.returncode == 7, plain.stderr
        assert proc.returncode == 7, f"exit status {proc.returncode}\n{proc.stderr}"
