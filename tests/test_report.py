"""The comparison report, from hand-made results files with known numbers."""
import copy
import math
import json
import struct
import sys

import pytest

from recbole_llmemb.pipeline import report


def results(model, run_id, ndcg10, hit10=0.10, scale=1.0, dataset="ml-100k"):
    """A results file (schema v1) whose scores are known: groups and buckets scale the overall."""

    def metrics(f=1.0):
        return {"hit@10": hit10 * f, "ndcg@10": ndcg10 * f,
                "hit@20": hit10 * 1.5 * f, "ndcg@20": ndcg10 * 1.2 * f}

    test = {
        "overall": metrics(),
        "n_rows": 943,
        "groups": {"item_head": {"size": 500, "metrics": metrics(1.5)},
                   "item_tail": {"size": 443, "metrics": metrics(0.5 * scale)},
                   "user_short": {"size": 300, "metrics": metrics(0.8)},
                   "user_long": {"size": 643, "metrics": metrics(1.1)}},
        "buckets": {"item_popularity": [{"label": "1-3", "size": 120, "metrics": metrics(0.2 * scale)},
                                        {"label": "4-30", "size": 323, "metrics": metrics(0.6)},
                                        {"label": "31+", "size": 500, "metrics": metrics(1.5)}],
                    "user_history": [{"label": "5-8", "size": 300, "metrics": metrics(0.8)},
                                     {"label": "9+", "size": 643, "metrics": metrics(1.1)}]},
        "definition": {"head_ratio": 0.2, "head_min_count": 31, "user_short_threshold": 6},
    }
    return {
        "schema": "recbole-llmemb/results/v1",
        "run_id": run_id, "model": model, "dataset": dataset, "created": "2026-11-25T13:15:00",
        "config": {"model": model, "epochs": 3},
        "config_digest": run_id[-12:],
        "protocol": {"split": {"LS": "valid_and_test"}, "order": "TO", "mode": "full",
                     "metrics": ["Hit", "NDCG"], "topk": [10, 20], "valid_metric": "ndcg@10"},
        "checkpoint": f"saved/{run_id}.pth",
        "best_valid_score": ndcg10, "best_valid_epoch": 2,
        "valid": copy.deepcopy(test), "test": test,
        "history": [{"epoch": e, "train_loss": 8.0 - e, "epoch_seconds": 1.0,
                     "valid_score": ndcg10 * (e + 1) / 3, "valid": {"ndcg@10": ndcg10}}
                    for e in range(3)],
        "timing": {"stages": {"dataset": 1.0, "train": 3.0, "test": 0.5}, "epoch_seconds_mean": 1.0},
    }


def write(tmp_path, data):
    path = tmp_path / f"{data['run_id']}.json"
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def two_runs(tmp_path):
    """An LLM-embedding run given first, then the plain SASRec run it should be compared to."""
    llm = write(tmp_path, results("LLMEmb", "LLMEmb-ml-100k-1-aaaaaaaaaaaa", ndcg10=0.05, scale=2.0))
    sas = write(tmp_path, results("SASRec", "SASRec-ml-100k-1-bbbbbbbbbbbb", ndcg10=0.04))
    return llm, sas


def table_after(text, heading):
    """The Markdown table rows (cells) following a heading."""
    lines = text.split(heading, 1)[1].splitlines()[1:]  # from the line after the heading
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append(line)
    return [[c.strip() for c in r.strip("|").split("|")] for r in rows if not r.startswith("|---")]


