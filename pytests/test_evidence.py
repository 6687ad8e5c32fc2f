# SPDX-License-Identifier: Apache-2.0
"""Evidence that leads to the bug: reports kept current while a process runs, where taints came
from, file and line, reports that say what produced them, the files the library writes, the log,
pristine-report and pristine-scan. Programs: build/testapps/evidence (see its header) and the
probe."""

import json
import os
import pathlib
import re
import shutil
import signal
import stat
import subprocess
import time

import pytest

from conftest import BUILD_DIR, PROBE, ROOT, SHIM, clean_env

EVIDENCE = BUILD_DIR / "testapps" / "evidence"
FAKE_UNWIND = BUILD_DIR / "testapps" / "libfake_unwind.so"
REPORT_TOOL = ROOT / "scripts" / "pristine-report"
SCAN = BUILD_DIR / "tools" / "pristine-scan"
SOURCE = ROOT / "testapps" / "evidence.cc"
TIMEOUT = 60


@pytest.fixture(autouse=True)
def _built():
    for f in (SHIM, EVIDENCE):
        if not f.exists():
            pytest.fail(f"{f} is not built (cmake --build build)")


def site_lines():
    """Source lines of SITE-1..3 in testapps/evidence.cc."""
    lines = {}
    for n, text in enumerate(SOURCE.read_text().splitlines(), 1):
        m = re.search(r"// (SITE-\d)$", text)
        if m:
            lines[m.group(1)] = n
    assert len(lines) == 3, lines
    return lines


def run(args, options, *, env=None, check=True, **kw):
    proc = subprocess.run([str(a) for a in args], env=clean_env(True, options, env),
                          capture_output=True, text=True, timeout=TIMEOUT, cwd=ROOT, **kw)
    if check:
        assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr)
    return proc


def start(args, options, env=None):
    """Starts a --hold program and waits for its "ready"."""
    p = subprocess.Popen([str(a) for a in args], env=clean_env(True, options, env),
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, cwd=ROOT)
    line = p.stdout.readline()
    assert line.strip() == "ready", (line, p.stderr.read() if p.poll() is not None else "")
    return p


def pristine_report(*args, input=None):
    return subprocess.run(["/usr/bin/python3", str(REPORT_TOOL), *[str(a) for a in args]],
                          capture_output=True, text=True, timeout=TIMEOUT, input=input,
                          env=dict(os.environ, PRISTINE_BUILD_DIR=str(BUILD_DIR)))


def symbolized(*paths, extra=()):
    out = pristine_report("--json", *extra, *paths)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def frame_names(frames):
    return [s.get("function") or "" for f in frames for s in f.get("symbols", [])]


def frame_lines(frames, file_name):
    return {s.get("line") for f in frames for s in f.get("symbols", [])
            if (s.get("file") or "").endswith(file_name)}


def only_report(tmp_path):
    files = [p for p in tmp_path.iterdir() if p.name.startswith("r.")]
    assert len(files) == 1, sorted(p.name for p in tmp_path.iterdir())
    return files[0]


# --- Reports kept up to date ------------------------------------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_killed_daemon_leaves_a_report_naming_its_sites(tmp_path, sig):
    p = start([EVIDENCE, "three-sites", "--hold"], f"report={tmp_path}/r.%p.json")
    p.send_signal(sig)
    p.wait(timeout=TIMEOUT)
    assert p.returncode == -sig
    report = tmp_path / f"r.{p.pid}.json"
    assert report.exists(), os.listdir(tmp_path)
    doc = json.loads(report.read_text())
    assert doc["final"] is False and doc["pid"] == p.pid, doc
    assert len(doc["sites"]) == 3, doc
    merged = symbolized(report)
    for site in merged["sites"]:
        assert any("SpawnThree" in n for n in frame_names(site["frames"])), site
    # Nothing but the report is left in the directory (no temporary file).
    assert [x.name for x in tmp_path.iterdir()] == [report.name]


