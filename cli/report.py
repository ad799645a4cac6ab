"""``replay-tui report``: the session report as Markdown, JSON or one self-contained HTML file.

The data comes from ``engine.report.build``; this module only lays it out.  The
HTML has inline CSS and an inline SVG chart and references nothing outside the
file (no CDN, no fonts, no scripts), so it opens in a browser with no network.
"""

from __future__ import annotations

import html
import os
import sys
from typing import Any

import msgspec

from replay_tui.cli.commands import opened, sampling_note
from replay_tui.engine import report as reportmod
from replay_tui.engine.readonly import same_file
from replay_tui.engine.schema import RecordingError
from replay_tui.engine.stats import LATENCY_VERBS
from replay_tui.engine.textsafe import safe, safe_block, safe_json
from replay_tui.engine.units import NO_TIMING, fmt_duration, fmt_ms, fmt_percent, fmt_ts

FORMATS = ("md", "json", "html")




def _sections(r: reportmod.Report) -> dict[str, Any]:
    """Each table as (header, rows) of plain strings, shared by Markdown and HTML."""
    m, s, sec = r.metadata, r.summary, r.security
    meta = [
        ("Session", f"{m.session} (id {m.session_id})"), ("Source", m.source), ("Recorder", m.recorder),
        ("Recorder version", m.recorder_version or "not recorded"), ("Operator (actor)", m.actor or "-"),
        ("Cluster", m.cluster or "-"), ("Namespaces touched", ", ".join(m.namespaces) or "-"),
        ("Start", fmt_ts(m.started_ns or m.first_ns)),
        ("End", fmt_ts(m.ended_ns) if m.ended_ns else
         f"{m.state}: not closed; last op at {fmt_ts(m.last_ns)}" if m.last_ns else f"{m.state}: not closed"),
        ("Duration", fmt_duration(m.duration_s * 1e9)),
    ]
    lat = s.latency_ms
    sampled = s.sample_rate < 1.0
    est = "~" if sampled else ""  # a scaled count: an estimate
    total = "" if s.requests_exact else est  # the recorder stored how many requests it saw
    summary = [
        ("Sampling", sampling_note(s.sample_rate, s.recorded_operations, s.sampled_out)),
        ("Operations", f"{total}{s.operations:,}"), ("Requests", f"{total}{s.requests:,}"),
        ("Watch events", f"{s.watch_events:,}"), ("Reconciles", f"{s.reconciles:,}"),
        ("Errors", f"{est}{s.errors:,} ({fmt_percent(s.error_rate)})"),
        *([("Latency avg / max", f"{fmt_ms(lat.mean)} / {fmt_ms(lat.max)}"),
           ("Latency p50 / p95 / p99", f"{fmt_ms(lat.p50)} / {fmt_ms(lat.p95)} / {fmt_ms(lat.p99)}")]
          if lat.count else [("Latency", NO_TIMING)]),
        ("Ops/s (avg / peak)", f"{s.ops_per_s:.1f} / {s.peak_ops_per_s:.0f}"),
    ]
    # Watch events have no duration and a watch lasts as long as its stream: no latency shown;
    # a latency the source did not record (None) reads "-" too.
    endpoints = [(e.endpoint, f"{est if e.verb in LATENCY_VERBS else ''}{e.count:,}",
                  fmt_ms(e.avg_ms) if e.verb in LATENCY_VERBS else "-",
                  fmt_ms(e.p95_ms) if e.verb in LATENCY_VERBS else "-", f"{e.errors:,}",
                  f"SLOW (p95 >= {r.slow_ms:g} ms, see seq {e.max_seq})" if e.slow else "")
                 for e in r.endpoints]
    profiles = [(p.reconciler, f"{p.reconciles:,}", f"{p.failed:,}",
                 f"{fmt_ms(p.cycle_ms.p50)} / {fmt_ms(p.cycle_ms.p95)} / {fmt_ms(p.cycle_ms.p99)}"
                 + (f" ({p.cycle_ms.count:,} of {p.reconciles:,} timed)" if p.cycle_ms.count < p.reconciles else "")
                 if p.cycle_ms.count else "-",
                 (f"{p.slowest_op.verb} {p.slowest_op.target} {fmt_ms(p.slowest_op.ms)} (seq {p.slowest_op.seq})"
                  if p.slowest_op else "-"),
                 ", ".join(f"{v} {fmt_percent(x)}" for v, x in p.time_by_verb.items()) or "-",
                 p.bottleneck or "-") for p in r.reconcilers]
    findings = [(f.kind, f.target, f.detail, str(f.seq)) for f in r.findings]
    redaction = {True: "on", False: "OFF", None: "not recorded"}[sec.redaction]
    security = [
        ("Redaction of Secret values", redaction),
        ("Secret values redacted",
         "-" if sec.redacted_values is None else f"{sec.redacted_values:,}"),
        ("Operations on Secrets", f"{sec.secret_ops:,}"),
        ("Namespaces seen", ", ".join(sec.namespaces) or "-"),
        ("Proxy listen address", sec.listen or "not recorded"),
        ("Loopback only", {True: "yes", False: "NO", None: "unknown"}[sec.loopback_only]),
    ]
    writes = [(name, kind, f"{n:,}") for name, kinds in r.graph.writes_by_kind.items() for kind, n in kinds.items()]
    return {
        "Metadata": (("Field", "Value"), meta),
        "Summary": (("Measure", "Value"), summary),
        "Endpoints": (("Endpoint", "Count", "Avg", "p95", "Errors", "Flag"), endpoints),
        "Reconcilers": (("Reconciler", "Reconciles", "Failed", "Cycle p50 / p95 / p99", "Slowest op",
                         "Time per verb", "Bottleneck"), profiles),
        "Findings": (("Kind", "Where", "What", "Jump to seq"), findings),
        "Security": (("Check", "Value"), security),
        "Writes": (("Reconciler", "Kind", "Writes"), writes),
    }


