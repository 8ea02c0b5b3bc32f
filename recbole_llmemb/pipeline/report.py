"""A comparison report that a person can read, from one or more results files.

    python -m recbole_llmemb.pipeline.report RESULTS... [--out DIR] [--baseline RUN_ID_OR_PATH_OR_MODEL]

RESULTS are results files (``recbole-llmemb/results/v1`` JSON, written by the runner) or
folders holding them. The report is ``DIR/index.md`` (and ``index.html``): one table per
section (overall, then each long-tail group), one row per run, scores on the test split,
each with its relative change against a baseline run; NDCG@10 per item-popularity and
user-history bucket as grouped bars; training curves from each run's ``history``.

Decisions (see the README):

* Baseline: ``--baseline`` picks a run by run id, results path or model name (the first
  run of that model). Without it, the first run of a plain RecBole model (one that RecBole
  ships, e.g. SASRec) is the baseline, because the question a report answers is "what do
  language-model embeddings add to the ID model?". No such run: no relative changes.
* Runs that do not compare (different dataset, split, order, eval mode, metric or topk set,
  or long-tail group definition) are refused with a ``ReportError`` saying which field
  differs; numbers measured differently never share a table.
* matplotlib is optional (``pip install 'recbole-llmemb[plots]'``) and imported lazily;
  without it the tables still render, with a one-line note. Charts use the Agg canvas
  directly, so calling this from a training script never changes its pyplot backend.
"""
import argparse
import html
import importlib.util
import json
import math
import os
import sys
from pathlib import Path

SCHEMA = "recbole-llmemb/results/v1"
GROUPS = {
    "item_head": "target item is popular (head)",
    "item_tail": "target item is in the long tail",
    "item_new": "target item was held out of training (new_items)",
    "user_short": "user has a short history",
    "user_long": "user has a long history",
}
BUCKETS = {
    "item_popularity": ("NDCG@10 per item-popularity bucket", "ndcg_item_popularity.png"),
    "user_history": ("NDCG@10 per user-history-length bucket", "ndcg_user_history.png"),
}
CURVES_FILE = "training_curves.png"
CHART_METRIC = "ndcg@10"
CHART_DPI = 100
CHART_PX = (1000, 500)  # every chart's size in pixels: fixed, so reports look alike
PLOTS_NOTE = "Charts skipped: matplotlib is not installed (pip install 'recbole-llmemb[plots]')."


class ReportError(ValueError):
    """Results that cannot be reported (unreadable, or runs that do not compare)."""


class Run:
    """One results file: its parsed JSON, where it came from, and its label in the report."""

    def __init__(self, path, data):
        self.path = Path(path)
        self.data = data
        self.run_id = data.get("run_id") or self.path.stem
        self.model = data.get("model", "?")
        self.dataset = data.get("dataset", "?")
        self.digest = data.get("config_digest", "")
        self.protocol = data.get("protocol", {})
        self.test = data.get("test") or {}
        self.label = self.model

    def metric_keys(self):
        """Metric columns in reading order: Hit then NDCG at each K (``hit@10, ndcg@10, ...``)."""
        metrics = [m.lower() for m in self.protocol.get("metrics", [])]
        topk = self.protocol.get("topk", [])
        keys = [f"{m}@{k}" for k in topk for m in metrics]
        return keys or sorted(self.test.get("overall", {}))


# ---------------------------------------------------------------- loading and checks


def load_runs(result_paths):
    """Read results files; a folder stands for the results files in it (by name)."""
    runs, seen = [], set()
    for given in result_paths:
        given = Path(given)
        if given.is_dir():
            candidates = [(p, False) for p in sorted(given.glob("*.json"))]
            if not candidates:
                raise ReportError(f"no results files (*.json) in {given}")
        else:
            candidates = [(given, True)]
        for path, explicit in candidates:
            if path.resolve() in seen:
                continue
            data = _read_json(path)
            if data.get("schema") != SCHEMA:
                if explicit:
                    raise ReportError(f"{path}: not a results file (schema {data.get('schema')!r}, "
                                      f"expected {SCHEMA!r})")
                continue  # some other JSON sitting in a results folder
            seen.add(path.resolve())
            runs.append(Run(path, data))
    if not runs:
        raise ReportError("no results files to report")
    _set_labels(runs)
    return runs


