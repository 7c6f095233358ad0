"""The report as one HTML page: inline CSS, PNGs as data URIs, no script, no external file.

Every string that comes from the run (paths, class names, error reasons, ids) goes through
``_e`` (html.escape): file names are user data, and a page that runs them is an attack.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from fruits_features.report.cost import CostEstimate, EmrRunInfo
from fruits_features.report.load import RunData
from fruits_features.report.metrics import VARIANCE_TARGETS, NeighbourScore, components_needed
from fruits_features.report.plots import LEGEND_MAX_CLASSES, class_style

# Above these 1-NN accuracies the features are fine / worth a look. Fruits-360 photos are
# centred fruits on white: the pretrained weights score ~0.95-1.0. Untrained weights still
# score 0.6-0.95 there (colour alone tells many fruits apart), hence the second signal:
# their features vary along one direction, PC 1 alone carrying 60-97% of the variance
# (pretrained: 18-36%), measured on the sample images with 6 seeds.
KNN_GOOD = 0.90
KNN_DOUBTFUL = 0.60
DOMINANT_PC1_SHARE = 0.50
MARKER_GLYPHS = {"o": "●", "s": "■", "^": "▲", "D": "◆", "v": "▼", "P": "✚", "X": "✖", "*": "★"}
# Longer tables scroll inside their section instead of pushing the rest down the page.
SCROLL_ROWS = 25


@dataclass(frozen=True)
class Figures:
    variance: bytes | None
    pca_map: bytes | None
    stages: bytes | None


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _int(value: object) -> str:
    return f"{value:,}" if isinstance(value, int) else "—"


def _pct(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}%}"


def duration_text(seconds: float | None) -> str:
    if seconds is None:
        return "not recorded"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _when(value: str | datetime | None) -> str:
    if value is None:
        return "not recorded"
    try:
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    except ValueError:
        return str(value)
    zone = moment.strftime("%Z") or ("UTC" if moment.utcoffset() is None else "")
    return f"{moment:%Y-%m-%d %H:%M:%S} {zone}".strip()


def _img(png: bytes | None, alt: str, css_class: str = "plot") -> str:
    if png is None:
        return '<p class="muted">Nothing to plot for this run.</p>'
    data = base64.b64encode(png).decode("ascii")
    return f'<img class="{css_class}" alt="{_e(alt)}" src="data:image/png;base64,{data}">'


def _table(
    head: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    numeric: Sequence[int] = (),
    css_class: str = "",
) -> str:
    """Cells are HTML already: callers escape what comes from the run."""
    rows = list(rows)
    header = "".join(
        f'<th class="num">{h}</th>' if i in numeric else f"<th>{h}</th>" for i, h in enumerate(head)
    )
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>"
            for i, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    table = (
        f'<table class="{css_class}"><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>'
    )
    if len(rows) > SCROLL_ROWS:
        return f'<div class="scroll">{table}</div>'
    return table


def _kv(pairs: Iterable[tuple[str, str]]) -> str:
    return '<dl class="kv">' + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in pairs) + "</dl>"


def _tile(label: str, value: str, note: str = "", tone: str = "") -> str:
    note_html = f'<div class="note">{note}</div>' if note else ""
    return (
        f'<div class="tile {tone}"><div class="label">{label}</div>'
        f'<div class="value">{value}</div>{note_html}</div>'
    )


def quality_verdict(score: NeighbourScore | None, pc1_share: float | None) -> tuple[str, str]:
    """(tone, word) for the features: from the 1-NN accuracy and the share of PC 1."""
    if score is None:
        return "", "not measured"
    if score.accuracy < KNN_DOUBTFUL:
        return "bad", "poor"
    if score.accuracy < KNN_GOOD or (pc1_share is not None and pc1_share > DOMINANT_PC1_SHARE):
        return "warn", "doubtful"
    return "good", "good"


def status_of(run: RunData) -> tuple[str, str]:
    """(tone, text): OK, with errors, or incomplete when _SUCCESS is missing."""
    errors = run.counts.get("errors", len(run.errors))
    if not run.complete:
        return "bad", "incomplete (no _SUCCESS)"
    if errors:
        return "warn", f"with errors ({errors:,})"
    return "good", "OK"


def _consistency(run: RunData) -> list[str]:
    """Disagreements between model_info and the files: they mean a partial download."""
    problems = []
    counts = run.counts
    if run.pca is not None and isinstance(counts.get("features"), int):
        if len(run.pca) != counts["features"]:
            problems.append(
                f"model_info counts {counts['features']:,} images with features, "
                f"pca/parquet holds {len(run.pca):,} rows"
            )
    elif run.pca is None:
        problems.append("pca/parquet is missing or empty: no map and no 1-NN score")
    if run.errors_file and isinstance(counts.get("errors"), int):
        if len(run.errors) != counts["errors"]:
            problems.append(
                f"model_info counts {counts['errors']:,} errors, "
                f"errors/errors.csv lists {len(run.errors):,}"
            )
    elif not run.errors_file:
        problems.append("errors/errors.csv is missing: failed files cannot be listed")
    return problems


def _header(run: RunData) -> str:
    info = run.info
    tone, status = status_of(run)
    meta = _kv(
        [
            ("Mode", _e(info.get("mode", "—"))),
            ("Engine", _e(info.get("engine", "—"))),
            ("Date", _e(_when(info.get("started_at")))),
            ("Duration", _e(duration_text(info.get("duration_seconds")))),
            ("Input", f"<code>{_e(run.input_uri or '—')}</code>"),
            ("Output", f"<code>{_e(run.output_uri or '—')}</code>"),
        ]
    )
    return (
        '<header><div class="eyebrow">fruits-features · run report</div>'
        f'<h1>Run <span class="runid">{_e(info.get("run_id", "?"))}</span> '
        f'<span class="badge {tone}">{_e(status)}</span></h1>{meta}</header>'
    )


def _problems(run: RunData) -> str:
    problems = _consistency(run)
    if not problems:
        return ""
    items = "".join(f"<li>{_e(p)}</li>" for p in problems)
    return f'<div class="alert"><strong>Check this run:</strong><ul>{items}</ul></div>'


def _pc1_share(run: RunData) -> float | None:
    return run.explained[0] if run.explained else None


def _tiles(run: RunData, score: NeighbourScore | None) -> str:
    counts = run.counts
    tone, verdict = quality_verdict(score, _pc1_share(run))
    errors = counts.get("errors", len(run.errors))
    return (
        '<section class="tiles">'
        + _tile("Images selected", _int(counts.get("images_selected")))
        + _tile("With features", _int(counts.get("features")))
        + _tile("Errors", _int(errors), tone="warn" if errors else "good")
        + _tile("Classes", _int(len(run.per_class)))
        + _tile(
            "1-NN accuracy",
            _pct(score.accuracy if score else None),
            _e(verdict),
            tone=tone,
        )
        + _tile(
            f"Variance at K={len(run.explained)}",
            _pct(run.cumulative[-1] if run.cumulative else None),
        )
        + "</section>"
    )


def _quality(run: RunData, score: NeighbourScore | None) -> str:
    pc1 = _pc1_share(run)
    if score is None:
        body = (
            '<p class="muted">Not measured: it needs PCA features of at least two images '
            "of at least two classes.</p>"
        )
    else:
        tone, verdict = quality_verdict(score, pc1)
        sample = (
            f"all {score.images:,} images"
            if score.images == score.total
            else f"a fixed sample of {score.images:,} of the {score.total:,} images"
        )
        body = (
            f'<div class="quality"><div class="big {tone}">{_pct(score.accuracy)}</div>'
            f'<p class="lead">For <strong>{_pct(score.accuracy)}</strong> of the images, the '
            "nearest other image in PCA space is of the same fruit class (a random neighbour "
            f"would match {_pct(score.chance)}). The pretrained weights with correct "
            "preprocessing score above "
            f"{KNN_GOOD:.0%} on Fruits-360; a lower value, or one principal component "
            f"carrying more than {DOMINANT_PC1_SHARE:.0%} of the variance, means the weights or "
            "the preprocessing are likely wrong.</p></div>"
            + (
                '<div class="alert">'
                f"<strong>PC 1 alone carries {_pct(pc1)} of the variance.</strong> The "
                "features vary along one direction only, as those of untrained weights or "
                "of wrongly scaled images do: check the weights file and the preprocessing."
                "</div>"
                if pc1 is not None and pc1 > DOMINANT_PC1_SHARE
                else ""
            )
            + _kv(
                [
                    ("Verdict", f'<span class="badge {tone}">{_e(verdict)}</span>'),
                    ("Method", f"leave-one-out 1-nearest-neighbour, {_e(score.metric)} distance"),
                    ("Scored", _e(sample) + f", {score.classes:,} classes"),
                    ("Random neighbour", _pct(score.chance)),
                    (
                        "Variance of PC 1",
                        _pct(pc1) + f" (suspicious above {DOMINANT_PC1_SHARE:.0%})",
                    ),
                ]
            )
        )
    return f'<section id="quality"><h2>Feature quality</h2>{body}</section>'


def _variance(run: RunData, figures: Figures) -> str:
    k = len(run.explained)
    if not k:
        return (
            '<section id="variance"><h2>Explained variance</h2>'
            '<p class="muted">No explained variance recorded for this run.</p></section>'
        )
    rows = []
    for target in VARIANCE_TARGETS:
        needed = components_needed(run.cumulative, target)
        rows.append(
            (
                _pct(target, 0),
                str(needed) if needed else f'<span class="muted">not reached with K={k}</span>',
            )
        )
    rows.append((f"kept by K={k}", f"<strong>{_pct(run.cumulative[-1])}</strong>"))
    table = _table(["cumulative variance", "components needed"], rows, numeric=(1,))
    return (
        '<section id="variance"><h2>Explained variance</h2>'
        "<p>Share of the variance of the 1280-d features kept by each principal component "
        "(bars) and by the first n components together (line).</p>"
        f'<div class="split"><div>{_img(figures.variance, "explained variance")}</div>'
        f"<div>{table}</div></div></section>"
    )


def _map(run: RunData, figures: Figures) -> str:
    classes = len(run.per_class)
    return (
        '<section id="map"><h2>Map of the images</h2>'
        "<p>Each point is an image, placed by its first two principal components and "
        "coloured by class; the numbers sit at the centre of each class and match the "
        f'<a href="#classes">per-class table</a> ({classes:,} classes). Well separated '
        "groups mean the features tell the fruits apart."
        + (
            " With this many classes, two dimensions cannot keep every group apart: "
            "overlap here is expected, the 1-NN score above uses all components."
            if classes > LEGEND_MAX_CLASSES
            else ""
        )
        + "</p>"
        f"{_img(figures.pca_map, 'images on the first two principal components')}</section>"
    )


def _counts(run: RunData) -> str:
    counts = run.counts
    overall = _table(
        ["", "count"],
        [
            ("files listed", _int(counts.get("files_listed"))),
            ("non-image files (skipped)", _int(counts.get("non_image_files"))),
            ("images selected", _int(counts.get("images_selected"))),
            ("images with features", _int(counts.get("features"))),
            ("errors", _int(counts.get("errors"))),
            ("classes", _int(len(run.per_class))),
            ("feature rows in features/parquet", _int(run.feature_rows)),
            ("rows in pca/parquet", _int(None if run.pca is None else len(run.pca))),
        ],
        numeric=(1,),
    )
    rows = []
    for index, (label, (selected, failed)) in enumerate(run.per_class.items()):
        colour, marker = class_style(index)
        swatch = f'<span class="swatch" style="color:{colour}">{MARKER_GLYPHS[marker]}</span> '
        rows.append(
            (
                str(index + 1),
                swatch + _e(label),
                _int(selected),
                _int(selected - failed),
                f'<span class="warn-text">{failed:,}</span>' if failed else "0",
            )
        )
    per_class = _table(
        ["#", "class", "images", "with features", "errors"], rows, numeric=(0, 2, 3, 4)
    )
    return (
        '<section id="counts"><h2>Counts</h2>'
        f'<div class="split narrow"><div>{overall}</div>'
        f'<div id="classes"><h3>Per class</h3>{per_class}</div></div></section>'
    )


def _errors(run: RunData) -> str:
    if not run.errors_file:
        body = '<p class="muted">errors/errors.csv is missing from this run folder.</p>'
    elif not run.errors:
        body = '<p class="ok-text">No errors: every selected image has features.</p>'
    else:
        rows = [
            (
                f'<span class="file">{_e(row.file_name)}</span>'
                f'<span class="path">{_e(row.path)}</span>',
                _e(row.label),
                _int(row.bytes),
                f'<span class="reason">{_e(row.reason)}</span>',
            )
            for row in run.errors
        ]
        body = (
            f"<p>{len(run.errors):,} file(s) could not be read; they have no features and "
            "are left out of the PCA.</p>"
            + _table(["file", "class", "bytes", "reason"], rows, numeric=(2,), css_class="errors")
        )
    return f'<section id="errors"><h2>Errors</h2>{body}</section>'


def _performance(run: RunData, figures: Figures) -> str:
    info = run.info
    stages = run.stages
    rows = [
        (
            _e(name),
            f"{float(values.get('seconds', 0.0)):,.1f}",
            f"{values['images_per_second']:,.2f}" if "images_per_second" in values else "—",
        )
        for name, values in stages.items()
    ]
    table = (
        _table(["stage", "seconds", "images/s"], rows, numeric=(1, 2))
        if rows
        else '<p class="muted">No stage timings recorded for this run.</p>'
    )
    settings = _kv(
        [
            ("Engine", _e(info.get("engine", "—"))),
            ("Total", _e(duration_text(info.get("duration_seconds")))),
            ("Image size", _e(info.get("image_size", "—"))),
            ("Batch size", _e(info.get("batch_size", "—"))),
            ("Partitions", _e(info.get("partitions", "—"))),
            ("PCA components", _e(info.get("pca_components", "—"))),
        ]
    )
    plot = _img(figures.stages, "stage durations") if figures.stages else ""
    return (
        '<section id="performance"><h2>Stages and speed</h2>'
        f'<div class="split narrow"><div>{table}{settings}</div><div>{plot}</div></div>'
        "</section>"
    )


def _provenance(run: RunData) -> str:
    info = run.info
    weights = info.get("weights") or {}
    versions = info.get("versions") or {}
    version_rows = [(_e(name), f"<code>{_e(value)}</code>") for name, value in versions.items()]
    return (
        '<section id="provenance"><h2>Model and versions</h2>'
        + _kv(
            [
                ("Weights", f"<code>{_e(weights.get('uri', '—'))}</code>"),
                ("Weights SHA-256", f'<code class="sha">{_e(weights.get("sha256", "—"))}</code>'),
                ("Feature dimension", _e(info.get("feature_dim", "—"))),
                ("Started", _e(_when(info.get("started_at")))),
                ("Finished", _e(_when(info.get("finished_at")))),
            ]
        )
        + (
            _table(["component", "version"], version_rows)
            if version_rows
            else '<p class="muted">No versions recorded for this run.</p>'
        )
        + "</section>"
    )


def _emr(emr: EmrRunInfo, cost: CostEstimate, prices: Mapping[str, float]) -> str:
    rows = []
    for group in emr.instance_groups:
        price = prices.get(group.instance_type)
        rows.append(
            (
                _e(group.role),
                f"<code>{_e(group.instance_type)}</code>",
                _int(group.count),
                "unknown" if price is None else f"${price:,.3f}",
                "unknown" if price is None else f"${group.count * price:,.3f}",
            )
        )
    total = (
        f"<strong>${cost.total_usd:,.2f}</strong>"
        if cost.total_usd is not None
        else '<span class="warn-text">unknown: no price for '
        + _e(", ".join(cost.missing_prices))
        + "</span>"
    )
    running = " (still running when this report was made)" if cost.still_running else ""
    return (
        '<section id="emr"><h2>EMR cluster and cost</h2>'
        + _kv(
            [
                ("Cluster id", f"<code>{_e(emr.cluster_id)}</code>"),
                ("Created", _e(_when(emr.created_at))),
                ("Terminated", _e(_when(emr.terminated_at)) + _e(running)),
                ("Wall time", _e(duration_text(cost.wall_hours * 3600))),
                ("Instances per hour", f"${cost.hourly_usd:,.3f}"),
                ("Estimated cost", total),
            ]
        )
        + _table(
            ["group", "instance type", "count", "$/hour each", "$/hour"],
            rows,
            numeric=(2, 3, 4),
        )
        + '<p class="muted small">Estimate: wall time from cluster creation to termination × '
        "Σ count × hourly price (on-demand EC2 + EMR uplift). EBS, S3, data transfer and "
        "discounts are not included.</p></section>"
    )


CSS = """
:root { --ink:#1f2933; --muted:#616e7c; --line:#e4e7eb; --bg:#f5f7fa; --card:#fff;
  --accent:#2f6fde; --good:#1b873f; --warn:#b35c00; --bad:#c62828; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink);
  font: 15px/1.5 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", "DejaVu Sans", Arial,
  sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 28px 28px 48px; }
