# SPDX-License-Identifier: Apache-2.0
"""Changes made through a handle of libc itself (issue 11 item 5).

`ctypes.CDLL("libc.so.6").unshare(...)`, JNA's `Native.load("libc.so.6")`, or any
`dlsym(dlopen("libc.so.6"), "setns")` searches the handle's own scope, which the preloaded library
is not part of: without the library's dlsym/dlvsym the change goes past it, and every thread the
caller starts afterwards inherits it. Checked here:
  * CPython: a ThreadPoolExecutor started from a thread that unshared (or setns'd into) a network
    namespace through ctypes.CDLL("libc.so.6"): without the library every worker is in the
    caller's namespace (proof the case is real); with it, every worker is in the baseline's;
  * build/testapps/dlsym_libc: setns, unshare, syscall(SYS_unshare), sched_setaffinity, dlvsym and
    pthread_create looked up through dlopen("libc.so.6") and dlopen("libpthread.so.0"); which
    module answers each kind of lookup (compat versions with another ABI stay libc's; a
    program's own symbols and missing names are answered as by glibc; RTLD_DEFAULT and RTLD_NEXT
    unchanged);
  * a second preloaded interposer (libnext_interposer.so) whose dlsym(RTLD_NEXT, "unshare") must
    find the definition after itself, on either side of the library; two copies of the library;
  * programs built with AddressSanitizer and ThreadSanitizer, whose runtimes look functions up
    with dlsym(RTLD_NEXT) before any constructor of the library has run;
  * the JVM with JNA (Debian's libjna-java);
  * the library binds nothing more at start for this: no relocation names dlsym or dlvsym.
"""

import json
import os
import pathlib
import shutil
import subprocess

import pytest

from conftest import SHIM
from issue3_helpers import APPS, run_app, run_cmd

PYTHON = "/usr/bin/python3"

PY_POOL = r"""
import ctypes, json, os, sys, threading
from concurrent.futures import ThreadPoolExecutor
CLONE_NEWNET = 0x40000000
change, lib = sys.argv[1], sys.argv[2]
libc = ctypes.CDLL(None if lib == "none" else lib, use_errno=True)
def ns():
    return os.stat("/proc/thread-self/ns/net").st_ino
res = {"baseline": ns()}
target = {}
def make_netns():
    # A network namespace to setns into, made on a helper thread that then exits.
    if ctypes.CDLL(None).unshare(CLONE_NEWNET) != 0:
        raise OSError("unshare")
    target["fd"] = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
def tainted():
    if change == "setns":
        rc = libc.setns(target["fd"], CLONE_NEWNET)
    else:
        rc = libc.unshare(CLONE_NEWNET)
    if rc != 0:
        res["error"] = os.strerror(ctypes.get_errno())
        return
    res["caller"] = ns()
    barrier = threading.Barrier(8)
    def work(_):
        barrier.wait()  # eight workers exist at once
        return ns()
    with ThreadPoolExecutor(max_workers=8) as ex:
        res["workers"] = list(ex.map(work, range(8)))
if change == "setns":
    h = threading.Thread(target=make_netns)
    h.start()
    h.join()
t = threading.Thread(target=tainted)
t.start()
t.join()
print(json.dumps(res))
"""


def run_python_pool(change, lib, shim):
    r = run_cmd([PYTHON, "-c", PY_POOL, change, lib], shim=shim)
    assert r.returncode == 0, r.describe()
    res = json.loads(r.stdout)
    if "error" in res:
        pytest.fail(f"{change} through {lib} failed: {res['error']}\n{r.describe()}")
    assert res["caller"] != res["baseline"], r.describe()
    return res, r


@pytest.mark.parametrize("change", ["unshare", "setns"])
def test_python_pool_after_change_through_libc_handle(change):
    plain, _ = run_python_pool(change, "libc.so.6", False)
    assert plain["workers"] == [plain["caller"]] * 8, plain  # glibc: every worker leaks
    res, r = run_python_pool(change, "libc.so.6", True)
    assert res["workers"] == [res["baseline"]] * 8, (res, r.describe())


