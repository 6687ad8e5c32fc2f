# SPDX-License-Identifier: Apache-2.0
"""The library inside other runtimes (README, "Allocators, sanitizers and race detectors"):
allocators that start threads while holding their own locks
(jemalloc; tcmalloc, which starts none), ThreadSanitizer and AddressSanitizer runtimes ahead of the
library or behind it, valgrind's race detectors (helgrind, drd), and an address-space limit.

Each case uses a thread with a private fs_struct (its creates are forwarded: a thread in the
baseline makes them) and a thread in another network namespace (its creates are made by the caller
and repaired by the new thread). Programs: testapps/allocator_threads, handoff_order (also compiled
here with -fsanitize=thread by gcc and clang, and -fsanitize=address by gcc) and as_limit.

A hang is a failure: each run has a timeout far above its healthy duration (well under a second,
a few seconds under valgrind). A missing Debian package fails its case (scripts/install-deps
test installs them all).
"""

import functools
import glob
import json
import os
import re

import pytest

from programs import PRISTINE_RUN, ROOT, app_path, need, parse_result, run, run_ok

pytestmark = pytest.mark.root

RUN = PRISTINE_RUN
TAINTS = ["fs", "net"]


def result(proc):
    """The program's one JSON line; fails on any other exit than 0."""
    assert proc.returncode == 0, proc.describe()
    return parse_result(proc)


def system_library(name):
    """A shared library of a Debian package, by file name."""
    for pattern in (f"/usr/lib/*-linux-gnu/{name}", f"/usr/lib/{name}", f"/lib/*-linux-gnu/{name}"):
        found = sorted(glob.glob(pattern))
        if found:
            return found[0]
    pytest.fail(f"{name} is not installed (scripts/install-deps test installs it)")


def compiler_runtime(compiler, name):
    """The runtime library `compiler` links for a sanitizer (e.g. g++, libtsan.so)."""
    out = run([compiler, f"-print-file-name={name}"])
    path = os.path.realpath(out.stdout.strip())
    if out.returncode != 0 or not os.path.isfile(path):
        pytest.fail(f"{compiler} has no {name} (scripts/install-deps test installs it)")
    return path


@pytest.fixture(scope="session")
def sanitized(tmp_path_factory):
    """sanitized(compiler, sanitizer) -> handoff_order built with -fsanitize=<sanitizer>."""
    out_dir = tmp_path_factory.mktemp("sanitized")

    @functools.lru_cache(maxsize=None)
    def build(compiler, sanitizer):
        need(compiler)
        binary = out_dir / f"handoff_order_{compiler.replace('+', 'x')}_{sanitizer}"
        cmd = [compiler, "-O1", "-g", f"-fsanitize={sanitizer}", "-o", str(binary),
               str(ROOT / "testapps" / "handoff_order.cc")]
        run_ok(cmd, timeout=300)
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
    proc = run([app_path("allocator_threads"), taint, mode], preload=preload, env=env)
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
    proc = run([RUN, "--", app_path("allocator_threads"), "net", "mallctl"], preload=[jemalloc],
               env={"PRISTINE_LIB": str(shim)}, build_dir=True)
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
    r = result(run([app_path("allocator_threads"), taint, "plain"], preload=preload))
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


@pytest.mark.build
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


@pytest.mark.build
@pytest.mark.parametrize("variant", ["gcc_library_first"])
def test_thread_sanitizer_still_sees_a_real_race(shim, sanitized, variant):
    """The ordering the library publishes (behind TSan; ahead of it TSan orders the create itself)
    is pthread_create's and no more: a write made by the creator after pthread_create returned,
    read by the new thread, is still reported."""
    binary, preload = tsan_case(variant, sanitized, shim)
    proc = run([binary, "fs", "6", "race"], preload=preload)
    assert "WARNING: ThreadSanitizer: data race" in proc.stderr, f"{proc.where}\n{proc.stderr}"
    assert "Child" in proc.stderr, proc.stderr


@pytest.mark.build
@pytest.mark.parametrize("taint", TAINTS)
def test_address_sanitizer_stays_first_under_pristine_run(shim, sanitized, taint):
    """pristine-run keeps an AddressSanitizer runtime already in LD_PRELOAD ahead of the library
    (ASan refuses to start otherwise), and forwarded creates work under it."""
    binary = sanitized("g++", "address")
    asan = compiler_runtime("g++", "libasan.so")
    proc = run([RUN, "--", binary, taint, "20"], preload=[asan], env={"PRISTINE_LIB": str(shim)},
               build_dir=True)
    assert "does not come first" not in proc.stderr, proc.stderr
    r = result(proc)
    assert r["creates"] == 20 and r["wrong_value"] == 0, (r, proc.where)
    assert r["child_wrong_fs"] == 0 and r["child_wrong_net"] == 0, (r, proc.where)