def _notes(r: reportmod.Report) -> dict[str, str]:
    """The line under a section's title: the slow threshold, or that the section has no timing at all."""
    timed = any(e.avg_ms is not None for e in r.endpoints if e.verb in LATENCY_VERBS)
    notes = {"Endpoints": f"Slow threshold: {r.slow_ms:g} ms (p95)." if timed else NO_TIMING.capitalize() + "."}
    if r.reconcilers and not any(p.cycle_ms.count for p in r.reconcilers):
        notes["Reconcilers"] = "No timing data (the source recorded no cycle times)."
    return notes


TITLES = {
    "Metadata": "Session", "Summary": "Summary", "Endpoints": "Endpoints",
    "Reconcilers": "Reconciler cycle profile", "Findings": "Hot loops, 409 storms and cycles",
    "Security": "Security notes", "Writes": "Which reconciler writes which kind",
}


# --- Markdown ------------------------------------------------------------------------

def _md_cell(text: str) -> str:
    return safe(text).replace("|", "\\|")


def _md_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    if not rows:
        return ["_none_"]
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return out


def render_markdown(r: reportmod.Report) -> str:
    lines = [f"# replay-tui report: {safe(r.metadata.session)}", ""]
    notes = _notes(r)
    for name, (header, rows) in _sections(r).items():
        lines += [f"## {TITLES[name]}", ""]
        if name in notes:
            lines += [notes[name], ""]
        lines += _md_table(header, rows) + [""]
        if name == "Writes":
            lines += ["## Object graph", ""]
            if r.graph.truncated:
                lines += [f"(the {reportmod.GRAPH_NODES} most written objects)", ""]
            lines += ["```mermaid", r.graph.mermaid, "```", ""]
    return safe_block("\n".join(lines))  # every cell was escaped; this is the net under them