header, section { background:var(--card); border:1px solid var(--line); border-radius:10px;
  padding: 20px 24px; margin-bottom: 18px; }
header { border-top: 4px solid var(--accent); }
.eyebrow { text-transform: uppercase; letter-spacing: .08em; font-size: 12px;
  color: var(--muted); font-weight: 600; }
h1 { font-size: 26px; margin: 4px 0 14px; font-weight: 700; }
h1 .badge { font-size: 13px; vertical-align: middle; margin-left: 8px; }
h2 { font-size: 18px; margin: 0 0 12px; padding-bottom: 8px; border-bottom: 1px solid var(--line); }
h3 { font-size: 15px; margin: 0 0 8px; }
p { margin: 0 0 12px; }
a { color: var(--accent); }
code { font: 13px/1.4 "DejaVu Sans Mono", Menlo, Consolas, monospace; word-break: break-all; }
.muted { color: var(--muted); } .small { font-size: 13px; }
.kv { display:grid; grid-template-columns: max-content 1fr; gap: 4px 18px; margin: 0 0 12px; }
.kv dt { color: var(--muted); } .kv dd { margin: 0; }
.badge { display:inline-block; padding: 1px 10px; border-radius: 999px; font-size: 13px;
  font-weight: 600; background:#e4e7eb; color: var(--ink); }
.badge.good { background:#e3f4e8; color: var(--good); }
.badge.warn { background:#fff1e0; color: var(--warn); }
.badge.bad { background:#fde7e7; color: var(--bad); }
.tiles { display:grid; grid-template-columns: repeat(6, 1fr); gap: 12px; background: none;
  border: none; padding: 0; }
.tile { background: var(--card); border:1px solid var(--line); border-radius: 10px;
  padding: 12px 14px; }
.tile .label { font-size: 12px; color: var(--muted); text-transform: uppercase;
  letter-spacing: .04em; }
.tile .value { font-size: 24px; font-weight: 700; font-variant-numeric: tabular-nums; }
.tile .note { font-size: 12px; color: var(--muted); }
.tile.good .value, .big.good, .ok-text { color: var(--good); }
.tile.warn .value, .big.warn, .warn-text { color: var(--warn); }
.tile.bad .value, .big.bad { color: var(--bad); }
.quality { display:flex; gap: 24px; align-items: center; margin-bottom: 8px; }
.quality .big { font-size: 44px; font-weight: 800; font-variant-numeric: tabular-nums; }
.quality .lead { margin: 0; max-width: 800px; }
.alert { background:#fff8e6; border:1px solid #f5d08a; border-radius: 10px;
  padding: 12px 18px; margin-bottom: 18px; }
.alert ul { margin: 6px 0 0; padding-left: 20px; }
.split { display:grid; grid-template-columns: 2fr 1fr; gap: 24px; align-items: start; }
.split.narrow { grid-template-columns: 1fr 1fr; }
img.plot { max-width: 100%; height: auto; display:block; }
table { border-collapse: collapse; width: 100%; font-size: 14px; margin-bottom: 12px; }
th { text-align: left; font-weight: 600; color: var(--muted); font-size: 12px;
  text-transform: uppercase; letter-spacing: .04em; border-bottom: 2px solid var(--line);
  padding: 6px 10px; background: var(--card); position: sticky; top: 0; }
td { border-bottom: 1px solid var(--line); padding: 6px 10px; vertical-align: top; }
tbody tr:nth-child(even) td { background: #fafbfc; }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.scroll { max-height: 560px; overflow: auto; border: 1px solid var(--line); border-radius: 6px; }
.scroll table { margin: 0; }
.swatch { display:inline-block; width: 1.3em; font-size: 15px; }
.errors .file { display:block; font-weight: 600; word-break: break-all; }
.errors .path { display:block; color: var(--muted); font: 12px/1.4 "DejaVu Sans Mono",
  Menlo, Consolas, monospace; word-break: break-all; }
.errors .reason { font: 13px/1.4 "DejaVu Sans Mono", Menlo, Consolas, monospace;
  white-space: pre-wrap; word-break: break-word; }
.sha { font-size: 12.5px; }
footer { color: var(--muted); font-size: 13px; text-align: center; margin-top: 24px; }
@media (max-width: 900px) { .tiles { grid-template-columns: repeat(3, 1fr); }
  .split, .split.narrow { grid-template-columns: 1fr; } }
"""


def render_html(
    run: RunData,
    figures: Figures,
    score: NeighbourScore | None,
    generated_at: datetime,
    emr: tuple[EmrRunInfo, CostEstimate, Mapping[str, float]] | None = None,
) -> str:
    title = f"Run {run.info.get('run_id', '?')} · fruits-features report"
    parts = [
        _header(run),
        _problems(run),
        _tiles(run, score),
        _quality(run, score),
        _variance(run, figures),
        _map(run, figures),
        _counts(run),
        _errors(run),
        _performance(run, figures),
        _provenance(run),
        _emr(*emr) if emr else "",
    ]
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body><main>"
        + "".join(parts)
        + f"<footer>Generated {_e(_when(generated_at))} by "
        "<code>python -m fruits_features.report</code> from "
        f"<code>{_e(run.folder)}</code></footer></main></body></html>\n"
    )