def test_report_counts_a_create_whose_thread_exits_the_process_at_once(tmp_path):
    """The created thread (SCHED_FIFO, same CPU) calls exit() before the create can return: the
    report written by that exit() still counts the forwarded create."""
    taskset = shutil.which("taskset")
    if taskset is None:
        pytest.fail("taskset (util-linux) is missing")
    run([taskset, "-c", "0", EVIDENCE, "exit-race", "--fs"], f"report={tmp_path}/r.%p.json")
    doc = json.loads(only_report(tmp_path).read_text())
    assert doc["forwarded"] == 1 and doc["tainted"] == 1, doc
    assert doc["decisions"]["forwarded"] == 1, doc
    [site] = doc["sites"]
    assert site["count"] == 1 and site["decision"] == "forwarded", site


# --- Where the taint came from ------------------------------------------------------------------

def test_report_names_the_origin_of_the_taint(tmp_path):
    run([EVIDENCE, "three-sites"], f"report={tmp_path}/r.%p.json")
    report = only_report(tmp_path)
    doc = json.loads(report.read_text())
    for site in doc["sites"]:
        [origin] = site["origins"]
        assert origin["dimensions"] == ["net"] and origin["call"] == "unshare", origin
        assert origin["tid"] == site["thread"]["tid"], site
        ns = site["namespaces"]["net"]
        assert ns["thread"] != ns["baseline"] and ns["baseline"] is not None, ns
        assert site["thread"]["name"] == "evidence", site
    merged = symbolized(report)
    for site in merged["sites"]:
        [origin] = site["origins"]
        names = frame_names(origin["frames"])
        assert any("EnterNetns" in n for n in names), names
    text = pristine_report(report).stdout
    assert "net changed by unshare" in text and "EnterNetns" in text, text


# --- File and line ------------------------------------------------------------------------------

def test_three_sites_in_one_optimised_function_get_three_lines(tmp_path):
    run([EVIDENCE, "three-sites"], f"report={tmp_path}/r.%p.json")
    merged = symbolized(only_report(tmp_path))
    assert len(merged["sites"]) == 3, merged
    found = set()
    for site in merged["sites"]:
        lines = frame_lines(site["frames"], "evidence.cc")
        found |= lines & set(site_lines().values())
    assert found == set(site_lines().values()), (found, site_lines())


def test_stripped_binary_is_symbolized_from_its_build_id_debug_file(tmp_path):
    """The debug file is found where Debian puts it, /usr/lib/debug/.build-id/xx/yyyy.debug (a
    private mount namespace puts a scratch directory there)."""
    work = tmp_path / "work"
    work.mkdir()
    binary = work / "evidence-stripped"
    debug = work / "evidence.debug"
    subprocess.run(["objcopy", "--only-keep-debug", str(EVIDENCE), str(debug)], check=True)
    subprocess.run(["strip", "--strip-all", "-o", str(binary), str(EVIDENCE)], check=True)
    run([binary, "three-sites"], f"report={tmp_path}/r.%p.json")
    report = only_report(tmp_path)
    doc = json.loads(report.read_text())
    [build_id] = {f["build_id"] for s in doc["sites"] for f in s["frames"]
                  if f["module"] == str(binary)}
    assert build_id, doc
    # Without the debug file: no name for the program's static functions.
    bare = symbolized(report, extra=["--debug-dir", str(tmp_path / "none")])
    assert not any("SpawnThree" in n for s in bare["sites"] for n in frame_names(s["frames"]))
    ids = tmp_path / "debug" / ".build-id" / build_id[:2]
    ids.mkdir(parents=True)
    shutil.copy(debug, ids / f"{build_id[2:]}.debug")
    script = (f"mount --bind {tmp_path / 'debug' / '.build-id'} /usr/lib/debug/.build-id && "
              f"exec /usr/bin/python3 {REPORT_TOOL} --json {report}")
    if not pathlib.Path("/usr/lib/debug/.build-id").is_dir():
        pytest.fail("/usr/lib/debug/.build-id does not exist on this machine")
    out = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                         capture_output=True, text=True, timeout=TIMEOUT,
                         env=dict(os.environ, PRISTINE_BUILD_DIR=str(BUILD_DIR)))
    assert out.returncode == 0, out.stderr
    merged = json.loads(out.stdout)
    found = set()
    for site in merged["sites"]:
        assert any("SpawnThree" in n for n in frame_names(site["frames"])), site
        found |= frame_lines(site["frames"], "evidence.cc")
    assert set(site_lines().values()) <= found, found


