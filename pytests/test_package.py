# SPDX-License-Identifier: Apache-2.0
"""The Debian package, built as the README says (cpack -G DEB --config build/CPackConfig.cmake):
lintian finds no error and no warning, it installs into a scratch root with dpkg --root and
removes cleanly, its tools run from there with the installed library, the library is stripped
with its debug symbols in pristine-dbgsym, pkg-config prints a clean preload path, the version
is the build's everywhere, and the man pages render without warnings."""

import gzip
import json
import os
import re
import shutil
import subprocess

import pytest

from conftest import BUILD_DIR, PROBE, ROOT, SHIM

VERSION_FILE = BUILD_DIR / "generated" / "version.txt"


def need(*tools):
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.fail(f"not installed: {', '.join(missing)} (scripts/install-deps test installs them)")


def clean_env(**extra):
    env = dict(os.environ)
    for var in ("LD_PRELOAD", "PRISTINE_OPTIONS", "PRISTINE_LIB", "PRISTINE_BUILD_DIR",
                "PRISTINE_RUN", "PKG_CONFIG_PATH"):
        env.pop(var, None)
    env.update(extra)
    return env


def run(cmd, **kw):
    kw.setdefault("timeout", 600)
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)


def build_version():
    return VERSION_FILE.read_text().strip()


def triplet():
    return run(["gcc", "-dumpmachine"]).stdout.strip()


@pytest.fixture(scope="module")
def debs(tmp_path_factory):
    need("cpack", "dpkg-deb", "gcc")
    config = BUILD_DIR / "CPackConfig.cmake"
    if not config.exists() or not SHIM.exists():
        pytest.fail(f"the build directory {BUILD_DIR} is not configured and built")
    out = tmp_path_factory.mktemp("debs")
    p = run(["cpack", "-G", "DEB", "--config", config, "-B", out], cwd=BUILD_DIR)
    assert p.returncode == 0, p.stdout + p.stderr
    found = {d.name.split("_")[0]: d for d in out.glob("*.deb")}
    assert set(found) == {"pristine", "pristine-dbgsym"}, list(out.iterdir())
    return found


@pytest.fixture(scope="module")
def installed(debs, tmp_path_factory):
    """A scratch root with the package installed by dpkg (its own, empty database)."""
    need("dpkg")
    root = tmp_path_factory.mktemp("root")
    admin = root / "var" / "lib" / "dpkg"
    for d in ("info", "updates", "triggers"):
        (admin / d).mkdir(parents=True)
    (admin / "status").write_text("")
    (admin / "available").write_text("")
    # libc6 and python3 are not in the scratch database: they are the host's.
    p = run(["dpkg", f"--root={root}", "--force-depends", "--force-not-root", "-i",
             debs["pristine"], debs["pristine-dbgsym"]])
    assert p.returncode == 0, p.stdout + p.stderr
    return root


def test_lintian_finds_nothing(debs):
    # Errors, warnings, and also informational and pedantic tags; what remains is overridden in
    # packaging/*.lintian-overrides, each with its reason.
    need("lintian")
    p = run(["lintian", "--pedantic", "--display-info", "--fail-on", "none", debs["pristine"],
             debs["pristine-dbgsym"]])
    tags = [l for l in p.stdout.splitlines() if re.match(r"^[EWIPX]: ", l)]
    assert p.returncode == 0 and tags == [], p.stdout + p.stderr


def test_control_fields(debs):
    fields = run(["dpkg-deb", "-f", debs["pristine"]]).stdout
    assert f"Version: {build_version()}\n" in fields, fields
    assert re.search(r"^Maintainer: .+ <[^@>]+@[^@>]+\.[^@>]+>$", fields, re.M), fields
    depends = re.search(r"^Depends: (.*)$", fields, re.M).group(1).split(", ")
    assert "python3" in depends and "libc6 (>= 2.34)" in depends, fields
    # A summary line and an extended description.
    desc = fields[fields.index("Description:"):].splitlines()
    assert len([l for l in desc[1:] if l.startswith(" ")]) >= 5, fields
    dbg = run(["dpkg-deb", "-f", debs["pristine-dbgsym"]]).stdout
    assert f"Depends: pristine (= {build_version()})" in dbg, dbg


def test_installed_files(installed):
    lib = installed / "usr" / "lib" / triplet() / "pristine" / "libpristine.so"
    assert lib.is_file(), sorted(str(p) for p in installed.rglob("*"))
    for path in ("usr/bin/pristine-run", "usr/bin/pristine-report", "usr/include/pristine.h",
                 f"usr/lib/{triplet()}/pkgconfig/pristine.pc",
                 "usr/share/doc/pristine/copyright", "usr/share/doc/pristine/changelog.gz",
                 "usr/share/man/man1/pristine-run.1.gz", "usr/share/man/man1/pristine-report.1.gz",
                 "usr/share/man/man7/pristine.7.gz"):
        assert (installed / path).exists(), path
    copyright = (installed / "usr/share/doc/pristine/copyright").read_text()
    assert "License: Apache-2.0" in copyright and "/usr/share/common-licenses/Apache-2.0" in copyright
    changelog = gzip.decompress((installed / "usr/share/doc/pristine/changelog.gz").read_bytes())
    assert changelog.decode().startswith(f"pristine ({build_version()}) "), changelog[:200]
    # dpkg knows every file, and removes them all.
    listed = run(["dpkg", f"--root={installed}", "-L", "pristine"]).stdout
    assert f"/usr/lib/{triplet()}/pristine/libpristine.so" in listed, listed


