# SPDX-License-Identifier: Apache-2.0
"""The installed layout (cmake --install, pkg-config, CPack) and the opt-in API (pristine.h),
with and without the library preloaded."""

import gzip
import json
import os
import shutil
import subprocess

import pytest

from conftest import BUILD_DIR, PROBE, ROOT, SHIM

# A program using the opt-in API. It runs unchanged without the shim.
API_USER = r"""
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pristine.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

static unsigned long long uts_ino(void) {
  struct stat st;
  return stat("/proc/thread-self/ns/uts", &st) == 0 ? (unsigned long long)st.st_ino : 0;
}
static unsigned long long child_uts;
static void* child(void* p) { (void)p; child_uts = uts_ino(); return NULL; }

int main(void) {
  int loaded = pristine_loaded();
  unsigned before = pristine_tainted_dimensions();
  int unshared = unshare(CLONE_NEWUTS) == 0;
  unsigned after = pristine_tainted_dimensions();
  const char* name = pristine_dimension_name(PRISTINE_DIM_UTS);
  const char* bad = pristine_dimension_name(99);
  int rebase = pristine_rebase();
  unsigned after_rebase = pristine_tainted_dimensions();
  pthread_t t;
  if (pthread_create(&t, NULL, child, NULL) != 0) return 1;
  pthread_join(t, NULL);
  printf("{\"loaded\":%d,\"before\":%u,\"unshared\":%d,\"after\":%u,\"uts_bit\":%u,"
         "\"name\":\"%s\",\"bad_name_null\":%d,\"rebase\":%d,\"after_rebase\":%u,"
         "\"child_in_callers_uts\":%d}\n",
         loaded, before, unshared, after, 1u << PRISTINE_DIM_UTS, name, bad == NULL, rebase,
         after_rebase, child_uts == uts_ino());
  return 0;
}
"""


def clean_env(**extra):
    env = dict(os.environ)
    for var in ("LD_PRELOAD", "PRISTINE_OPTIONS", "PRISTINE_LIB", "PRISTINE_BUILD_DIR"):
        env.pop(var, None)
    env.update(extra)
    return env