def test_log_line_names_the_first_frame_in_the_program_demangled(tmp_path):
    log = tmp_path / "log"
    run([EVIDENCE, "three-sites"], f"log={log}")
    lines = [x for x in log.read_text().splitlines() if "new call site" in x]
    assert len(lines) == 3, lines
    for line in lines:
        assert "created at (anonymous namespace)::SpawnThree()" in line, line
        assert "net changed by unshare at (anonymous namespace)::EnterNetns()" in line, line
        assert "libstdc++" not in line, line


# --- What produced the report, and when there is one --------------------------------------------

def test_report_says_what_produced_it(tmp_path):
    options = f"report={tmp_path}/r.%p.json:affinity=inherit"
    proc = run([PROBE, "--taint", "net", "--exit-normally"], options)
    pid = json.loads(proc.stdout)["pid"]
    doc = json.loads((tmp_path / f"r.{pid}.json").read_text())
    assert doc["schema"] == 2 and isinstance(doc["version"], str) and doc["version"], doc
    assert doc["pid"] == pid and doc["ppid"] == os.getpid(), doc
    assert pathlib.Path(doc["exe"]).resolve() == PROBE.resolve(), doc
    assert doc["argv"] == [str(PROBE), "--taint", "net", "--exit-normally"], doc
    assert doc["options"]["raw"] == options, doc
    assert doc["options"]["mode"] == "enforce" and doc["options"]["verify"] == "fast", doc
    assert doc["options"]["policy"]["affinity"] == "inherit", doc
    assert doc["options"]["policy"]["net"] == "isolate", doc
    assert doc["final"] is True, doc


def test_no_report_from_a_process_that_did_nothing_unless_asked(tmp_path):
    run(["/bin/sh", "-c", "/bin/true; /bin/true"], f"report={tmp_path}/r.%p.json")
    assert list(tmp_path.iterdir()) == []
    proc = run(["/bin/true"], f"report={tmp_path}/r.%p.json:report_empty=1")
    docs = [json.loads(p.read_text()) for p in tmp_path.iterdir()]
    assert len(docs) == 1 and docs[0]["created"] == 0 and docs[0]["sites"] == [], docs
    assert proc.stderr == ""


# --- The files the library writes ----------------------------------------------------------------

