# SPDX-License-Identifier: Apache-2.0
"""The built library itself. Static initialisation: the library runs before its own initialisers
when another library's constructor calls into it, so every global of the library must be
constant-initialised. Its segments: code apart from read-only data.

- The built library's .init_array holds nothing but the toolchain's frame_dummy and the library's
  load hook: a dynamic initialiser (a global whose constructor is not constexpr) would show here.
- A library the program links against (DT_NEEDED) makes forwarded creates in its constructor, then
  the program makes more: every start routine runs (before the fix, a dynamic initialiser of the
  spare-thread records wiped those the constructor's creates had made, and a later create returned
  0 but its routine never ran: the program hung).
- Built with separate code segments: the executable segment holds code only.
"""

import re

from programs import SHIM, run_app, run_ok


def _run(cmd):
    return run_ok(cmd).stdout


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
    for shim in (False, True):
        r = run_app("needed_ctor", shim=shim, timeout=60)
        assert r.json == {"ran": 11, "expected": 11, "errors": 0}, r.describe()


def test_library_code_is_not_mapped_with_read_only_data():
    """Built with separate code segments: the executable segment holds code only."""
    out = run_ok(["readelf", "-lW", SHIM]).stdout
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