def compile_api_user(tmp_path, lang, cflags):
    compiler = {"c": "cc", "c++": "c++"}[lang]
    if shutil.which(compiler) is None:
        pytest.skip(f"{compiler} not installed")
    src = tmp_path / ("api_user.c" if lang == "c" else "api_user.cc")
    src.write_text(API_USER)
    exe = tmp_path / f"api_user_{lang.replace('+', 'x')}"
    std = ["-std=c11"] if lang == "c" else ["-std=c++17"]
    p = subprocess.run([compiler, *std, "-Wall", "-Wextra", "-Werror", *cflags, str(src), "-o",
                        str(exe), "-pthread"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return exe


def run_json(cmd, env):
    p = subprocess.run([str(c) for c in cmd], env=env, capture_output=True, text=True,
                       timeout=120, cwd=ROOT)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


@pytest.mark.parametrize("lang", ["c", "c++"])
def test_api_without_the_library(tmp_path, lang):
    exe = compile_api_user(tmp_path, lang, [f"-I{ROOT / 'include'}"])
    r = run_json([exe], clean_env())
    assert r["loaded"] == 0 and r["before"] == 0 and r["after"] == 0, r
    assert r["rebase"] == -1, r
    assert r["name"] == "uts" and r["bad_name_null"] == 1, r


@pytest.mark.parametrize("lang", ["c", "c++"])
def test_api_with_the_library(tmp_path, lang):
    if not SHIM.exists():
        pytest.skip("shim not built")
    exe = compile_api_user(tmp_path, lang, [f"-I{ROOT / 'include'}"])
    r = run_json([exe], clean_env(LD_PRELOAD=str(SHIM)))
    assert r["loaded"] == 1 and r["before"] == 0, r
    if not r["unshared"]:
        pytest.skip("unshare(CLONE_NEWUTS) not permitted here")
    assert r["after"] == r["uts_bit"], r
    # After the rebase, the caller's state is the baseline: clean, and its new thread keeps it.
    assert r["rebase"] == 0 and r["after_rebase"] == 0, r
    assert r["child_in_callers_uts"] == 1, r


def test_api_rebase_under_mode_off(tmp_path):
    if not SHIM.exists():
        pytest.skip("shim not built")
    exe = compile_api_user(tmp_path, "c", [f"-I{ROOT / 'include'}"])
    r = run_json([exe], clean_env(LD_PRELOAD=str(SHIM), PRISTINE_OPTIONS="mode=off"))
    assert r["loaded"] == 1 and r["after"] == 0 and r["rebase"] == -1, r


@pytest.fixture(scope="module")
def prefix(tmp_path_factory):
    if not (BUILD_DIR / "CMakeCache.txt").exists() or not SHIM.exists():
        pytest.skip("the build directory is not configured and built")
    dest = tmp_path_factory.mktemp("prefix")
    p = subprocess.run(["cmake", "--install", str(BUILD_DIR), "--prefix", str(dest)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    return dest


def installed_lib(prefix):
    libs = list(prefix.glob("lib*/**/libpristine.so"))
    assert len(libs) == 1, libs
    return libs[0]


def pkgconfig_dir(prefix):
    # The library sits in a private directory, lib/<triplet>/pristine; pkgconfig beside it.
    return installed_lib(prefix).parent.parent / "pkgconfig"


def test_installed_layout(prefix):
    lib = installed_lib(prefix)
    assert lib.parent.name == "pristine", lib
    assert (prefix / "include" / "pristine.h").is_file()
    assert (pkgconfig_dir(prefix) / "pristine.pc").is_file()
    for tool in ("pristine-run", "pristine-report"):
        assert os.access(prefix / "bin" / tool, os.X_OK), tool
    # Every man page of man/, compressed, in its section.
    pages = sorted((ROOT / "man").glob("*.[0-9]"))
    assert {p.name for p in pages} >= {"pristine-run.1", "pristine-report.1", "pristine.7"}
    for page in pages:
        section = page.suffix[1:]
        installed = prefix / "share" / "man" / f"man{section}" / f"{page.name}.gz"
        assert installed.is_file(), installed
        assert gzip.decompress(installed.read_bytes()) == page.read_bytes(), page


def test_installed_pristine_run_uses_the_installed_library(prefix, tmp_path):
    # Moved away from the checkout: the installed tool must not look for build/.
    p = subprocess.run([str(prefix / "bin" / "pristine-run"), "--report", f"{tmp_path}/r.%p.json",
                        "--", str(PROBE), "--taint", "fs", "--exit-normally"],
                       env=clean_env(), capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    assert [os.path.realpath(x) for x in r["preloaded"]] == [os.path.realpath(installed_lib(prefix))]
    assert r["child"]["fs_shared_with_main"] == 1 and r["child"]["cwd"] == r["baseline"]["cwd"]
    s = subprocess.run([str(prefix / "bin" / "pristine-report"), f"{tmp_path}/r.{r['pid']}.json"],
                       capture_output=True, text=True, timeout=60)
    assert s.returncode == 0 and "forwarded         1" in s.stdout, s.stdout + s.stderr
    q = subprocess.run([str(prefix / "bin" / "pristine-run"), "--mode", "x", "true"],
                       env=clean_env(), capture_output=True, text=True, timeout=60)
    assert q.returncode == 125


def test_pkg_config(prefix, tmp_path):
    if shutil.which("pkg-config") is None:
        pytest.skip("pkg-config not installed")
    env = clean_env(PKG_CONFIG_PATH=str(pkgconfig_dir(prefix)))
    p = subprocess.run(["pkg-config", "--cflags", "--libs", "pristine"], env=env,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    flags = p.stdout.split()
    incdirs = [f[2:] for f in flags if f.startswith("-I")]
    assert [os.path.realpath(d) for d in incdirs] == [os.path.realpath(prefix / "include")], flags
    pre = subprocess.run(["pkg-config", "--variable=preload", "pristine"], env=env,
                         capture_output=True, text=True, timeout=60).stdout.strip()
    # A clean path: absolute, nothing to resolve.
    assert pre == os.path.normpath(pre) and os.path.isabs(pre), pre
    assert os.path.realpath(pre) == os.path.realpath(installed_lib(prefix))
    # A program built against the installed header, run through the installed wrapper.
    exe = compile_api_user(tmp_path, "c", flags)
    r = run_json([prefix / "bin" / "pristine-run", exe], clean_env())
    assert r["loaded"] == 1, r
