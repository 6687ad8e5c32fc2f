# SPDX-License-Identifier: Apache-2.0
"""Secure execution: a set-user-ID or file-capability program (getauxval(AT_SECURE)) that has the
library through a system-wide preload ignores every PRISTINE_OPTIONS setting that would make it do
more than by default, above all report= and log=PATH, which would let any local user create,
truncate or append to a file as root.

Run for real: an unprivileged user starts a set-user-ID-root program and a program with file
capabilities, under a private /etc/ld.so.preload (a mount namespace of its own, in which a file is
bind-mounted over /etc/ld.so.preload, or /etc is overlaid when the machine has none; the machine's
own file is never touched).
"""

import json
import os
import pwd
import shutil
import subprocess
import tempfile

import pytest

from conftest import SHIM

USER = "pr-ops-secure"

# Creates a thread from a worker that entered a new UTS namespace (a tainted create: under the
# old behaviour, log= got a "new call site" line), exits through exit() (the report is written
# then), and says whether it ran in secure-execution mode with the library loaded.
PROGRAM = r"""
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>

static void* child(void* arg) { (void)arg; return NULL; }

static void* worker(void* arg) {
  (void)arg;
  int unshared = unshare(CLONE_NEWUTS) == 0;
  pthread_t t;
  if (pthread_create(&t, NULL, child, NULL) == 0) pthread_join(t, NULL);
  return (void*)(long)unshared;
}

int main(void) {
  int loaded = 0;
  char line[4096];
  FILE* maps = fopen("/proc/self/maps", "r");
  while (maps && fgets(line, sizeof line, maps)) loaded |= strstr(line, "libpristine") != NULL;
  if (maps) fclose(maps);
  pthread_t w;
  void* unshared = NULL;
  if (pthread_create(&w, NULL, worker, NULL) != 0) return 1;
  pthread_join(w, &unshared);
  printf("{\"secure\": %lu, \"loaded\": %d, \"unshared\": %ld}\n", getauxval(AT_SECURE), loaded,
         (long)unshared);
  exit(0);
}
"""


def need(tool):
    if shutil.which(tool) is None:
        pytest.fail(f"{tool} is not installed (scripts/install-deps installs it)")


@pytest.fixture(scope="module")
def user():
    need("useradd")
    try:
        entry = pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", USER],
                       check=True, capture_output=True)
        entry = pwd.getpwnam(USER)
    return entry


@pytest.fixture(scope="module")
def world(shim):
    """A world-readable directory (pytest's own tmp_path is root's only) holding the programs and
    the preload file, removed at the end."""
    need("cc")
    need("setcap")
    need("unshare")
    need("setpriv")
    d = tempfile.mkdtemp(prefix="pr-ops-secure-", dir="/tmp")
    os.chmod(d, 0o755)
    src = os.path.join(d, "secure_prog.c")
    with open(src, "w") as f:
        f.write(PROGRAM)
    plain = os.path.join(d, "plain")
    subprocess.run(["cc", "-O1", "-pthread", src, "-o", plain], check=True, capture_output=True)
    setuid = os.path.join(d, "setuid")
    shutil.copy(plain, setuid)
    os.chown(setuid, 0, 0)
    os.chmod(setuid, 0o4755)
    filecap = os.path.join(d, "filecap")
    shutil.copy(plain, filecap)
    os.chmod(filecap, 0o755)
    # DAC override: it could write into /root; SYS_ADMIN: its worker can unshare (a tainted create).
    subprocess.run(["setcap", "cap_dac_override,cap_sys_admin+ep", filecap], check=True,
                   capture_output=True)
    preload = os.path.join(d, "ld.so.preload")
    with open(preload, "w") as f:
        f.write(f"{shim}\n")
    os.chmod(preload, 0o644)
    yield {"dir": d, "setuid": setuid, "filecap": filecap, "plain": plain, "preload": preload}
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def root_owned(tmp_path):
    """Root's files that the attack targets: a directory only root may write (0755), an existing
    file in it, a path that does not exist yet, and a report path in /root (0700)."""
    d = tempfile.mkdtemp(prefix="pr-ops-rootdir-", dir="/var/tmp")
    os.chmod(d, 0o755)
    existing = os.path.join(d, "existing.log")
    with open(existing, "w") as f:
        f.write("root's own content\n")
    os.chmod(existing, 0o644)
    report = f"/root/pr-ops-secure-{os.getpid()}.json"
    if os.path.lexists(report):
        os.unlink(report)
    yield {"dir": d, "existing": existing, "new": os.path.join(d, "new.log"), "report": report}
    shutil.rmtree(d, ignore_errors=True)
    if os.path.lexists(report):
        os.unlink(report)