# --- valgrind ---------------------------------------------------------------------------------

def valgrind(tool, args, shim):
    need("valgrind")
    proc = run(["valgrind", f"--tool={tool}", *args], preload=[shim], timeout=300)
    summary = re.search(r"ERROR SUMMARY: (\d+) errors", proc.stderr)
    assert summary, proc.describe()
    return proc, int(summary.group(1))


@pytest.mark.slow
@pytest.mark.parametrize("taint", TAINTS)
@pytest.mark.parametrize("tool", ["helgrind", "drd"])
def test_valgrind_race_detectors_see_no_race(shim, tool, taint):
    """helgrind and drd report nothing for creates from a tainted thread: the library tells them
    the ordering of its hand-off (valgrind's client requests, compiled in from valgrind's headers)."""
    proc, errors = valgrind(tool, [app_path("handoff_order"), taint, "8"], shim)
    assert errors == 0, f"{proc.where}\n{proc.stderr}"
    assert json.loads(proc.stdout)["creates"] == 8, proc.stdout


@pytest.mark.slow
@pytest.mark.parametrize("tool", ["helgrind", "drd"])
def test_valgrind_race_detectors_still_see_a_real_race(shim, tool):
    """...and the ordering told is pthread_create's and no more. The race is the creator's write
    after pthread_create returned against the new thread's read: the tool reports it at whichever
    access comes second (in Child, or in Worker with the child's stack gone once it ended)."""
    proc, errors = valgrind(tool, [app_path("handoff_order"), "fs", "4", "race"], shim)
    assert errors > 0, f"{proc.where}\n{proc.stderr}"
    # The access reported is the program's own (its innermost frame), not the library's.
    assert re.search(r"at 0x[0-9A-Fa-f]+: (\(anonymous namespace\)::)?(Child|Worker)\(void\*\) "
                     r"\(handoff_order\.cc", proc.stderr), f"{proc.where}\n{proc.stderr}"


@pytest.mark.build
def test_valgrind_installed_after_a_build_is_compiled_in_at_the_next_configure(tmp_path):
    """A library configured before valgrind's headers were there (pristine-run's build on a fresh
    machine, then scripts/test installs valgrind) gets its client requests at the next configure:
    the header is looked for at every configure while it is missing, and its presence is a
    compile definition, so every object is rebuilt with it."""
    need("valgrind", "cmake")
    build = tmp_path / "build"
    flags = build / "shim" / "CMakeFiles" / "pristine.dir" / "flags.make"
    run_ok(["cmake", "-S", ROOT, "-B", build, "-DVALGRIND_INCLUDE_DIR=VALGRIND_INCLUDE_DIR-NOTFOUND"],
           timeout=300)
    assert "PRISTINE_HAVE_VALGRIND" not in flags.read_text()  # as if valgrind were missing
    run_ok(["cmake", "-S", ROOT, "-B", build], timeout=300)
    assert "-DPRISTINE_HAVE_VALGRIND" in flags.read_text()


# --- memory limits ----------------------------------------------------------------------------

def test_address_space_limit_capacity_as_without_the_library(shim):
    """Under RLIMIT_AS = 512 MiB, a thread in another network namespace creates as many threads
    before EAGAIN as without the library (the library's own mappings, well under a MiB, do not cost
    one): it creates them itself, so no other thread gets a malloc arena (64 MiB of address space)
    on its behalf."""
    plain = result(run([app_path("as_limit"), "net", "512"]))
    under = result(run([app_path("as_limit"), "net", "512"], preload=[shim]))
    assert plain["rc"] == "EAGAIN" and plain["created"] > 20, plain
    assert under["rc"] == "EAGAIN" and under["rc_after"] == "0", under
    assert under["created"] == plain["created"], (under, plain)
    assert under["arenas"] == plain["arenas"], (under, plain)


def test_address_space_limit_forwarded(shim):
    """The same with a private fs_struct (forwarded creates): glibc's error at the limit, and a
    create succeeds again once threads are gone. Fewer threads fit than without the library
    (README, "Memory limits"): each thread a spare served holds a malloc arena, and the
    template's arena and stack take their share."""
    plain = result(run([app_path("as_limit"), "fs", "512"]))
    under = result(run([app_path("as_limit"), "fs", "512"], preload=[shim]))
    assert plain["rc"] == "EAGAIN", plain
    assert under["rc"] == "EAGAIN" and under["rc_after"] == "0", (under, plain)
    assert under["created"] >= 10, (under, plain)