def test_python_pool_after_change_through_process_handle():
    # CDLL(None) searches the global scope, where the library comes first: as before.
    res, r = run_python_pool("unshare", "none", True)
    assert res["workers"] == [res["baseline"]] * 8, (res, r.describe())


CHANGES = ["unshare", "setns", "syscall", "sched_setaffinity", "dlvsym_unshare", "pthread_create"]


def child_state(j):
    """What the child inherited: 'baseline', 'caller' or something else."""
    if j["caller_net"] != j["baseline_net"]:
        got = j["child_net"]
        base, caller = j["baseline_net"], j["caller_net"]
    else:
        got = j["child_cpus"]
        base, caller = j["baseline_cpus"], j["caller_cpus"]
    assert base != caller, j
    return "baseline" if got == base else "caller" if got == caller else f"other ({got})"


@pytest.mark.parametrize("handle", ["libc", "libpthread"])
@pytest.mark.parametrize("change", CHANGES)
def test_change_through_handle_is_seen(change, handle):
    plain = run_app("dlsym_libc", ["--change", change, "--handle", handle])
    assert child_state(plain.json) == "caller", plain.describe()  # glibc: the child inherits
    r = run_app("dlsym_libc", ["--change", change, "--handle", handle], shim=True)
    assert child_state(r.json) == "baseline", r.describe()


def test_which_module_answers():
    r = run_app("dlsym_libc", ["--change", "unshare"], shim=True)
    lk = r.json["lookups"]
    plain = run_app("dlsym_libc", ["--change", "unshare"]).json["lookups"]
    # libc's default definitions of the names the library interposes: the library's.
    for name in ("unshare", "setns", "syscall", "sched_setaffinity", "pthread_create",
                 "timer_create", "dlsym", "dlvsym", "unshare@version"):
        assert plain[f"libc:{name}"] == "libc.so.6", plain
        assert lk[f"libc:{name}"] == "libpristine.so", (name, r.describe())
    # Everything else as glibc answers it.
    assert lk["libc:printf"] == "libc.so.6"
    for compat in ("sched_setaffinity@GLIBC_2.3.3", "timer_create@GLIBC_2.2.5"):
        # Another ABI: never the library's entry point (null where the version does not exist).
        assert lk[f"libc:{compat}"] == plain[f"libc:{compat}"], (compat, r.describe())
        assert lk[f"libc:{compat}"] in ("libc.so.6", None)
    assert lk["self:own_function"] == "main" and lk["self:own_function_is_it"] is True
    assert lk["libc:missing"] is None and lk["libc:missing_dlerror"] is True
    for key in ("default:unshare", "next:unshare", "self:unshare"):
        assert lk[key] == "libpristine.so", (key, r.describe())


def test_rtld_next_from_a_second_interposer():
    lib = APPS / "libnext_interposer.so"
    assert lib.exists(), f"{lib} is not built"
    # After the library: the interposer's next is libc's, and the library's unshare reaches it.
    r = run_app("dlsym_libc", ["--change", "unshare"],
                env={"LD_PRELOAD": f"{SHIM} {lib}"})
    j = r.json
    assert j["interposer_next"] == "libc.so.6", r.describe()
    assert j["interposer_calls"] == 1, r.describe()
    assert child_state(j) == "baseline", r.describe()
    # Before the library: the interposer's next is the library.
    r = run_app("dlsym_libc", ["--change", "unshare"],
                env={"LD_PRELOAD": f"{lib} {SHIM}"})
    j = r.json
    assert j["interposer_next"] == "libpristine.so", r.describe()
    assert child_state(j) == "baseline", r.describe()