def png_size(path):
    """Width and height from the PNG header (IHDR), without an image library."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


def test_report_rows_relative_changes_and_group_sizes(two_runs, tmp_path):
    index = report.write_report(two_runs, tmp_path / "out")
    text = index.read_text()

    header, llm, sas = table_after(text, "## Overall")
    assert header == ["Model", "Dataset", "Config", "Rows", "hit@10", "ndcg@10", "hit@20", "ndcg@20",
                      "ndcg@10 vs baseline [95% paired interval]"]
    assert llm[8] == sas[8] == "–"  # hand-made files without per-user ranks: no interval
    # The default baseline is the plain RecBole model (SASRec), though LLMEmb was given first.
    assert sas[:4] == ["SASRec (baseline)", "ml-100k", "bbbbbbbbbbbb", "943"]
    assert sas[5] == "0.0400"
    assert llm[:4] == ["LLMEmb", "ml-100k", "aaaaaaaaaaaa", "943"]
    assert llm[5] == "0.0500 (+25.0%)"
    assert llm[4] == "0.1000 (+0.0%)"

    _, llm_tail, sas_tail = table_after(text, "### item_tail")
    assert llm_tail[3] == sas_tail[3] == "443"
    assert llm_tail[5] == "0.0500 (+150.0%)"  # 0.05*0.5*2 vs 0.04*0.5
    _, llm_head, _ = table_after(text, "### item_head")
    assert llm_head[3] == "500" and llm_head[5] == "0.0750 (+25.0%)"
    for group, size in [("user_short", "300"), ("user_long", "643")]:
        assert [r[3] for r in table_after(text, f"### {group}")[1:]] == [size, size]

    assert "LLMEmb-ml-100k-1-aaaaaaaaaaaa.json" in text  # linked from the runs table
    assert (tmp_path / "out" / "index.html").exists()


def test_ndcg_ratio_with_its_paired_interval_from_per_user_ranks(tmp_path):
    """Both runs rank the same 200 users' targets; the plugin run lists every eighth user's target first
    where SASRec lists it fifth: the interval holds the ratio (known by hand) and excludes 1."""
    from recbole_llmemb.evaluation.longtail import encode_ints

    def with_ranks(data, ranks):
        n = len(ranks)
        data["test"]["per_user"] = {"rank_cap": 20, **{k: encode_ints(v) for k, v in (
            ("user", range(1, n + 1)), ("short", [u % 2 for u in range(n)]), ("n_targets", [1] * n),
            ("item", [u % 7 + 1 for u in range(n)]), ("rank", ranks), ("tail", [u % 3 == 0 for u in range(n)]))}}
        return write(tmp_path, data)

    base = [4 if u % 4 == 0 else 20 for u in range(200)]
    sas = with_ranks(results("SASRec", "SASRec-ml-100k-1-bbbbbbbbbbbb", ndcg10=0.04), base)
    llm = with_ranks(results("LLMEmb", "LLMEmb-ml-100k-1-aaaaaaaaaaaa", ndcg10=0.05),
                     [0 if u % 8 == 0 else r for u, r in enumerate(base)])
    text = report.write_report([llm, sas], tmp_path / "out").read_text()
    _, llm_row, sas_row = table_after(text, "## Overall")
    # 50 users at rank 4 in SASRec (NDCG 1/log2 6 each); the plugin moves 25 of them to rank 0 (NDCG 1)
    ratio = (25 + 25 / math.log2(6)) / (50 / math.log2(6))
    low, high = (float(x) for x in llm_row[8].split("[")[1].rstrip("]").split(","))
    assert llm_row[8].startswith(f"{ratio:.2f}x [") and 1 < low < ratio < high and sas_row[8] == "–"


def test_baseline_by_model_run_id_or_path(two_runs, tmp_path):
    llm, sas = two_runs
    for choice in ["LLMEmb", "LLMEmb-ml-100k-1-aaaaaaaaaaaa", str(llm)]:
        text = report.write_report([llm, sas], tmp_path / "out", baseline=choice).read_text()
        _, llm_row, sas_row = table_after(text, "## Overall")
        assert llm_row[0] == "LLMEmb (baseline)"
        assert sas_row[5] == "0.0400 (-20.0%)"
    with pytest.raises(report.ReportError, match="baseline 'nope'"):
        report.write_report([llm, sas], tmp_path / "out", baseline="nope")


def test_charts_have_the_expected_pixel_size(two_runs, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "out"
    text = report.write_report(two_runs, out).read_text()
    for name in ["ndcg_item_popularity.png", "ndcg_user_history.png", "training_curves.png"]:
        assert png_size(out / name) == report.CHART_PX
        assert f"]({name})" in text
    assert report.PLOTS_NOTE not in text


@pytest.mark.parametrize("change, why", [
    (lambda d: d.update(dataset="amazon-beauty"), "dataset"),
    (lambda d: d["protocol"].update(order="RO"), "order"),
    (lambda d: d["protocol"].update(split={"RS": [0.8, 0.1, 0.1]}), "split"),
    (lambda d: d["protocol"].update(mode="uni100"), "eval mode"),
    (lambda d: d["protocol"].update(name="paper"), "protocol 'paper' vs 'full'"),
    (lambda d: d["protocol"].update(topk=[5, 10]), "topk"),
    (lambda d: d["protocol"].update(metrics=["Hit", "MRR"]), "metrics"),
    (lambda d: d["test"]["definition"].update(head_ratio=0.1), "long-tail definition"),
])
def test_incompatible_runs_are_refused(tmp_path, change, why, capsys):
    other = results("LLMEmb", "LLMEmb-x-aaaaaaaaaaaa", ndcg10=0.05)
    change(other)
    paths = [write(tmp_path, results("SASRec", "SASRec-x-bbbbbbbbbbbb", 0.04)), write(tmp_path, other)]
    with pytest.raises(report.ReportError, match=f"runs do not compare.*{why}"):
        report.write_report(paths, tmp_path / "out")
    assert not (tmp_path / "out" / "index.md").exists()

    assert report.main([str(p) for p in paths] + ["--out", str(tmp_path / "out")]) != 0
    err = capsys.readouterr().err
    assert err.startswith("error: runs do not compare") and err.count("\n") == 1


def test_without_matplotlib_tables_render_with_a_note(two_runs, tmp_path, monkeypatch):
    for name in ["matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"]:
        monkeypatch.setitem(sys.modules, name, None)  # makes `import` raise ImportError
    out = tmp_path / "out"
    text = report.write_report(two_runs, out).read_text()
    assert "0.0500 (+25.0%)" in text
    assert report.PLOTS_NOTE in text and "recbole-llmemb[plots]" in text
    assert not list(out.glob("*.png"))


def test_cli_writes_index_from_a_folder(two_runs, tmp_path, capsys):
    (tmp_path / "notes.json").write_text("{}")  # other JSON in a results folder is skipped
    out = tmp_path / "out"
    assert report.main([str(tmp_path), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out / "index.md")
    assert len(table_after((out / "index.md").read_text(), "## Overall")) == 3