# --- HTML ----------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2rem;color:#1b1f24;
background:#fff;max-width:80rem}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #d0d7de}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}
th,td{border:1px solid #d0d7de;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}tr.slow td{background:#fff1e5}td.flag{color:#bc4c00;font-weight:600}
pre{background:#f6f8fa;padding:.75rem;overflow:auto;font-size:.8rem}
svg{border:1px solid #d0d7de;background:#fcfcfd}.muted{color:#57606a}svg.graph{max-width:100%;height:auto}
td:first-child{white-space:nowrap}details{margin:.5rem 0}
"""


def _html_table(header: tuple[str, ...], rows: list[tuple[str, ...]], slow_col: int | None = None) -> str:
    if not rows:
        return "<p class=\"muted\">none</p>"
    def esc(text: str) -> str:  # recorded text: control characters escaped, then HTML-escaped
        return html.escape(safe(text))
    out = ["<table><thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr></thead><tbody>"]
    for row in rows:
        slow = slow_col is not None and bool(row[slow_col])
        cells = "".join(f"<td class=\"flag\">{esc(c)}</td>" if slow and i == slow_col else f"<td>{esc(c)}</td>"
                        for i, c in enumerate(row))
        out.append(f"<tr class=\"slow\">{cells}</tr>" if slow else f"<tr>{cells}</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def latency_svg(r: reportmod.Report, width: int = 720, height: int = 200) -> str:
    """Ops per time bucket as bars and the p95 latency as a line, drawn from the stats timeline."""
    t = r.timeline
    n = max(1, len(t.counts))
    left, right, top, bottom = 48, 48, 12, 28
    w, h = width - left - right, height - top - bottom
    max_count = max(t.counts, default=0) or 1
    max_p95 = max(t.p95_ms, default=0.0) or 1.0
    bar = w / n
    # Inline SVG in HTML needs no xmlns: the file names no URL at all outside its text.
    parts = [f'<svg width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="operations and p95 latency over time">',
             f'<line x1="{left}" y1="{top + h}" x2="{left + w}" y2="{top + h}" stroke="#8c959f"/>']
    for i, c in enumerate(t.counts):
        bh = h * c / max_count
        err = t.errors[i] if i < len(t.errors) else 0
        eh = h * err / max_count
        x = left + i * bar
        parts.append(f'<rect x="{x:.1f}" y="{top + h - bh:.1f}" width="{max(bar - 1, 1):.1f}" '
                     f'height="{bh:.1f}" fill="#54aeff"><title>{c} ops, {err} errors</title></rect>')
        if eh:
            parts.append(f'<rect x="{x:.1f}" y="{top + h - eh:.1f}" width="{max(bar - 1, 1):.1f}" '
                         f'height="{eh:.1f}" fill="#cf222e"/>')
    # The p95 line is drawn only where there were requests: an empty interval is a gap, not 0 ms.
    runs: list[list[str]] = [[]]
    for i, p in enumerate(t.p95_ms):
        if p > 0:
            runs[-1].append(f"{left + (i + 0.5) * bar:.1f},{top + h - h * p / max_p95:.1f}")
        elif runs[-1]:
            runs.append([])
    for run in runs:
        if len(run) == 1:
            cx, cy = run[0].split(",")
            parts.append(f'<circle cx="{cx}" cy="{cy}" r="2.5" fill="#bc4c00"/>')
        elif run:
            parts.append(f'<polyline points="{" ".join(run)}" fill="none" stroke="#bc4c00" stroke-width="2"/>')
    parts += [
        f'<text x="4" y="{top + 10}" font-size="11" fill="#0969da">{max_count} ops</text>',
        f'<text x="{left + w + 4}" y="{top + 10}" font-size="11" fill="#bc4c00">'
        f'{html.escape(fmt_ms(max_p95) if any(p > 0 for p in t.p95_ms) else "-")}</text>',
        f'<text x="{left}" y="{height - 8}" font-size="11" fill="#57606a">'
        f'{html.escape(fmt_ts(t.start_ns))}</text>',
        f'<text x="{left + w}" y="{height - 8}" font-size="11" fill="#57606a" text-anchor="end">'
        f'+{html.escape(fmt_duration(t.width_ns * n))}</text>',
        "</svg>",
    ]
    return "".join(parts)


def graph_layers(nodes: list[str], edges: list[reportmod.GraphEdge]) -> dict[str, int]:
    """Each node's column: the longest chain of edges leading to it (cycles cut after len(nodes) rounds)."""
    layer = dict.fromkeys(nodes, 0)
    for _ in range(len(nodes)):
        changed = False
        for e in edges:
            if e.source in layer and e.target in layer and layer[e.target] < layer[e.source] + 1 <= len(nodes):
                layer[e.target] = layer[e.source] + 1
                changed = True
        if not changed:
            break
    return layer


def graph_svg(g: reportmod.ObjectGraph, box_w: int = 250, box_h: int = 26, gap_x: int = 110,
              gap_y: int = 14) -> str:
    """The object graph drawn in columns, left to right: no script, no library, no network.

    Rows follow the mean row of each node's sources (fewer crossings); an edge to the next
    column is a curve, any other (skipping columns, or going back) runs through the gaps
    between columns and along a lane of its own below the boxes, so it never crosses one."""
    if not g.nodes:
        return "<p class=\"muted\">no objects written</p>"

    def esc(text: str) -> str:
        return html.escape(safe(text))
    layer = graph_layers(g.nodes, g.edges)
    columns: dict[int, list[str]] = {}
    for n in g.nodes:
        columns.setdefault(layer[n], []).append(n)
    row: dict[str, float] = {}
    for _, names in sorted(columns.items()):
        def centre(n: str) -> float:
            rows = [row[e.source] for e in g.edges if e.target == n and e.source in row]
            return sum(rows) / len(rows) if rows else float("inf")
        order = {n: i for i, n in enumerate(names)}
        names.sort(key=lambda n: (centre(n), order[n]))
        row.update((n, float(i)) for i, n in enumerate(names))
    pos = {n: (8 + col * (box_w + gap_x), 8 + row[n] * (box_h + gap_y))
           for col, (_, names) in enumerate(sorted(columns.items())) for n in names}
    col_of = {n: col for col, (_, names) in enumerate(sorted(columns.items())) for n in names}
    routed = [e for e in g.edges if e.source in pos and e.target in pos and col_of[e.target] != col_of[e.source] + 1]
    boxes_bottom = 8 + max(len(c) for c in columns.values()) * (box_h + gap_y) - gap_y
    width = 16 + len(columns) * (box_w + gap_x) - gap_x
    height = boxes_bottom + 8 + 12 * len(routed) + (14 if routed else 0)
    parts = [f'<svg class="graph" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
             'aria-label="objects, their owners and the reconcilers writing them">']
    lane = 0
    for e in g.edges:
        if e.source not in pos or e.target not in pos:
            continue
        (sx, sy), (tx, ty) = pos[e.source], pos[e.target]
        color = "#0969da" if e.label.startswith("writes") else "#8c959f"
        if col_of[e.target] == col_of[e.source] + 1:
            x1, y1, x2, y2 = sx + box_w, sy + box_h / 2, tx, ty + box_h / 2
            mid = (x1 + x2) / 2
            path = f"M{x1:.0f},{y1:.0f} C{mid:.0f},{y1:.0f} {mid:.0f},{y2:.0f} {x2 - 6:.0f},{y2:.0f}"
            head = f"{x2:.0f},{y2:.0f} {x2 - 8:.0f},{y2 - 4:.0f} {x2 - 8:.0f},{y2 + 4:.0f}"
            lx, ly, anchor = x2 - 12, y2 - 4, "end"
        else:  # through the gaps between columns and a lane of its own below the boxes
            lane += 1
            off = 8 + 7 * lane % 42
            y1, y2 = sy + box_h / 2, ty + box_h / 2
            xs, xt = sx + box_w + off, tx - off
            yl = boxes_bottom + 4 + 12 * lane
            path = f"M{sx + box_w:.0f},{y1:.0f} H{xs:.0f} V{yl:.0f} H{xt:.0f} V{y2:.0f} H{tx - 6:.0f}"
            head = f"{tx:.0f},{y2:.0f} {tx - 8:.0f},{y2 - 4:.0f} {tx - 8:.0f},{y2 + 4:.0f}"
            lx, ly, anchor = xt - 4, yl - 2, "end"
        parts.append(f'<path d="{path}" fill="none" stroke="{color}" stroke-width="1.2"/>'
                     f'<polygon points="{head}" fill="{color}"/>'
                     f'<text x="{lx:.0f}" y="{ly:.0f}" font-size="10" fill="{color}" text-anchor="{anchor}">'
                     f'{esc(e.label)}</text>')
    for n, (x, y) in pos.items():
        reconciler = n.startswith("reconciler ")
        label = n.removeprefix("reconciler ")
        short = label if len(label) <= 38 else label[:17] + "…" + label[-20:]
        parts.append(f'<g><title>{esc(n)}</title><rect x="{x}" y="{y}" width="{box_w}" height="{box_h}" '
                     f'rx="{13 if reconciler else 3}" fill="{"#ddf4ff" if reconciler else "#f6f8fa"}" '
                     f'stroke="{"#0969da" if reconciler else "#8c959f"}"/>'
                     f'<text x="{x + box_w / 2}" y="{y + box_h / 2 + 4}" font-size="11" text-anchor="middle" '
                     f'fill="#1b1f24">{esc(short)}</text></g>')
    parts.append("</svg>")
    return "".join(parts)


def render_html(r: reportmod.Report) -> str:
    def esc(text: str) -> str:
        return html.escape(safe(text))
    body = [f"<h1>replay-tui report: {esc(r.metadata.session)}</h1>"]
    notes = _notes(r)
    for name, (header, rows) in _sections(r).items():
        body.append(f"<h2>{esc(TITLES[name])}</h2>")
        if name in notes:
            body.append(f"<p class=\"muted\">{esc(notes[name])}</p>")
        if name == "Summary":
            body.append(_html_table(header, rows))
            body.append("<p class=\"muted\">Bars: operations per interval (errors in red); "
                        + ("line: p95 request latency.</p>" if r.summary.latency_ms.count else
                           "no latency line: no timing data.</p>"))
            body.append(latency_svg(r))
            continue
        if name == "Endpoints":
            body.append(_html_table(header, rows, slow_col=5))
            continue
        body.append(_html_table(header, rows))
    body.append("<h2>Object graph</h2>")
    if r.graph.truncated:
        body.append(f"<p class=\"muted\">The {reportmod.GRAPH_NODES} most written objects.</p>")
    body.append("<p class=\"muted\">Reconcilers (rounded) write objects; owners point at what they own. "
                "The same graph as Mermaid source follows, for Markdown renderers.</p>")
    body.append(graph_svg(r.graph))
    body.append(f"<details><summary>Mermaid source</summary><pre class=\"mermaid\">"
                f"{html.escape(safe_block(r.graph.mermaid))}</pre></details>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>replay-tui report: {esc(r.metadata.session)}</title>"
            f"<style>{_CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


# --- the command ---------------------------------------------------------------------

def render(r: reportmod.Report, fmt: str) -> str:
    if fmt == "json":
        return safe_json(msgspec.json.encode(msgspec.to_builtins(r)).decode()) + "\n"
    if fmt == "html":
        return render_html(r)
    return render_markdown(r) + "\n"


# --- writing a file (the CLI's --out and the TUI's R) ------------------------------

EXTENSIONS = {".html": "html", ".htm": "html", ".md": "md", ".markdown": "md", ".json": "json"}
EXTENSION_LIST = ".html, .htm, .md, .markdown or .json"


def format_for(path: str, *, or_else: str = "") -> str:
    """The format a file name asks for, by its extension (how the TUI and ``--out`` pick one); an
    unknown one is refused rather than guessed (``or_else``: another way out, said in the error)."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in EXTENSIONS:
        raise RecordingError(f"{path}: {'extension ' + repr(ext) if ext else 'no extension'} "
                             f"is no report format (use {EXTENSION_LIST}{or_else})")
    return EXTENSIONS[ext]


def check_out(out: str, db: str | None = None) -> str:
    """Fail before the seconds-long build: the directory must exist and the file must not be the
    recording (writing never touches it).  Returns the absolute path."""
    path = os.path.abspath(os.path.expanduser(out))
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        raise RecordingError(f"{out}: no such directory {parent}")
    if os.path.isdir(path):
        raise RecordingError(f"{out}: is a directory")
    if db is not None and same_file(db, path):
        raise RecordingError(f"{out}: that is the recording itself; pick another file")
    return path


def write_text(out: str, text: str) -> int:
    """Write the rendered report; a write that fails halfway leaves no partial file. Returns bytes."""
    data = text.encode("utf-8")
    existed = os.path.exists(out)
    try:
        with open(out, "wb") as fh:
            fh.write(data)
    except OSError as exc:
        if not existed:
            try:
                os.unlink(out)
            except OSError:
                pass
        raise RecordingError(f"{out}: cannot write ({exc.strerror or exc})") from None
    return len(data)


async def report(db: str, session: str | None, *, fmt: str = "md", out: str | None = None,
                 slow_ms: float = 1000.0) -> int:
    """Build the report and print it, or write it to ``out`` (saying where on stderr)."""
    if fmt not in FORMATS:
        raise RecordingError(f"unknown format {fmt!r} (use md, json or html)")
    reportmod.check_slow_ms(slow_ms)
    path = check_out(out, db) if out is not None else None
    async with opened(db, session) as ses:
        data = await reportmod.build(ses, slow_ms=slow_ms)
    text = render(data, fmt)
    if path is None:
        sys.stdout.write(text)
        return 0
    write_text(path, text)
    print(f"wrote {fmt} report of session {safe(repr(data.metadata.session))} to {safe(out or path)}", file=sys.stderr)
    return 0