@pytest.mark.parametrize("plant", ["symlink", "fifo"])
def test_planted_temporary_name_is_neither_followed_nor_opened(tmp_path, plant):
    """As pid 1 of a new pid namespace the program's pid is known in advance: whatever is planted
    at PATH.tmp.1 (the old temporary name) is left alone, and the report is written."""
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    out = tmp_path / "out"
    out.mkdir()
    planted = out / "r.json.tmp.1"
    if plant == "symlink":
        planted.symlink_to(victim)
    else:
        os.mkfifo(planted)
    proc = subprocess.run(["unshare", "--pid", "--fork", "--kill-child", "env", f"LD_PRELOAD={SHIM}",
                           f"PRISTINE_OPTIONS=report={out}/r.json", str(PROBE), "--taint", "fs",
                           "--exit-normally"], env=clean_env(), capture_output=True, text=True,
                          timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    assert victim.read_text() == "precious\n"
    report = out / "r.json"
    assert json.loads(report.read_text())["tainted"] == 1
    assert stat.S_IMODE(report.stat().st_mode) == 0o600


def test_fifo_at_the_report_path_does_not_hang_the_program(tmp_path):
    fifo = tmp_path / "r.json"
    os.mkfifo(fifo)
    proc = run([PROBE, "--taint", "net", "--exit-normally"], f"report={fifo}", check=False)
    assert proc.returncode == 0, proc.stderr
    assert f"cannot write the report {fifo} (exists and is not a regular file)" in proc.stderr
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


@pytest.mark.parametrize("target, words", [
    ("dir", "Is a directory"),
    ("/dev/full", "exists and is not a regular file"),
    ("missing", "No such file or directory"),
])
def test_unwritable_report_path_is_named_with_the_error_in_words(tmp_path, target, words):
    path = {"dir": str(tmp_path), "/dev/full": "/dev/full",
            "missing": str(tmp_path / "no" / "r.json")}[target]
    proc = run([PROBE, "--taint", "net", "--exit-normally"], f"report={path}")
    lines = [x for x in proc.stderr.splitlines() if "cannot write the report" in x]
    assert len(lines) == 1 and path in lines[0] and words in lines[0], proc.stderr


def test_report_permission_denied_is_said_in_words(tmp_path):
    user = "pr-ev-user"
    subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", user],
                   capture_output=True)
    subprocess.run(["id", user], check=True, capture_output=True)
    tmp_path.chmod(0o755)
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o755)
    proc = subprocess.run(["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups",
                           "env", f"LD_PRELOAD={SHIM}", f"PRISTINE_OPTIONS=report={closed}/r.json",
                           str(PROBE), "--taint", "fs", "--exit-normally"],
                          env=clean_env(), capture_output=True, text=True, timeout=TIMEOUT,
                          cwd="/")
    assert proc.returncode == 0, proc.stderr
    lines = [x for x in proc.stderr.splitlines() if "cannot write the report" in x]
    assert len(lines) == 1 and f"{closed}/r.json" in lines[0], proc.stderr
    assert "Permission denied" in lines[0], proc.stderr