def _read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise ReportError(f"{path}: no such file") from None
    except (OSError, json.JSONDecodeError) as e:
        raise ReportError(f"{path}: cannot read results ({e})") from None
    if not isinstance(data, dict):
        raise ReportError(f"{path}: not a results file (not a JSON object)")
    return data


def _set_labels(runs):
    """Model names label runs; repeated models get the settings in which they differ (then the run id)."""
    for run in runs:
        same = [r for r in runs if r.model == run.model]
        if len(same) > 1:
            run.label = f"{run.model} [{_differing_settings(run, same) or run.digest[:6]}]"
    for run in runs:
        if sum(r.label == run.label for r in runs) > 1:
            run.label = run.run_id


def _differing_settings(run, runs, limit=4):
    """``key=value`` of this run for the settings that are not the same in all of ``runs``."""
    from recbole_llmemb.evaluation.results import _VOLATILE

    configs = [r.data.get("config", {}) for r in runs]
    keys = sorted({k for c in configs for k in c} - _VOLATILE - {"model"})
    mine = run.data.get("config", {})
    differing = [k for k in keys if any(c.get(k) != mine.get(k) for c in configs)]
    return ", ".join(f"{k}={mine.get(k)}" for k in differing[:limit]) + (", ..." if len(differing) > limit else "")


def _comparison_key(run):
    """What must be equal for two runs' numbers to mean the same thing."""
    p, test = run.protocol, run.test
    return {
        "dataset": run.dataset,
        "protocol": p.get("name", "full"),
        "split": p.get("split"),
        "order": p.get("order"),
        "eval mode": p.get("mode"),
        "metrics": sorted(m.lower() for m in p.get("metrics", [])),
        "topk": sorted(p.get("topk", [])),
        "long-tail definition": test.get("definition"),
    }


def check_comparable(runs):
    """Refuse runs whose scores were measured differently, naming every field that differs."""
    first, reference = runs[0], _comparison_key(runs[0])
    for run in runs[1:]:
        key = _comparison_key(run)
        diffs = [f"{name} {key[name]!r} vs {reference[name]!r}"
                 for name in reference if key[name] != reference[name]]
        if diffs:
            raise ReportError(f"runs do not compare: {run.run_id} differs from {first.run_id} in "
                              + "; ".join(diffs))


def is_recbole_model(name):
    """Whether RecBole ships a model by this name (found by its module file, without importing)."""
    spec = importlib.util.find_spec("recbole")
    if spec is None or not spec.submodule_search_locations:
        return False
    models = Path(list(spec.submodule_search_locations)[0]) / "model"
    return any(models.glob(f"*/{str(name).lower()}.py"))


def choose_baseline(runs, baseline=None):
    """The run the others are compared to: by run id, path or model; default: see the module doc."""
    if baseline is None:
        return next((r for r in runs if is_recbole_model(r.model)), None)
    baseline = str(baseline)
    for match in (lambda r: r.run_id == baseline,
                  lambda r: os.path.exists(baseline) and r.path.resolve() == Path(baseline).resolve(),
                  lambda r: r.model == baseline):
        found = [r for r in runs if match(r)]
        if found:
            return found[0]
    raise ReportError(f"baseline {baseline!r} is none of the runs' ids, results files or models")


# ---------------------------------------------------------------- numbers


def relative_change(value, base):
    """``+25.0%`` for 0.05 against 0.04; ``n/a`` where the baseline is zero or missing."""
    if not _is_number(value) or not _is_number(base) or base == 0:
        return "n/a"
    return f"{(value - base) / base * 100:+.1f}%"


