# SPDX-License-Identifier: Apache-2.0
"""Static initialisation: the library runs before its own initialisers when another library's
constructor calls into it, so every global of the library must be constant-initialised.

- The built library's .init_array holds nothing but the toolchain's frame_dummy and the library's
  load hook: a dynamic initialiser (a global whose constructor is not constexpr) would show here.
- A library the program links against (DT_NEEDED) makes forwarded creates in its constructor, then
  the program makes more: every start routine runs (before the fix, a dynamic initialiser of the
  spare-thread records wiped those the constructor's creates had made, and a later create returned
  0 but its routine never ran: the program hung).
"""

import json
import re
import subprocess

import pytest

from conftest import BUILD_DIR, SHIM, clean_env

NEEDED_CTOR = BUILD_DIR / "testapps" / "needed_ctor"


def _run(cmd):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True).stdout


def _init_array_functions(lib):
    """The functions .init_array points to, by name (from the RELATIVE relocations in it)."""
    sections = _run(["readelf", "-SW", str(lib)])
    m = re.search(r"\.init_array\s+INIT_ARRAY\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)", sections)
    assert m, sections
    start, size = int(m.group(1), 16), int(m.group(2), 16)
    targets = []
    for line in _run(["readelf", "-rW", str(lib)]).splitlines():
        f = line.split()
        if len(f) >= 4 and "RELATIVE" in f[2] and start <= int(f[0], 16) < start + size:
            targets.append(int(f[-1], 16))
    assert len(targets) == size // 8, (targets, size)
    names = {}
    for line in _run(["nm", "-C", str(lib)]).splitlines():
        f = line.split(maxsplit=2)
        if len(f) == 3:
            names.setdefault(int(f[0], 16), f[2])
    return [names.get(t, hex(t)) for t in targets]


def test_no_dynamic_initialiser_but_the_load_hook():
    assert SHIM.exists(), f"{SHIM} not built"
    functions = _init_array_functions(SHIM)
    assert sorted(functions) == sorted(["frame_dummy",
                                        "pristine::(anonymous namespace)::OnLibraryLoad(int, char**, char**)"]), \
        functions


def test_forwarded_creates_in_a_needed_librarys_constructor():
    if not NEEDED_CTOR.exists():
        pytest.fail(f"{NEEDED_CTOR} not built")
    for shim in (False, True):
        p = subprocess.run([str(NEEDED_CTOR)], env=clean_env(shim), capture_output=True,
                           text=True, timeout=60)
        assert p.returncode == 0, (shim, p.stdout, p.stderr)
        assert json.loads(p.stdout) == {"ran": 11, "expected": 11, "errors": 0}