def test_symlink_at_the_log_path_is_not_followed(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    link = tmp_path / "log"
    link.symlink_to(victim)
    proc = run([PROBE, "--taint", "net", "--exit-normally"], f"log={link}")
    assert victim.read_text() == "precious\n"
    said = [x for x in proc.stderr.splitlines() if "cannot write the log file" in x]
    assert len(said) == 1 and str(link) in said[0], proc.stderr
    # The line itself went to stderr instead.
    assert "new call site" in proc.stderr


def test_log_never_lands_in_a_reused_descriptor_2(tmp_path):
    data = tmp_path / "data"
    run([EVIDENCE, "reuse-stderr", data], "log=stderr")
    assert data.read_text() == "DATA\n"


def test_report_and_log_are_not_redirected_by_a_chroot(tmp_path):
    jail = tmp_path / "jail"
    (jail / "out").mkdir(parents=True)
    out = tmp_path / "out"
    out.mkdir()
    run([EVIDENCE, "chroot", "--exit-from-worker", jail],
        f"report={out}/r.json:log={out}/log")
    assert (out / "r.json").exists() and "new call site" in (out / "log").read_text()
    assert list((jail / "out").iterdir()) == []


def test_libunwind_is_not_loaded_from_a_chroot(tmp_path):
    jail = tmp_path / "jail"
    for d in ("lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu", "lib64", "lib"):
        (jail / d).mkdir(parents=True, exist_ok=True)
        shutil.copy(FAKE_UNWIND, jail / d / "libunwind.so.8")
    run([EVIDENCE, "chroot", jail], f"report={tmp_path}/r.%p.json")
    assert not (jail / "pwned").exists()


def test_module_files_are_not_read_at_exit(tmp_path):
    """A library in the creating stacks (a copy of libstdc++, where std::thread creates) is
    replaced by a FIFO before the program exits: writing the report does not open it (the old
    exit-time symbolizer hung there, or crashed on a crafted file)."""
    libstdcxx = subprocess.run(["/usr/bin/python3", "-c", "import ctypes.util,sys;"
                                "print(ctypes.util.find_library('stdc++'))"],
                               capture_output=True, text=True).stdout.strip()
    source = next((pathlib.Path(d) / libstdcxx for d in ("/lib/x86_64-linux-gnu",
                   "/usr/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu",
                   "/usr/lib/aarch64-linux-gnu") if (pathlib.Path(d) / libstdcxx).exists()), None)
    if not libstdcxx or source is None:
        pytest.fail("libstdc++ not found")
    lib = tmp_path / "lib"
    lib.mkdir()
    copy = lib / libstdcxx
    shutil.copy(source, copy)
    p = start([EVIDENCE, "three-sites", "--hold"], f"report={tmp_path}/r.%p.json",
              env={"LD_LIBRARY_PATH": str(lib)})
    copy.unlink()
    os.mkfifo(copy)
    p.stdin.close()
    try:
        assert p.wait(timeout=30) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    doc = json.loads((tmp_path / f"r.{p.pid}.json").read_text())
    assert doc["final"] is True and len(doc["sites"]) == 3
    assert any(f["module"] == str(copy) for s in doc["sites"] for f in s["frames"]), doc


def test_frames_in_no_module_carry_no_absolute_address(tmp_path):
    if os.uname().machine != "x86_64":
        pytest.skip("the anonymous code is x86_64 machine code")
    run([EVIDENCE, "anon-frame"], f"report={tmp_path}/r.%p.json")
    report = only_report(tmp_path)
    [site] = json.loads(report.read_text())["sites"]
    first = site["frames"][0]
    assert first["module"] is None and first["address"] is None, site["frames"]
    assert stat.S_IMODE(report.stat().st_mode) == 0o600


def test_library_code_is_not_mapped_with_read_only_data():
    """Built with separate code segments: the executable segment holds code only."""
    out = subprocess.run(["readelf", "-lW", str(SHIM)], capture_output=True, text=True,
                         check=True).stdout
    flags = re.findall(r"^\s*LOAD\s+\S+\s+\S+\s+\S+\s+\S+\s+\S+\s+(R?\s?W?\s?E?)\s", out, re.M)
    mapping = re.findall(r"^\s*(\d\d)\s+(.*)$", out.split("Section to Segment mapping:")[1], re.M)
    loads = [i for i, line in enumerate(out.splitlines()) if line.strip().startswith("LOAD")]
    assert loads and len(flags) == len(loads), out
    for index, f in enumerate(flags):
        if "E" in f:
            sections = dict(mapping)[f"{index:02d}"].split()
            data = [s for s in sections if s not in (".init", ".plt", ".plt.got", ".plt.sec",
                                                     ".text", ".fini")]
            assert data == [], (sections, out)


# --- The log ------------------------------------------------------------------------------------

def test_log_path_expands_pid_and_lines_carry_it(tmp_path):
    proc = run([PROBE, "--taint", "net", "--exit-normally"], f"log={tmp_path}/log.%p")
    pid = json.loads(proc.stdout)["pid"]
    log = tmp_path / f"log.{pid}"
    assert log.exists(), os.listdir(tmp_path)
    lines = log.read_text().splitlines()
    assert lines and all(x.startswith(f"pristine[{pid}]: ") for x in lines), lines
    assert stat.S_IMODE(log.stat().st_mode) == 0o600


def test_unopenable_log_path_is_said_once(tmp_path):
    path = tmp_path / "missing" / "log"
    proc = run([PROBE, "--taint", "net", "--child-creates", "3", "--exit-normally"],
               f"log={path}")
    said = [x for x in proc.stderr.splitlines() if "cannot write the log file" in x]
    assert len(said) == 1 and str(path) in said[0] and "No such file or directory" in said[0], \
        proc.stderr


@pytest.mark.parametrize("verbosity, site_lines, hint", [("0", 0, 0), ("1", 0, 1), ("2", 1, 1)])
def test_verbosity_decides_what_goes_to_the_log(verbosity, site_lines, hint):
    proc = run([PROBE, "--main-taint", "net", "--exit-normally"], f"verbosity={verbosity}")
    assert proc.stderr.count("new call site") == site_lines, proc.stderr
    assert proc.stderr.count("the main thread created a thread") == hint, proc.stderr
    assert "ignoring" not in proc.stderr, proc.stderr


# --- pristine-report --------------------------------------------------------------------------

def _two_reports(tmp_path):
    run([PROBE, "--taint", "net", "--exit-normally"], f"report={tmp_path}/r.%p.json")
    run([PROBE, "--exit-normally"], f"report={tmp_path}/r.%p.json")
    return sorted(tmp_path.glob("r.*.json"))


def test_report_tool_reads_stdin_and_directories(tmp_path):
    reports = _two_reports(tmp_path)
    by_dir = symbolized(tmp_path)
    assert by_dir["reports"] == 2 and by_dir["tainted"] == 1, by_dir
    one = pristine_report("--json", "-", input=reports[0].read_text())
    assert one.returncode == 0 and json.loads(one.stdout)["reports"] == 1, one.stderr


def test_report_tool_fails_on_tainted_for_ci(tmp_path):
    reports = _two_reports(tmp_path)
    tainted = [p for p in reports if json.loads(p.read_text())["tainted"]]
    clean = [p for p in reports if not json.loads(p.read_text())["tainted"]]
    assert pristine_report("--fail-on-tainted", *tainted).returncode == 1
    assert pristine_report("--fail-on-tainted", *clean).returncode == 0
    assert pristine_report(*tainted).returncode == 0


def test_report_tool_version_and_help():
    v = pristine_report("--version")
    assert v.returncode == 0 and v.stdout.startswith("pristine-report "), v
    h = pristine_report("--help")
    for word in ("--fail-on-tainted", "--json", "--top", "--no-demangle", "--debug-dir",
                 "--version", "Exit status"):
        assert word in h.stdout, h.stdout


@pytest.mark.parametrize("field, value", [
    ("created", "5"), ("sites", {}), ("dimensions", []), ("argv", "x"),
    ("sites.0.frames.0.address", "0x10"), ("sites.0.reason", 3),
    ("sites.0.origins.0.frames", None), ("sites.0.thread.name", 7),
])
def test_report_tool_skips_reports_with_wrong_field_types(tmp_path, field, value):
    good = _two_reports(tmp_path)
    doc = json.loads(next(p for p in good if json.loads(p.read_text())["tainted"]).read_text())
    target = doc
    *path, last = field.split(".")
    for part in path:
        target = target[int(part)] if part.isdigit() else target[part]
    target[last] = value
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    out = pristine_report(bad, *good)
    assert out.returncode == 2, out
    assert "Traceback" not in out.stderr and f"{bad}:" in out.stderr and "skipped" in out.stderr
    assert "pristine report: 2 report(s)" in out.stdout, out.stdout


def test_report_tool_never_prints_control_bytes(tmp_path):
    [report] = [p for p in _two_reports(tmp_path) if json.loads(p.read_text())["tainted"]]
    doc = json.loads(report.read_text())
    evil = "\x1b]2;owned\x07\x1b[31m\x9b"
    doc["sites"][0]["thread"]["name"] = evil
    doc["sites"][0]["reason"] = evil
    doc["sites"][0]["dimensions"].append(evil)
    doc["argv"] = [evil]
    doc["sites"][0]["frames"][0]["module"] = "/x/" + evil
    bad = tmp_path / "evil.json"
    bad.write_text(json.dumps(doc))
    out = pristine_report(bad)
    assert out.returncode == 0, out.stderr
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f\x80-\x9f]", out.stdout), repr(out.stdout)
    assert "\\x1b" in out.stdout


