# SPDX-License-Identifier: Apache-2.0
"""The library inside other runtimes: allocators that start threads while holding their own locks
(jemalloc; tcmalloc, which starts none), ThreadSanitizer and AddressSanitizer runtimes ahead of the
library or behind it, valgrind's race detectors (helgrind, drd), and an address-space limit.

Each case uses a thread with a private fs_struct (its creates are forwarded: a thread in the
baseline makes them) and a thread in another network namespace (its creates are made by the caller
and repaired by the new thread). Programs: testapps/allocator_threads, handoff_order (also compiled
here with -fsanitize=thread by gcc and clang, and -fsanitize=address by gcc) and as_limit.

A hang is a failure: each run has a timeout far above its healthy duration (well under a second,
a few seconds under valgrind). A missing Debian package skips its case (scripts/install-deps
installs them all).
"""

import functools
import glob
import json
import os
import re
import shutil
import subprocess

import pytest

from conftest import BUILD_DIR, ROOT, SHIM

TESTAPPS = BUILD_DIR / "testapps"
RUN = ROOT / "scripts" / "pristine-run"
TIMEOUT_S = 60
TAINTS = ["fs", "net"]


def run(cmd, preload=None, env=None, timeout=TIMEOUT_S):
    """Runs cmd with LD_PRELOAD=preload (a list of paths); a timeout is a hang and fails."""
    full_env = dict(os.environ)
    for var in ("LD_PRELOAD", "PRISTINE_OPTIONS", "PRISTINE_LIB", "MALLOC_CONF", "TSAN_OPTIONS",
                "ASAN_OPTIONS"):
        full_env.pop(var, None)
    full_env["PRISTINE_BUILD_DIR"] = str(BUILD_DIR)
    if preload:
        full_env["LD_PRELOAD"] = ":".join(str(p) for p in preload)
    full_env.update(env or {})
    where = f"{' '.join(str(c) for c in cmd)} (LD_PRELOAD={full_env.get('LD_PRELOAD', '')}" \
            f"{''.join(f' {k}={v}' for k, v in (env or {}).items())})"
    try:
        proc = subprocess.run([str(c) for c in cmd], env=full_env, cwd=str(ROOT),
                              capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        pytest.fail(f"hang (no exit after {timeout} s): {where}")
    proc.where = where
    return proc


def result(proc):
    """The program's one JSON line; fails on any other exit than 0."""
    assert proc.returncode == 0, f"{proc.where} exited {proc.returncode}\n{proc.stderr}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def app(name):
    path = TESTAPPS / name
    if not path.exists():
        pytest.fail(f"{path} is missing: build the tree (cmake --build build)")
    return path


def system_library(name):
    """A shared library of a Debian package, by file name; skips if it is not installed."""
    for pattern in (f"/usr/lib/*-linux-gnu/{name}", f"/usr/lib/{name}", f"/lib/*-linux-gnu/{name}"):
        found = sorted(glob.glob(pattern))
        if found:
            return found[0]
    pytest.skip(f"{name} is not installed (scripts/install-deps installs it)")


def compiler_runtime(compiler, name):
    """The runtime library `compiler` links for a sanitizer (e.g. g++, libtsan.so)."""
    out = subprocess.run([compiler, f"-print-file-name={name}"], capture_output=True, text=True)
    path = os.path.realpath(out.stdout.strip())
    if out.returncode != 0 or not os.path.isfile(path):
        pytest.skip(f"{compiler} has no {name} (scripts/install-deps installs it)")
    return path


@pytest.fixture(scope="session")
def sanitized(tmp_path_factory):
    """sanitized(compiler, sanitizer) -> handoff_order built with -fsanitize=<sanitizer>."""
    out_dir = tmp_path_factory.mktemp("sanitized")

    @functools.lru_cache(maxsize=None)
    def build(compiler, sanitizer):
        if shutil.which(compiler) is None:
            pytest.skip(f"{compiler} is not installed (scripts/install-deps installs it)")
        binary = out_dir / f"handoff_order_{compiler.replace('+', 'x')}_{sanitizer}"
        cmd = [compiler, "-O1", "-g", f"-fsanitize={sanitizer}", "-o", str(binary),
               str(ROOT / "testapps" / "handoff_order.cc")]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stderr}"
        return binary

    return build