def run_as_user(world, user, program, options):
    """Runs `program` as `user` under a private /etc/ld.so.preload naming the library."""
    d = world["dir"]
    if os.path.exists("/etc/ld.so.preload"):
        mount = f"mount --bind {world['preload']} /etc/ld.so.preload"
    else:
        # Nothing to bind over: overlay /etc with a directory that adds the file.
        upper, work = os.path.join(d, "etc-upper"), os.path.join(d, "etc-work")
        for p in (upper, work):
            shutil.rmtree(p, ignore_errors=True)
            os.mkdir(p)
        shutil.copy(world["preload"], os.path.join(upper, "ld.so.preload"))
        mount = f"mount -t overlay overlay -o lowerdir=/etc,upperdir={upper},workdir={work} /etc"
    script = (f"set -e; mount --make-rprivate /; {mount}; "
              f"exec setpriv --reuid={user.pw_uid} --regid={user.pw_gid} --clear-groups -- "
              f"env -i PATH=/usr/bin:/bin PRISTINE_OPTIONS=\"$OPTS\" {program}")
    # Every program started after the mount has the library; the helpers that set up the run get
    # mode=off (setpriv changes its uids, which is not what this test is about).
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "OPTS": options, "PRISTINE_OPTIONS": "mode=off"}
    p = subprocess.run(["unshare", "-m", "sh", "-c", script], env=env, capture_output=True,
                       text=True, timeout=120, cwd="/")
    assert p.returncode == 0, f"exit {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}"
    lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
    assert len(lines) == 1, p.stdout + p.stderr
    return json.loads(lines[0]), p.stderr


def snapshot(path):
    st = os.stat(path)
    with open(path, "rb") as f:
        return f.read(), st.st_size, st.st_mtime_ns, st.st_uid


@pytest.mark.parametrize("kind", ["setuid", "filecap"])
@pytest.mark.parametrize("target", ["existing", "new"])
def test_environment_cannot_make_a_privileged_program_write(world, user, root_owned, kind,
                                                            target):
    log = root_owned[target]
    before = snapshot(log) if target == "existing" else None
    options = f"report={root_owned['report']}:log={log}:verify=strict:mode=enforce"
    r, stderr = run_as_user(world, user, world[kind], options)
    # The set-up worked: the library was loaded into a secure-execution program whose worker
    # made a tainted create (else this would pass without testing anything).
    assert r["secure"] == 1 and r["loaded"] == 1, (r, stderr)
    assert r["unshared"] == 1, (r, stderr)
    assert not os.path.lexists(root_owned["report"]), f"report created by {kind}\n{stderr}"
    if target == "existing":
        assert snapshot(log) == before, f"{log} was written by {kind}\n{stderr}"
    else:
        assert not os.path.lexists(log), f"{log} was created by {kind}\n{stderr}"
    assert sorted(os.listdir(root_owned["dir"])) == sorted(
        os.path.basename(p) for p in [root_owned["existing"]]), os.listdir(root_owned["dir"])
    # One line says what was ignored, and echoes none of the caller's values.
    lines = [l for l in stderr.splitlines() if "PRISTINE_OPTIONS" in l]
    assert len(lines) == 1, stderr
    assert "secure-execution" in lines[0] and "report" in lines[0] and "log" in lines[0], lines
    assert log not in lines[0] and root_owned["report"] not in lines[0], lines


def test_settings_that_do_less_still_apply(world, user, root_owned):
    # mode=off is honoured: nothing is said about it, and the program runs as without the library.
    r, stderr = run_as_user(world, user, world["setuid"], "mode=off:log=off:verbosity=0")
    assert r["secure"] == 1 and r["loaded"] == 1, (r, stderr)
    assert "PRISTINE_OPTIONS" not in stderr, stderr


def test_the_same_user_without_privileges_keeps_every_option(world, user, tmp_path):
    # The control: not a secure-execution program, so the options apply (report= into a
    # directory the user may write).
    d = tempfile.mkdtemp(prefix="pr-ops-userdir-", dir="/tmp")
    try:
        os.chown(d, user.pw_uid, user.pw_gid)
        report = os.path.join(d, "r.json")
        r, stderr = run_as_user(world, user, world["plain"], f"report={report}")
        assert r["secure"] == 0 and r["loaded"] == 1, (r, stderr)
        assert os.path.exists(report), stderr
        assert os.stat(report).st_uid == user.pw_uid
    finally:
        shutil.rmtree(d, ignore_errors=True)