# --- pristine-scan ----------------------------------------------------------------------------

def scan(*args):
    if not SCAN.exists():
        pytest.fail(f"{SCAN} is not built")
    return subprocess.run([str(SCAN), *[str(a) for a in args]], capture_output=True, text=True,
                          timeout=TIMEOUT)


def start_plain(mode):
    env = clean_env()
    p = subprocess.Popen([str(EVIDENCE), mode, "--hold"], env=env, stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready", p.stderr.read()
    return p


def test_scan_finds_a_thread_left_in_another_network_namespace():
    p = start_plain("drift")
    try:
        out = scan("--pid", p.pid)
        assert out.returncode == 1, out
        [line] = out.stdout.splitlines()
        assert line.startswith(f"{p.pid} evidence thread ") and " net (main " in line, line
        js = scan("--pid", p.pid, "--json")
        assert js.returncode == 1
        doc = json.loads(js.stdout)
        [proc] = doc["processes"]
        [thread] = proc["drifting"]
        assert proc["pid"] == p.pid and set(thread["differs"]) == {"net"}, doc
        net = thread["differs"]["net"]
        assert net["main"] != net["thread"], net
        # Scanning every process finds it too.
        everything = scan("--json")
        assert everything.returncode == 1
        assert p.pid in [x["pid"] for x in json.loads(everything.stdout)["processes"]]
    finally:
        p.stdin.close()
        p.wait(timeout=TIMEOUT)


def test_scan_reports_nothing_on_a_clean_process():
    p = start_plain("clean")
    try:
        out = scan("--pid", p.pid)
        assert out.returncode == 0 and out.stdout == "", out
        js = json.loads(scan("--pid", p.pid, "--json").stdout)
        assert js["processes"] == [] and js["scanned"] == 1, js
    finally:
        p.stdin.close()
        p.wait(timeout=TIMEOUT)


def test_scan_errors_and_conventions():
    assert scan("--pid", "0").returncode == 2
    assert scan("--bogus").returncode == 2
    gone = scan("--pid", "2147483647")
    assert gone.returncode == 2 and "no such process" in gone.stderr, gone
    v = scan("--version")
    assert v.returncode == 0 and v.stdout.startswith("pristine-scan "), v
    h = scan("--help")
    assert h.returncode == 0 and "--pid" in h.stdout and "--json" in h.stdout


def test_scan_does_not_list_the_librarys_own_threads():
    """Under the library the template and spares block every signal: not drift."""
    p = subprocess.Popen([str(EVIDENCE), "drift", "--fs", "--hold"], env=clean_env(True, None),
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        assert p.stdout.readline().strip() == "ready", p.stderr.read()
        tasks = os.listdir(f"/proc/{p.pid}/task")
        names = [pathlib.Path(f"/proc/{p.pid}/task/{t}/comm").read_text().strip() for t in tasks]
        assert "pristine-tmpl" in names, names
        out = scan("--pid", p.pid)
        assert out.returncode == 1, out
        [line] = out.stdout.splitlines()
        assert " fs (main shared, thread private)" in line, out.stdout
        assert "pristine-tmpl" not in line, out.stdout
    finally:
        p.stdin.close()
        p.wait(timeout=TIMEOUT)


def test_scan_man_page_renders_without_warnings():
    page = ROOT / "man" / "pristine-scan.1"
    out = subprocess.run(["man", "--warnings", "-l", str(page)], capture_output=True, text=True,
                         timeout=TIMEOUT, env=dict(os.environ, MANWIDTH="80", MAN_KEEP_FORMATTING="0"))
    assert out.returncode == 0 and out.stderr == "", out.stderr
    text = re.sub(r".\x08", "", out.stdout)  # overstrike bold and underline
    assert "EXIT STATUS" in text and "--pid" in text.replace("\u2010", "-"), text


def test_bad_option_warning_does_not_echo_control_bytes():
    proc = run([PROBE, "--exit-normally"], "\x1b]2;owned\x07=1:mode=\x1b[31m")
    assert "PRISTINE_OPTIONS" in proc.stderr, proc.stderr
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", proc.stderr), repr(proc.stderr)
    assert "\\x1b" in proc.stderr, proc.stderr