# --- allocators -------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["mallctl", "toggle"])
@pytest.mark.parametrize("taint", TAINTS)
@pytest.mark.parametrize("order", ["jemalloc_first", "library_first"])
def test_jemalloc_background_threads_from_a_tainted_thread(shim, order, taint, mode):
    """A tainted thread enables jemalloc's background threads: jemalloc creates the first one from
    that thread with its background_thread_lock held. No hang in either order (the forwarded path
    used to wait on a template blocked on that lock, in its first allocation). With jemalloc first,
    its threads go through the library and are in the baseline; with the library first they do not
    reach it (jemalloc looks pthread_create up past itself, dlsym(RTLD_NEXT)): as documented, they
    keep the enabling thread's state. The worker's own creates are clean either way."""
    jemalloc = system_library("libjemalloc.so.2")
    preload = [jemalloc, shim] if order == "jemalloc_first" else [shim, jemalloc]
    env = {"MALLOC_CONF": "background_thread:true"} if mode == "toggle" else {}
    proc = run([app("allocator_threads"), taint, mode], preload=preload, env=env)
    r = result(proc)
    assert r["creates"] == 4 and r["create_errors"] == 0, (r, proc.where)
    assert r["child_wrong_net"] == 0 and r["child_wrong_fs"] == 0, (r, proc.where)
    assert r["bg_threads"] > 0, (r, proc.where, proc.stderr)
    if order == "jemalloc_first":
        assert r["bg_wrong_net"] == 0 and r["bg_wrong_fs"] == 0, (r, proc.where)


def test_pristine_run_keeps_jemalloc_ahead(shim):
    """pristine-run keeps jemalloc ahead of the library in LD_PRELOAD, so that jemalloc's background
    threads started by a tainted thread get the baseline."""
    jemalloc = system_library("libjemalloc.so.2")
    proc = run([RUN, "--", app("allocator_threads"), "net", "mallctl"], preload=[jemalloc],
               env={"PRISTINE_LIB": str(shim)})
    r = result(proc)
    assert r["bg_threads"] > 0 and r["bg_wrong_net"] == 0, (r, proc.where)


@pytest.mark.parametrize("taint", TAINTS)
@pytest.mark.parametrize("order", ["tcmalloc_first", "library_first"])
@pytest.mark.parametrize("tcmalloc", ["libtcmalloc_minimal.so.4", "libtcmalloc.so.4"])
def test_tcmalloc(shim, tcmalloc, order, taint):
    """tcmalloc starts no threads of its own; tainted creates under it are clean and nothing
    hangs."""
    lib = system_library(tcmalloc)
    preload = [lib, shim] if order == "tcmalloc_first" else [shim, lib]
    r = result(run([app("allocator_threads"), taint, "plain"], preload=preload))
    assert r["creates"] == 20 and r["create_errors"] == 0, r
    assert r["child_wrong_net"] == 0 and r["child_wrong_fs"] == 0, r


# --- sanitizers -------------------------------------------------------------------------------

def tsan_case(variant, sanitized, shim):
    """(binary, preload) for a ThreadSanitizer set-up: gcc's runtime behind the library (a
    dependency of the program), gcc's preloaded ahead of it, or clang's (linked into the program:
    always ahead)."""
    if variant == "gcc_library_first":
        return sanitized("g++", "thread"), [shim]
    if variant == "gcc_tsan_first":
        return sanitized("g++", "thread"), [compiler_runtime("g++", "libtsan.so"), shim]
    return sanitized("clang++", "thread"), [shim]


TSAN_VARIANTS = ["gcc_library_first", "gcc_tsan_first", "clang"]


@pytest.mark.parametrize("taint", TAINTS)
@pytest.mark.parametrize("variant", TSAN_VARIANTS)
def test_thread_sanitizer(shim, sanitized, variant, taint):
    """Under ThreadSanitizer, in either order: creates from a tainted thread work (TSan ahead of
    the library used to crash the template, a thread it never saw, at the first forwarded create),
    the new threads are clean, and TSan reports nothing: no false race through the hand-off (the
    creator's writes happen before the new thread's routine) and no complaint about the library's
    threads."""
    binary, preload = tsan_case(variant, sanitized, shim)
    proc = run([binary, taint, "20"], preload=preload)
    assert "Sanitizer" not in proc.stderr, f"{proc.where}\n{proc.stderr}"
    r = result(proc)
    assert r == {"creates": 20, "errors": 0, "wrong_value": 0, "child_wrong_fs": 0,
                 "child_wrong_net": 0}, (r, proc.where)


@pytest.mark.parametrize("variant", ["gcc_library_first"])
def test_thread_sanitizer_still_sees_a_real_race(shim, sanitized, variant):
    """The ordering the library publishes (behind TSan; ahead of it TSan orders the create itself)
    is pthread_create's and no more: a write made by the creator after pthread_create returned,
    read by the new thread, is still reported."""
    binary, preload = tsan_case(variant, sanitized, shim)
    proc = run([binary, "fs", "6", "race"], preload=preload)
    assert "WARNING: ThreadSanitizer: data race" in proc.stderr, f"{proc.where}\n{proc.stderr}"
    assert "Child" in proc.stderr, proc.stderr