def test_library_stripped_with_debug_symbols_apart(installed):
    need("readelf")
    lib = installed / "usr" / "lib" / triplet() / "pristine" / "libpristine.so"
    sections = run(["readelf", "-S", "-W", lib]).stdout
    assert ".symtab" not in sections and ".debug_info" not in sections, sections
    assert ".comment" not in sections, sections
    notes = run(["readelf", "-n", lib]).stdout
    build_id = re.search(r"Build ID: ([0-9a-f]+)", notes).group(1)
    debug = installed / "usr/lib/debug/.build-id" / build_id[:2] / f"{build_id[2:]}.debug"
    assert debug.is_file(), debug
    assert ".debug_info" in run(["readelf", "-S", "-W", debug]).stdout
    assert (installed / "usr/share/doc/pristine-dbgsym").is_symlink()


def test_pkg_config_preload_is_a_clean_path(installed):
    need("pkg-config")
    env = clean_env(PKG_CONFIG_PATH=str(installed / "usr" / "lib" / triplet() / "pkgconfig"))
    pre = run(["pkg-config", "--variable=preload", "pristine"], env=env)
    assert pre.returncode == 0, pre.stderr
    assert pre.stdout == f"/usr/lib/{triplet()}/pristine/libpristine.so\n", pre.stdout
    mod = run(["pkg-config", "--modversion", "pristine"], env=env).stdout.strip()
    assert mod == build_version()


def test_installed_tools_run_with_the_installed_library(installed, tmp_path):
    bin_ = installed / "usr" / "bin"
    lib = installed / "usr" / "lib" / triplet() / "pristine" / "libpristine.so"
    v = run([bin_ / "pristine-run", "--version"], env=clean_env())
    assert v.returncode == 0 and v.stdout == f"pristine-run {build_version()}\n", v
    # The installed library says the same version.
    h = run(["/bin/true"], env=clean_env(LD_PRELOAD=str(lib), PRISTINE_OPTIONS="help=1"))
    assert h.stderr.startswith(f"pristine {build_version()}: "), h.stderr[:300]
    env = run([bin_ / "pristine-run", "--mode", "audit", "--print-env"], env=clean_env(),
              cwd=tmp_path)
    assert env.returncode == 0, env.stderr
    assert env.stdout == f"LD_PRELOAD={lib}\nPRISTINE_OPTIONS=mode=audit\n", env.stdout
    report = tmp_path / "r.%p.json"
    p = run([bin_ / "pristine-run", "--report", report, "--", PROBE, "--taint", "net",
             "--exit-normally"], env=clean_env(), cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    assert [os.path.realpath(x) for x in r["preloaded"]] == [os.path.realpath(lib)]
    assert r["child"]["ns"]["net"] == r["baseline"]["ns"]["net"]
    s = run([bin_ / "pristine-report", tmp_path / f"r.{r['pid']}.json"], env=clean_env())
    assert s.returncode == 0 and "1 report(s)" in s.stdout and "net" in s.stdout, s.stdout + s.stderr
    assert run([bin_ / "pristine-report", "--help"], env=clean_env()).returncode == 0


def test_installed_man_pages_render_without_warnings(installed):
    need("man")
    pages = sorted((installed / "usr" / "share" / "man").glob("man*/*.gz"))
    assert len(pages) >= 3, pages
    for page in pages:
        p = run(["man", "--warnings", "-l", page], env=clean_env(MANWIDTH="80", MAN_KEEP_STDERR="1"))
        assert p.returncode == 0 and p.stderr == "", f"{page}:\n{p.stderr}"
        assert "NAME" in p.stdout and "SEE ALSO" in p.stdout, page


def test_removal_refused_while_ld_so_preload_names_it_then_leaves_nothing(installed, tmp_path):
    # A second root, so the other tests keep theirs. The maintainer script runs outside the root
    # and reads $DPKG_ROOT/etc/ld.so.preload.
    root = tmp_path / "root"
    shutil.copytree(installed, root, symlinks=True)
    (root / "etc").mkdir(exist_ok=True)
    preload = root / "etc" / "ld.so.preload"
    preload.write_text(f"/usr/lib/{triplet()}/pristine/libpristine.so\n")
    remove = ["dpkg", f"--root={root}", "--force-not-root", "--force-script-chrootless", "-P",
              "pristine-dbgsym", "pristine"]
    p = run(remove)
    assert p.returncode != 0, p.stdout + p.stderr
    assert "ld.so.preload still loads libpristine.so" in p.stderr, p.stderr
    assert (root / "usr" / "lib" / triplet() / "pristine" / "libpristine.so").is_file()
    preload.write_text("# nothing preloaded\n")
    p = run(remove)
    assert p.returncode == 0, p.stdout + p.stderr
    left = [str(f.relative_to(root)) for f in root.rglob("*")
            if f.is_file() and not str(f.relative_to(root)).startswith(("var/lib/dpkg", "etc/"))]
    assert left == [], left
