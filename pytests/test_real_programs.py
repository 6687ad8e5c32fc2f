# SPDX-License-Identifier: Apache-2.0
"""Unmodified real programs under the shim (LD_PRELOAD=build/shim/libpristine.so): they work as
without it, and a tainted create inside them is fixed where the program can make one (CPython).

Programs: CPython (/usr/bin/python3, ctypes unshare(CLONE_NEWNET) on a thread that then starts a
threading.Thread), the JVM (a small program compiled with javac here), Node.js worker_threads,
stress-ng thread stressors and `xz -T2` (util-linux `unshare` and `nsenter` are
test_single_threaded_changes.py's). A missing program fails its test (scripts/install-deps test
installs them all).
"""

import json

import pytest

import programs
from programs import need

pytestmark = [pytest.mark.root, pytest.mark.slow]

TIMEOUT_S = 300  # generous: a hang is a failure, never a slow run


def run(cmd, shim_path=None, options=None, input_bytes=None, cwd=None):
    return programs.run(cmd, shim=shim_path is not None, options=options, input=input_bytes,
                        binary=input_bytes is not None, cwd=cwd, timeout=TIMEOUT_S)


def no_shim_complaints(stderr):
    """The shim says nothing on stderr for a program that does nothing unusual."""
    text = stderr if isinstance(stderr, str) else stderr.decode(errors="replace")
    assert "pristine:" not in text, text


# ---------------------------------------------------------------------------------------------
# CPython

PY_NETNS = r"""
import ctypes, json, os, threading
libc = ctypes.CDLL(None, use_errno=True)
res = {"main": os.readlink("/proc/thread-self/ns/net")}
def worker():
    res["unshare"] = libc.unshare(0x40000000)  # CLONE_NEWNET, this thread only
    res["errno"] = ctypes.get_errno()
    res["worker"] = os.readlink("/proc/thread-self/ns/net")
    out = {}
    def child():
        out["child"] = os.readlink("/proc/thread-self/ns/net")
    t = threading.Thread(target=child)
    t.start()
    t.join()
    res["child"] = out["child"]
t = threading.Thread(target=worker)
t.start()
t.join()
print(json.dumps(res))
"""


def test_cpython_thread_started_from_netns_thread_gets_baseline(shim):
    plain = run(["/usr/bin/python3", "-c", PY_NETNS])
    assert plain.returncode == 0, plain.stderr
    p = json.loads(plain.stdout)
    if p["unshare"] != 0:
        pytest.skip(f"unshare(CLONE_NEWNET) not permitted here (errno {p['errno']})")
    assert p["worker"] != p["main"] and p["child"] == p["worker"], p  # glibc: the taint leaks

    r = run(["/usr/bin/python3", "-c", PY_NETNS], shim)
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["unshare"] == 0, s
    assert s["worker"] != s["main"], s       # the worker itself did enter the new netns
    assert s["child"] == s["main"], s        # its threading.Thread got the baseline


PY_WORKLOAD = r"""
import concurrent.futures, hashlib, json, queue, subprocess, threading
def h(i):
    return hashlib.sha256(str(i).encode() * 1000).hexdigest()
with concurrent.futures.ThreadPoolExecutor(8) as ex:
    digests = list(ex.map(h, range(400)))
q = queue.Queue()
ts = [threading.Thread(target=lambda n=n: q.put(sum(range(n * 1000)))) for n in range(32)]
for t in ts: t.start()
for t in ts: t.join()
total = sum(q.get() for _ in range(32))
out = subprocess.run(["/bin/echo", "spawned"], capture_output=True, text=True).stdout.strip()
print(json.dumps({"digest": hashlib.sha256("".join(digests).encode()).hexdigest(),
                  "total": total, "sub": out}))
"""


def test_cpython_threads_pools_and_subprocess_work(shim):
    plain = run(["/usr/bin/python3", "-c", PY_WORKLOAD])
    r = run(["/usr/bin/python3", "-c", PY_WORKLOAD], shim)
    assert plain.returncode == 0, plain.stderr
    assert r.returncode == 0, r.stderr
    assert r.stdout == plain.stdout
    no_shim_complaints(r.stderr)


# ---------------------------------------------------------------------------------------------
# JVM