@pytest.mark.parametrize("taint", TAINTS)
def test_address_sanitizer_stays_first_under_pristine_run(shim, sanitized, taint):
    """pristine-run keeps an AddressSanitizer runtime already in LD_PRELOAD ahead of the library
    (ASan refuses to start otherwise), and forwarded creates work under it."""
    binary = sanitized("g++", "address")
    asan = compiler_runtime("g++", "libasan.so")
    proc = run([RUN, "--", binary, taint, "20"], preload=[asan], env={"PRISTINE_LIB": str(shim)})
    assert "does not come first" not in proc.stderr, proc.stderr
    r = result(proc)
    assert r["creates"] == 20 and r["wrong_value"] == 0, (r, proc.where)
    assert r["child_wrong_fs"] == 0 and r["child_wrong_net"] == 0, (r, proc.where)


def test_pristine_run_preload_order(shim):
    """Sanitizer runtimes and jemalloc stay ahead of the library, in their order; every other
    entry follows it; the library appears once."""
    # Paths that do not exist, with the runtimes' names: the dynamic loader skips them with a
    # warning, and the shell prints what it was given.
    given = ["/nonexistent/libfoo.so", "/nonexistent/libasan.so.8",
             "/nonexistent/libclang_rt.tsan-x86_64.so", str(shim),
             "/nonexistent/libjemalloc.so.2", "/nonexistent/libbar.so"]
    env = dict(os.environ, LD_PRELOAD=":".join(given), PRISTINE_LIB=str(shim),
               PRISTINE_BUILD_DIR=str(BUILD_DIR))
    proc = subprocess.run([str(RUN), "--", "/bin/sh", "-c", 'printf "%s\\n" "$LD_PRELOAD"'],
                          env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().split(":") == [given[1], given[2], given[4], str(shim), given[0],
                                              given[5]]


# --- valgrind ---------------------------------------------------------------------------------

def valgrind(tool, args, shim):
    if shutil.which("valgrind") is None:
        pytest.skip("valgrind is not installed (scripts/install-deps installs it)")
    proc = run(["valgrind", f"--tool={tool}", *args], preload=[shim], timeout=300)
    summary = re.search(r"ERROR SUMMARY: (\d+) errors", proc.stderr)
    assert summary, f"{proc.where}\n{proc.stderr}"
    return proc, int(summary.group(1))


@pytest.mark.parametrize("taint", TAINTS)
@pytest.mark.parametrize("tool", ["helgrind", "drd"])
def test_valgrind_race_detectors_see_no_race(shim, tool, taint):
    """helgrind and drd report nothing for creates from a tainted thread: the library tells them
    the ordering of its hand-off (valgrind's client requests, compiled in from valgrind's headers)."""
    proc, errors = valgrind(tool, [app("handoff_order"), taint, "8"], shim)
    assert errors == 0, f"{proc.where}\n{proc.stderr}"
    assert json.loads(proc.stdout)["creates"] == 8, proc.stdout


@pytest.mark.parametrize("tool", ["helgrind", "drd"])
def test_valgrind_race_detectors_still_see_a_real_race(shim, tool):
    """...and the ordering told is pthread_create's and no more."""
    proc, errors = valgrind(tool, [app("handoff_order"), "fs", "4", "race"], shim)
    assert errors > 0 and "Child" in proc.stderr, f"{proc.where}\n{proc.stderr}"


# --- memory limits ----------------------------------------------------------------------------

def test_address_space_limit_capacity_as_without_the_library(shim):
    """Under RLIMIT_AS = 512 MiB, a thread in another network namespace creates as many threads
    before EAGAIN as without the library (the library's own mappings, well under a MiB, do not cost
    one): it creates them itself, so no other thread gets a malloc arena (64 MiB of address space)
    on its behalf."""
    plain = result(run([app("as_limit"), "net", "512"]))
    under = result(run([app("as_limit"), "net", "512"], preload=[shim]))
    assert plain["rc"] == "EAGAIN" and plain["created"] > 20, plain
    assert under["rc"] == "EAGAIN" and under["rc_after"] == "0", under
    assert under["created"] == plain["created"], (under, plain)
    assert under["arenas"] == plain["arenas"], (under, plain)


def test_address_space_limit_forwarded(shim):
    """The same with a private fs_struct (forwarded creates): glibc's error at the limit, and a
    create succeeds again once threads are gone. Fewer threads fit than without the library
    (README, "Memory limits"): each thread a spare served holds a malloc arena, and the
    template's arena and stack take their share."""
    plain = result(run([app("as_limit"), "fs", "512"]))
    under = result(run([app("as_limit"), "fs", "512"], preload=[shim]))
    assert plain["rc"] == "EAGAIN", plain
    assert under["rc"] == "EAGAIN" and under["rc_after"] == "0", (under, plain)
    assert under["created"] >= 10, (under, plain)
