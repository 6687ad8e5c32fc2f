# SPDX-License-Identifier: Apache-2.0
"""The opt-in API (README, "Tools": pristine.h): pristine_loaded(), pristine_tainted_dimensions(),
pristine_dimension_name() and pristine_rebase(), from C and C++, with and without the library
preloaded (header-only: a program links and runs without it and then gets 0 / -1). After
pristine_rebase() the caller's state is the baseline. A program compiled here.
"""

import json

import pytest

from programs import ROOT, need, run_ok

pytestmark = pytest.mark.build

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


def compile_api_user(tmp_path, lang, cflags):
    compiler = need({"c": "cc", "c++": "c++"}[lang])
    src = tmp_path / ("api_user.c" if lang == "c" else "api_user.cc")
    src.write_text(API_USER)
    exe = tmp_path / f"api_user_{lang.replace('+', 'x')}"
    std = ["-std=c11"] if lang == "c" else ["-std=c++17"]
    run_ok([compiler, *std, "-Wall", "-Wextra", "-Werror", *cflags, src, "-o", exe, "-pthread"])
    return exe


def run_json(cmd, **kw):
    return json.loads(run_ok(cmd, **kw).stdout)


@pytest.mark.parametrize("lang", ["c", "c++"])
def test_api_without_the_library(tmp_path, lang):
    exe = compile_api_user(tmp_path, lang, [f"-I{ROOT / 'include'}"])
    r = run_json([exe])
    assert r["loaded"] == 0 and r["before"] == 0 and r["after"] == 0, r
    assert r["rebase"] == -1, r
    assert r["name"] == "uts" and r["bad_name_null"] == 1, r


@pytest.mark.parametrize("lang", ["c", "c++"])
def test_api_with_the_library(tmp_path, lang):
    exe = compile_api_user(tmp_path, lang, [f"-I{ROOT / 'include'}"])
    r = run_json([exe], shim=True)
    assert r["loaded"] == 1 and r["before"] == 0, r
    if not r["unshared"]:
        pytest.skip("unshare(CLONE_NEWUTS) not permitted here")
    assert r["after"] == r["uts_bit"], r
    # After the rebase, the caller's state is the baseline: clean, and its new thread keeps it.
    assert r["rebase"] == 0 and r["after_rebase"] == 0, r
    assert r["child_in_callers_uts"] == 1, r


def test_api_rebase_under_mode_off(tmp_path):
    exe = compile_api_user(tmp_path, "c", [f"-I{ROOT / 'include'}"])
    r = run_json([exe], shim=True, options="mode=off")
    assert r["loaded"] == 1 and r["after"] == 0 and r["rebase"] == -1, r