@pytest.mark.parametrize("order", ["first", "second"])
def test_two_copies_of_the_library(tmp_path, order):
    # The copy that comes first answers lookups through a libc handle with its own entry points;
    # the other one (which stands aside) passes them on unchanged instead of answering with its
    # own, which would let the change past the active copy.
    copy = tmp_path / "copy" / "libpristine.so"
    copy.parent.mkdir()
    shutil.copy(SHIM, copy)
    libs = [str(SHIM), str(copy)] if order == "first" else [str(copy), str(SHIM)]
    r = run_app("dlsym_libc", ["--change", "unshare"], env={"LD_PRELOAD": " ".join(libs)})
    assert child_state(r.json) == "baseline", r.describe()
    assert r.json["lookups"]["libc:unshare"] == "libpristine.so", r.describe()


SANITIZED_CHECK = r"""
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>
static void* Nothing(void*) { return nullptr; }
int main() {
  void* libc = dlopen("libc.so.6", RTLD_NOW);
  auto create = reinterpret_cast<int (*)(pthread_t*, const pthread_attr_t*, void* (*)(void*),
                                         void*)>(dlsym(libc, "pthread_create"));
  auto get_pid = reinterpret_cast<pid_t (*)()>(dlsym(libc, "getpid"));
  pthread_t t;
  if (pthread_create(&t, nullptr, Nothing, nullptr) != 0 || pthread_join(t, nullptr) != 0) return 1;
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(create), &info) == 0) return 2;
  printf("{\"create_module\": \"%s\", \"getpid_ok\": %s, \"next_malloc\": %s}\n",
         info.dli_fname, get_pid() == getpid() ? "true" : "false",
         dlsym(RTLD_NEXT, "malloc") != nullptr ? "true" : "false");
  return 0;
}
"""


def build_sanitized(tmp_path, source, sanitizer, name):
    clang = shutil.which("clang++")
    if clang is None:
        pytest.skip("clang++ is not installed (scripts/install-deps installs it)")
    out = tmp_path / name
    c = subprocess.run([clang, "-std=c++17", "-g", "-O1", f"-fsanitize={sanitizer}", "-rdynamic",
                        f"-I{pathlib.Path(__file__).resolve().parent.parent / 'testapps'}",
                        str(source), "-o", str(out), "-ldl", "-lpthread"],
                       capture_output=True, text=True, timeout=300)
    assert c.returncode == 0, c.stderr
    return out


@pytest.mark.parametrize("sanitizer", ["address", "thread"])
def test_sanitizer_runtime_starts_through_the_library_dlsym(tmp_path, sanitizer):
    # The sanitizer runtime resolves its interceptors with dlsym(RTLD_NEXT) from its own
    # initialisation, before the library's constructors: the first lookup of the process.
    src = tmp_path / "check.cc"
    src.write_text(SANITIZED_CHECK)
    exe = build_sanitized(tmp_path, src, sanitizer, f"check-{sanitizer}")
    plain = run_cmd([exe])
    if plain.returncode != 0:
        # Not the library: the sanitizer's runtime does not start on this machine at all
        # (e.g. TSan with a kernel's larger address-space randomisation).
        pytest.skip(f"a {sanitizer} program does not run here without the library either\n"
                    f"{plain.describe()}")
    r = run_cmd([exe], shim=True)
    assert r.returncode == 0, r.describe()
    j = json.loads(r.stdout)
    assert pathlib.Path(j["create_module"]).name == "libpristine.so", r.describe()
    assert j["getpid_ok"] is True and j["next_malloc"] is True, r.describe()


def test_asan_program_change_through_handle_is_seen(tmp_path):
    src = pathlib.Path(__file__).resolve().parent.parent / "testapps" / "dlsym_libc.cc"
    exe = build_sanitized(tmp_path, src, "address", "dlsym_libc")
    plain = run_cmd([exe, "--change", "unshare"])
    assert plain.returncode == 0, plain.describe()
    assert child_state(json.loads(plain.stdout)) == "caller", plain.describe()
    r = run_cmd([exe, "--change", "unshare"], shim=True)
    assert r.returncode == 0, r.describe()
    assert child_state(json.loads(r.stdout)) == "baseline", r.describe()