JAVA_SRC = r"""
import java.util.*;
import java.util.concurrent.*;
import java.util.concurrent.atomic.*;

public class Threads {
    public static void main(String[] args) throws Exception {
        AtomicLong sum = new AtomicLong();
        List<Thread> ts = new ArrayList<>();
        for (int i = 0; i < 16; i++) {
            final int n = i;
            Thread t = new Thread(() -> { long s = 0; for (int k = 0; k <= n * 10000; k++) s += k; sum.addAndGet(s); });
            t.start();
            ts.add(t);
        }
        for (Thread t : ts) t.join();
        ExecutorService ex = Executors.newFixedThreadPool(4);
        List<Future<Integer>> fs = new ArrayList<>();
        for (int i = 0; i < 100; i++) { final int n = i; fs.add(ex.submit(() -> n * n)); }
        long squares = 0;
        for (Future<Integer> f : fs) squares += f.get();
        ex.shutdown();
        ex.awaitTermination(60, TimeUnit.SECONDS);
        long par = java.util.stream.LongStream.rangeClosed(1, 2_000_000).parallel().sum();
        System.out.println(sum.get() + " " + squares + " " + par);
    }
}
"""


@pytest.mark.build
def test_jvm_threads_work(shim, tmp_path):
    need("javac")
    java = need("java")
    (tmp_path / "Threads.java").write_text(JAVA_SRC)
    c = run(["javac", "Threads.java"], cwd=tmp_path)
    assert c.returncode == 0, c.stderr
    plain = run([java, "-cp", str(tmp_path), "Threads"])
    r = run([java, "-cp", str(tmp_path), "Threads"], shim)
    assert plain.returncode == 0, plain.stderr
    assert r.returncode == 0, r.stderr
    assert r.stdout == plain.stdout
    assert r.stdout.split()[1] == str(sum(n * n for n in range(100)))


# ---------------------------------------------------------------------------------------------
# Node.js

NODE_SRC = r"""
const { Worker, isMainThread, parentPort, workerData } = require('worker_threads');
if (isMainThread) {
  const n = 6;
  let done = 0, total = 0;
  for (let i = 0; i < n; i++) {
    const w = new Worker(__filename, { workerData: i });
    w.on('message', (v) => { total += v; });
    w.on('error', (e) => { console.error(e); process.exit(1); });
    w.on('exit', (code) => {
      if (code !== 0) process.exit(1);
      if (++done === n) console.log('total', total);
    });
  }
} else {
  let s = 0;
  for (let k = 0; k <= (workerData + 1) * 100000; k++) s += k;
  parentPort.postMessage(s);
}
"""


def test_node_worker_threads_work(shim, tmp_path):
    node = need("node")
    script = tmp_path / "workers.js"
    script.write_text(NODE_SRC)
    plain = run([node, str(script)])
    r = run([node, str(script)], shim)
    assert plain.returncode == 0, plain.stderr
    assert r.returncode == 0, r.stderr
    assert r.stdout == plain.stdout and r.stdout.startswith("total ")


# ---------------------------------------------------------------------------------------------
# stress-ng and xz

@pytest.mark.parametrize("stressor", [["--pthread", "2", "--pthread-ops", "3000"],
                                      ["--pthread", "2", "--pthread-ops", "1000",
                                       "--pthread-max", "64"]])
def test_stress_ng_thread_stressors(shim, stressor):
    sng = need("stress-ng")
    cmd = [sng, *stressor, "--timeout", "60s", "--metrics-brief"]
    r = run(cmd, shim)
    assert r.returncode == 0, f"{r.stdout}\n{r.stderr}"
    out = r.stdout + r.stderr
    assert "successful run completed" in out or "passed: 2" in out, out


def test_xz_multithreaded_output_identical(shim, tmp_path):
    xz = need("xz")
    # ~12 MiB of compressible but varied data: enough blocks for two threads.
    chunks = []
    for i in range(200000):
        chunks.append(f"{i:08d} {i * 2654435761 % 4294967296:010d} pristine\n")
    data = "".join(chunks).encode()
    plain = run([xz, "-T2", "-1", "--block-size=1MiB", "-c"], input_bytes=data)
    r = run([xz, "-T2", "-1", "--block-size=1MiB", "-c"], shim, input_bytes=data)
    assert plain.returncode == 0 and r.returncode == 0, r.stderr
    assert r.stdout == plain.stdout
    back = run([xz, "-d", "-T2", "-c"], shim, input_bytes=r.stdout)
    assert back.returncode == 0 and back.stdout == data