def _is_number(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _score(value):
    return f"{value:.4f}" if _is_number(value) else "–"


def _section(run, group):
    """``(size, metrics)`` of the test split overall (``group=None``) or of one long-tail group."""
    if group is None:
        return run.test.get("n_rows"), run.test.get("overall", {})
    g = run.test.get("groups", {}).get(group, {})
    return g.get("size"), g.get("metrics", {})


#: the metric whose ratio to the baseline each table gives with its paired bootstrap interval
INTERVAL_METRIC = "ndcg@10"


def compare_to_baseline(runs, baseline):
    """``{id(run): {group: entry}}``: each run's NDCG@10 against the baseline's, every group at once (one
    comparison per run, not one per table); ``None`` where there is no interval to give."""
    from recbole_llmemb.evaluation.paired import compare_blocks

    out = {}
    for run in runs:
        compared = None
        if baseline is not None and run is not baseline:
            try:
                compared = compare_blocks(run.test, baseline.test, INTERVAL_METRIC)
            except (KeyError, ValueError):
                pass
        out[id(run)] = compared
    return out


def interval_cell(compared, group):
    """``1.06x [1.01, 1.11]``: a run's NDCG@10 over the baseline's with the 95% paired bootstrap interval
    over the users (targets) both evaluated; ``–`` for the baseline itself and runs that predate
    per-user records."""
    from recbole_llmemb.evaluation.paired import format_ratio

    return format_ratio(compared[group or "overall"]) if compared else "–"


def score_table(runs, baseline, compared, group=None):
    """One row per run: model, dataset, config, rows, each metric with its relative change, and the
    NDCG@10 ratio to the baseline with its paired interval (``compared``: ``compare_to_baseline``'s)."""
    keys = runs[0].metric_keys()
    header = ["Model", "Dataset", "Config", "Rows"] + keys + [f"{INTERVAL_METRIC} vs baseline [95% paired interval]"]
    base_metrics = _section(baseline, group)[1] if baseline else {}
    rows = []
    for run in runs:
        size, metrics = _section(run, group)
        name = run.label + (" (baseline)" if run is baseline and len(runs) > 1 else "")
        cells = [name, run.dataset, run.digest, str(size) if size is not None else "–"]
        for k in keys:
            cell = _score(metrics.get(k))
            if baseline is not None and run is not baseline and _is_number(metrics.get(k)):
                cell += f" ({relative_change(metrics.get(k), base_metrics.get(k))})"
            cells.append(cell)
        rows.append(cells + [interval_cell(compared[id(run)], group)])
    return header, rows


DIAGNOSTICS = ("effective_rank", "near_duplicate_share", "top5_energy", "coverage@10", "tail_share@10", "mean_popularity@10")


def diagnostics_table(runs):
    header = ["run"] + list(DIAGNOSTICS)
    rows = [[run.label] + [(run.test.get("diagnostics") or {}).get(k, "–") for k in DIAGNOSTICS] for run in runs]
    return header, rows


def runs_table(runs, out_dir):
    """Where each run came from and what it cost, linked to its results file."""
    header = ["Run", "Model", "Config", "Created", "Best valid (epoch)", "Train s", "s/epoch",
              "Results"]
    rows = []
    for run in runs:
        d, timing = run.data, run.data.get("timing", {})
        best = f"{_score(d.get('best_valid_score'))} ({d.get('best_valid_epoch', '–')})"
        rows.append([run.run_id, run.model, run.digest, d.get("created", "–"), best,
                     _seconds(timing.get("stages", {}).get("train")),
                     _seconds(timing.get("epoch_seconds_mean")),
                     Link(run.path.name, _relative(run.path, out_dir))])
    return header, rows


def _seconds(x):
    return f"{x:.1f}" if _is_number(x) else "–"


def _relative(path, out_dir):
    try:
        return Path(os.path.relpath(Path(path).resolve(), Path(out_dir).resolve())).as_posix()
    except ValueError:  # another drive on Windows
        return Path(path).resolve().as_posix()


# ---------------------------------------------------------------- charts


class Link:
    """A table cell or list item that links somewhere."""

    def __init__(self, text, href):
        self.text, self.href = text, href


def _new_figure():
    """A fixed-size figure on the Agg canvas, or None when matplotlib is not installed."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return None
    fig = Figure(figsize=(CHART_PX[0] / CHART_DPI, CHART_PX[1] / CHART_DPI), dpi=CHART_DPI)
    FigureCanvasAgg(fig)
    return fig


def plots_available():
    """Whether charts can be drawn (matplotlib importable)."""
    return _new_figure() is not None


def bucket_chart(runs, bucket, path):
    """Grouped bars: NDCG@10 per bucket, one bar per run. Returns False if nothing to draw."""
    labels, sizes = [], {}
    for run in runs:
        for b in run.test.get("buckets", {}).get(bucket, []):
            if b.get("label") not in sizes:
                labels.append(b.get("label"))
                sizes[b.get("label")] = b.get("size")
    if not labels:
        return False
    fig = _new_figure()
    ax = fig.add_subplot()
    width = 0.8 / len(runs)
    for i, run in enumerate(runs):
        by_label = {b.get("label"): b for b in run.test.get("buckets", {}).get(bucket, [])}
        heights = [by_label.get(lab, {}).get("metrics", {}).get(CHART_METRIC, float("nan"))
                   for lab in labels]
        ax.bar([x - 0.4 + width * (i + 0.5) for x in range(len(labels))], heights, width,
               label=run.label)
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels([f"{lab}\n(n={sizes[lab]})" if sizes[lab] is not None else str(lab)
                        for lab in labels], fontsize=8)
    ax.set_ylabel("NDCG@10 (test)")
    ax.set_title(BUCKETS[bucket][0])
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=CHART_DPI)
    return True


def curves_chart(runs, path):
    """Train loss and validation score per epoch, one line per run. False if no history."""
    runs = [r for r in runs if r.data.get("history")]
    if not runs:
        return False
    fig = _new_figure()
    loss_ax, valid_ax = fig.subplots(1, 2)
    for run in runs:
        hist = run.data["history"]
        for ax, key in ((loss_ax, "train_loss"), (valid_ax, "valid_score")):
            points = [(h.get("epoch", i), h[key]) for i, h in enumerate(hist)
                      if _is_number(h.get(key))]  # no validation in some epochs (eval_step)
            if points:
                ax.plot(*zip(*points), marker=".", label=run.label)
    valid_metrics = {r.protocol.get("valid_metric", "?") for r in runs}
    loss_ax.set(title="Train loss", xlabel="epoch")
    valid_ax.set(title="Validation score", xlabel="epoch", ylabel=" / ".join(sorted(valid_metrics)))
    for ax in (loss_ax, valid_ax):
        ax.xaxis.get_major_locator().set_params(integer=True)  # epochs are whole numbers
        ax.grid(alpha=0.3)
        if ax.get_lines():
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=CHART_DPI)
    return True


# ---------------------------------------------------------------- the document


def build_blocks(runs, baseline, out_dir, draw):
    """The report as a list of blocks (heading, paragraph, table, image), for any output format."""
    first = runs[0]
    p = first.protocol
    blocks = [("h1", f"Comparison report: {first.dataset}")]
    blocks.append(("p", f"{len(runs)} run(s). Scores are on the test split; protocol: split "
                        f"{_plain(p.get('split'))}, order {p.get('order')}, mode {p.get('mode')}."))
    if baseline is not None and len(runs) > 1:
        blocks.append(("p", f"Percentages are relative changes against the baseline {baseline.label} "
                            f"({baseline.run_id}); choose another with --baseline."))
    elif len(runs) > 1:
        blocks.append(("p", "No baseline (no plain RecBole model among the runs): "
                            "choose one with --baseline to see relative changes."))
    blocks += [("h2", "Runs"), ("table",) + runs_table(runs, out_dir)]
    compared = compare_to_baseline(runs, baseline)
    blocks += [("h2", "Overall"), ("table",) + score_table(runs, baseline, compared)]
    blocks += [("h2", "Collapse diagnostics"),
               ("p", "Effective rank of the item table (exp of the entropy of its normalised singular values), "
                     "share of items with a near-duplicate (cosine > 0.95 after centring), and the test top-10 "
                     "lists' catalogue coverage, share of tail items and mean training count of listed items."),
               ("table",) + diagnostics_table(runs)]
    definition = first.test.get("definition")
    blocks.append(("h2", "Long-tail groups"))
    blocks.append(("p", "Rows: evaluated rows (a user with their target item) in the group."
                   + (f" Group definition: {_plain(definition)}." if definition else "")))
    for group, meaning in GROUPS.items():
        if group == "item_new" and group not in first.test.get("groups", {}):
            continue
        blocks += [("h3", f"{group}: {meaning}"), ("table",) + score_table(runs, baseline, compared, group)]

    blocks.append(("h2", "Charts"))
    if not draw:
        blocks.append(("p", PLOTS_NOTE))
        return blocks
    for bucket, (title, filename) in BUCKETS.items():
        if bucket_chart(runs, bucket, Path(out_dir) / filename):
            blocks.append(("img", title, filename))
    if curves_chart(runs, Path(out_dir) / CURVES_FILE):
        blocks.append(("img", "Training curves (train loss, validation score per epoch)",
                       CURVES_FILE))
    return blocks


def _plain(value):
    """A dict as ``k=v, k=v`` for prose."""
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def render_markdown(blocks):
    out = []
    for kind, *rest in blocks:
        if kind in ("h1", "h2", "h3"):
            out.append("#" * int(kind[1]) + " " + rest[0])
        elif kind == "p":
            out.append(rest[0])
        elif kind == "img":
            out.append(f"![{rest[0]}]({rest[1]})")
        elif kind == "table":
            header, rows = rest

            def line(cells):
                return "| " + " | ".join(_md_cell(c) for c in cells) + " |"

            out.append("\n".join([line(header), "|" + "---|" * len(header)]
                                 + [line(r) for r in rows]))
        out.append("")
    return "\n".join(out)


def _md_cell(cell):
    if isinstance(cell, Link):
        return f"[{cell.text}]({cell.href})".replace("|", "\\|")
    return str(cell).replace("|", "\\|")


def render_html(blocks):
    body = []
    for kind, *rest in blocks:
        if kind in ("h1", "h2", "h3"):
            body.append(f"<{kind}>{html.escape(rest[0])}</{kind}>")
        elif kind == "p":
            body.append(f"<p>{html.escape(rest[0])}</p>")
        elif kind == "img":
            body.append(f'<figure><img src="{html.escape(rest[1])}" alt="{html.escape(rest[0])}">'
                        f"<figcaption>{html.escape(rest[0])}</figcaption></figure>")
        elif kind == "table":
            header, rows = rest
            head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
            trs = "".join("<tr>" + "".join(f"<td>{_html_cell(c)}</td>" for c in r) + "</tr>"
                          for r in rows)
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{trs}</tbody></table>")
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto}"
             "table{border-collapse:collapse;margin:.5em 0}"
             "td,th{border:1px solid #ccc;padding:.2em .5em;text-align:right}"
             "td:first-child,th:first-child{text-align:left}img{max-width:100%}")
    title = html.escape(blocks[0][1]) if blocks else "Report"
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title>"
            f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def _html_cell(cell):
    if isinstance(cell, Link):
        return f'<a href="{html.escape(cell.href)}">{html.escape(cell.text)}</a>'
    return html.escape(str(cell))


# ---------------------------------------------------------------- entry points


def write_report(result_paths, out_dir, baseline=None):
    """Write ``out_dir/index.md`` and ``index.html`` (+ PNG charts); return the index.md path.

    Raises ``ReportError`` for unreadable results or runs that do not compare.
    """
    if isinstance(result_paths, (str, os.PathLike)):
        result_paths = [result_paths]
    runs = load_runs(result_paths)
    check_comparable(runs)
    base = choose_baseline(runs, baseline)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    blocks = build_blocks(runs, base, out_dir, draw=plots_available())
    (out_dir / "index.html").write_text(render_html(blocks), encoding="utf-8")
    index = out_dir / "index.md"
    index.write_text(render_markdown(blocks), encoding="utf-8")
    return index


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m recbole_llmemb.pipeline.report",
        description="Compare runs: Markdown/HTML tables (overall and long-tail groups) and charts.")
    parser.add_argument("results", nargs="+", help="results files, or folders of them")
    parser.add_argument("--out", default="report", help="output folder (default: ./report)")
    parser.add_argument("--baseline", default=None,
                        help="run id, results path or model name to compare against "
                             "(default: the first run of a plain RecBole model)")
    args = parser.parse_args(argv)
    try:
        index = write_report(args.results, args.out, args.baseline)
    except ReportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(index)
    if not plots_available():
        print(PLOTS_NOTE, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