JNA_SRC = r"""
import com.sun.jna.Library;
import com.sun.jna.Native;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.*;

public class JnaNetns {
  public interface C extends Library { int unshare(int flags); }

  static String ns() throws Exception {
    return Files.readSymbolicLink(Paths.get("/proc/thread-self/ns/net")).toString();
  }

  public static void main(String[] args) throws Exception {
    C c = Native.load(args[0], C.class);
    String baseline = ns();
    String[] caller = new String[1];
    List<String> workers = new ArrayList<>();
    Thread t = new Thread(() -> {
      try {
        if (c.unshare(0x40000000) != 0) throw new RuntimeException("unshare failed");
        caller[0] = ns();
        ExecutorService pool = Executors.newFixedThreadPool(4);
        CyclicBarrier barrier = new CyclicBarrier(4);
        List<Future<String>> fs = new ArrayList<>();
        for (int i = 0; i < 4; i++) fs.add(pool.submit(() -> { barrier.await(); return ns(); }));
        for (Future<String> f : fs) workers.add(f.get());
        pool.shutdown();
      } catch (Exception e) {
        throw new RuntimeException(e);
      }
    });
    t.start();
    t.join();
    StringBuilder sb = new StringBuilder("{\"baseline\": \"" + baseline + "\", \"caller\": \""
                                         + caller[0] + "\", \"workers\": [");
    for (int i = 0; i < workers.size(); i++) {
      sb.append(i > 0 ? ", " : "").append('"').append(workers.get(i)).append('"');
    }
    System.out.println(sb.append("]}"));
  }
}
"""

JNA_JAR = pathlib.Path("/usr/share/java/jna.jar")


@pytest.fixture(scope="module")
def jna_program(tmp_path_factory):
    javac, java = shutil.which("javac"), shutil.which("java")
    if javac is None or java is None or not JNA_JAR.exists():
        pytest.skip("the JDK or libjna-java is not installed (scripts/install-deps installs them)")
    d = tmp_path_factory.mktemp("jna")
    (d / "JnaNetns.java").write_text(JNA_SRC)
    c = subprocess.run([javac, "-cp", str(JNA_JAR), "JnaNetns.java"], cwd=d, capture_output=True,
                       text=True, timeout=300)
    assert c.returncode == 0, c.stderr
    return [java, "-cp", f"{JNA_JAR}{os.pathsep}{d}", "JnaNetns"]


def test_jvm_jna_pool_after_unshare_through_libc(jna_program):
    plain = run_cmd([*jna_program, "libc.so.6"], timeout=300)
    assert plain.returncode == 0, plain.describe()
    p = json.loads(plain.stdout.splitlines()[-1])
    assert p["caller"] != p["baseline"] and p["workers"] == [p["caller"]] * 4, p
    r = run_cmd([*jna_program, "libc.so.6"], shim=True, timeout=300)
    assert r.returncode == 0, r.describe()
    s = json.loads(r.stdout.splitlines()[-1])
    assert s["caller"] != s["baseline"], s
    assert s["workers"] == [s["baseline"]] * 4, (s, r.describe())


def test_no_start_up_binding_for_dlsym():
    # The library's own lookups call libc's dlsym directly: a relocation against dlsym or dlvsym
    # would be a symbol bound at every process start (and a call back into the wrapper).
    if shutil.which("readelf") is None:
        pytest.skip("readelf is not installed")
    out = subprocess.run(["readelf", "-rW", str(SHIM)], capture_output=True, text=True,
                         check=True).stdout
    bound = [line for line in out.splitlines() if " dlsym" in line or " dlvsym" in line]
    assert bound == [], bound
