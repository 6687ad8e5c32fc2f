# SPDX-License-Identifier: Apache-2.0
"""The bench's results as Markdown: the tables of docs/performance.md and the README's summary.

A document holds generated blocks between two markers, and only those are rewritten:

    <!-- bench:figures -->
    ... generated ...
    <!-- /bench:figures -->

Blocks: `run` (machine and method), `summary` (the headline figures, for the README), `figures`
(every figure, by group), `floors`, `concurrency` (creates/s per series and creator count).
Everything is rendered from the results file alone, so the same file always gives the same text.
"""

import re

from . import figures as F

BLOCK_RE = re.compile(r"<!-- bench:([a-z]+) -->\n(.*?)<!-- /bench:\1 -->", re.S)


def fmt_value(v, unit):
    if v is None:
        return "-"
    if unit == "/s":
        return f"{v:,.0f}/s"
    if unit == "kB":
        return f"{v:,.0f} kB"
    return f"{v:.1f} µs" if v >= 100 else f"{v:.2f} µs"


def fmt_ratio(f):
    if f["ratio"] is None:
        return "-"
    if f["compare"] == "difference":
        return f"{f['ratio']:+,.0f} kB"
    return f"{f['ratio']:.3f}"


def fmt_result(f):
    return "" if f["pass"] is None else ("**PASS**" if f["pass"] else "**FAIL**")


def cell(text):
    """A table cell: a | inside it would end the cell."""
    return str(text).replace("|", "\\|")


def table(head, rows):
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def figure_rows(figs):
    return [(f["description"], fmt_value(f["value"], f["unit"]),
             f"{fmt_value(f['against'], f['unit'])} ({f['against_label']})", fmt_ratio(f),
             f"{f['target_op']} {f['target']:g}" if f["target"] is not None else "",
             fmt_result(f), f"±{f['noise_pct']:.0f}%" if f.get("noise_pct") else "")
            for f in figs]


FIGURE_HEAD = ("figure", "measured", "against", "ratio", "target", "result", "noise")


def targets_line(result):
    figs = result["figures"]
    held = [f for f in figs if f["pass"] is not None]
    failed = [f["id"] for f in held if not f["pass"]]
    line = f"{len(held) - len(failed)} of {len(held)} targets met"
    return line + (f"; missed: {', '.join(failed)}" if failed else "")


def block_run(result):
    m, p = result["machine"], result["params"]
    quick = " **(--quick: numbers meaningless)**" if result.get("quick") else ""
    return (f"Run of {m['date']} at commit {m['commit']}{quick}: {m['nproc']} CPUs ({m['cpu']}), "
            f"Linux {m['kernel']}, {m['glibc']}; load average {m['loadavg_start']} at the start, "
            f"{m['loadavg_end']} at the end (the machine is shared); {result['elapsed_s']:.0f} s.\n"
            f"Create+join: {p['create_rounds']} rounds of {p['iters']} iterations after "
            f"{p['warmup_ms']} ms of warm-up; concurrent creators: {p['rounds']} rounds of "
            f"{p['ms']} ms; exec: {p['rounds']} rounds of {p['spawn_iters']} spawns; glibc calls: "
            f"{p['rounds']} rounds of {p['libc_iters']} calls; memory and floors: "
            f"{p['floor_rounds']} rounds. {targets_line(result)}.\n")


def block_summary(result):
    by_id = {f["id"]: f for f in result["figures"]}
    rows = []
    for fid in F.SUMMARY:
        f = by_id.get(fid)
        if f is None:
            continue
        rows.append((f["description"], fmt_ratio(f),
                     f"{f['target_op']} {f['target']:g}" if f["target"] is not None else "",
                     fmt_result(f)))
    m = result["machine"]
    return (table(("figure", "ratio", "target", "result"), rows) + "\n\n"
            f"{targets_line(result)} ({m['date']}, commit {m['commit']}, {m['nproc']} CPUs "
            f"shared with other work, load average {m['loadavg_start']} to {m['loadavg_end']}). "
            f"Every figure, the peers, the floors and where the time goes: "
            f"`docs/performance.md`.\n")


def block_figures(result):
    parts = []
    for gid, title in F.GROUPS.items():
        figs = [f for f in result["figures"] if f["group"] == gid]
        if figs:
            parts.append(f"**{title}**\n\n" + table(FIGURE_HEAD, figure_rows(figs)) + "\n")
    return "\n".join(parts)


def block_floors(result):
    fl = result["floors_us"]
    rows = [(f.description,
             *(fmt_value(fl.get(f.id, {}).get(w), "us") for w in F.WHERE)) for f in F.FLOORS]
    return table(("floor (no library)", *F.WHERE), rows) + "\n"


def block_concurrency(result):
    conc = result["concurrency"]
    threads = conc["threads"]
    parts = []
    for scen, series in conc["scenarios"].items():
        plain = series["plain"]
        rows = []
        for name, values in series.items():
            # A quick run's round may measure no create at all: no ratio then.
            cells = [f"{v / 1000:.1f}k" + ("" if name == "plain" or not p else f" ({v / p:.2f})")
                     for v, p in zip(values, plain)]
            rows.append((name, *cells))
        parts.append(f"**{F.SCENARIO[scen].label}** (creates/s; in brackets: / plain)\n\n"
                     + table(("creators", *map(str, threads)), rows) + "\n")
    return "\n".join(parts)


BLOCKS = {"run": block_run, "summary": block_summary, "figures": block_figures,
          "floors": block_floors, "concurrency": block_concurrency}


def update(text, result):
    """`text` with every generated block rendered anew from `result`."""
    def replace(m):
        name = m.group(1)
        if name not in BLOCKS:
            raise ValueError(f"unknown block <!-- bench:{name} --> (known: {', '.join(BLOCKS)})")
        return f"<!-- bench:{name} -->\n{BLOCKS[name](result)}<!-- /bench:{name} -->"
    opened = re.findall(r"<!-- bench:([a-z]+) -->", text)
    closed = re.findall(r"<!-- /bench:([a-z]+) -->", text)
    if sorted(opened) != sorted(closed):
        raise ValueError("unbalanced <!-- bench:NAME --> / <!-- /bench:NAME --> markers")
    return BLOCK_RE.sub(replace, text)


def console(result):
    """The whole result as text for the terminal."""
    return "\n".join([block_run(result), block_figures(result), "Floors\n",
                      block_floors(result), "Concurrent creators\n", block_concurrency(result)])
