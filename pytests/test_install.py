# SPDX-License-Identifier: Apache-2.0
"""The installed layout (README, "Install": cmake --install), pkg-config, and the installed
pristine-run, which uses the installed library and never looks for a build directory."""

import gzip
import json
import os

import pytest

from programs import BUILD_DIR, PROBE, ROOT, SHIM, need, run, run_ok
from test_api import compile_api_user, run_json

pytestmark = pytest.mark.build

@pytest.fixture(scope="module")
def prefix(tmp_path_factory):
    if not (BUILD_DIR / "CMakeCache.txt").exists() or not SHIM.exists():
        pytest.skip("the build directory is not configured and built")
    dest = tmp_path_factory.mktemp("prefix")
    run_ok(["cmake", "--install", BUILD_DIR, "--prefix", dest], timeout=300)
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
    p = run_ok([prefix / "bin" / "pristine-run", "--report", f"{tmp_path}/r.%p.json",
                "--", PROBE, "--taint", "fs", "--exit-normally"], cwd=tmp_path)
    r = json.loads(p.stdout)
    assert [os.path.realpath(x) for x in r["preloaded"]] == [os.path.realpath(installed_lib(prefix))]
    assert r["child"]["fs_shared_with_main"] == 1 and r["child"]["cwd"] == r["baseline"]["cwd"]
    s = run([prefix / "bin" / "pristine-report", f"{tmp_path}/r.{r['pid']}.json"])
    assert s.returncode == 0 and "forwarded         1" in s.stdout, s.stdout + s.stderr
    q = run([prefix / "bin" / "pristine-run", "--mode", "x", "true"])
    assert q.returncode == 125


def test_pkg_config(prefix, tmp_path):
    need("pkg-config")
    env = {"PKG_CONFIG_PATH": pkgconfig_dir(prefix)}
    p = run_ok(["pkg-config", "--cflags", "--libs", "pristine"], env=env)
    flags = p.stdout.split()
    incdirs = [f[2:] for f in flags if f.startswith("-I")]
    assert [os.path.realpath(d) for d in incdirs] == [os.path.realpath(prefix / "include")], flags
    pre = run(["pkg-config", "--variable=preload", "pristine"], env=env).stdout.strip()
    # A clean path: absolute, nothing to resolve.
    assert pre == os.path.normpath(pre) and os.path.isabs(pre), pre
    assert os.path.realpath(pre) == os.path.realpath(installed_lib(prefix))
    # A program built against the installed header, run through the installed wrapper.
    exe = compile_api_user(tmp_path, "c", flags)
    r = run_json([prefix / "bin" / "pristine-run", exe])
    assert r["loaded"] == 1, r
