"""A user's own atomic files without any props file (issue 11): every column loads, the item text
comes from the .item file's fields, and a missing time field is one clear message."""
import pytest
import torch

from recbole_llmemb.pipeline.config import Config, UserError
import logging

from recbole_llmemb.data.item_text import build_item_texts, text_fields
from recbole_llmemb.pipeline.quick_start import main, run_recbole_llmemb
from recbole_llmemb.pipeline.training import load_dataset
from tests.conftest import tiny_config, write_tiny_dataset


def own_config(root, **overrides):
    """What a user would pass: paths and sizes, no load_col, no props/<dataset>.yaml."""
    cfg = tiny_config(root)
    cfg.pop("load_col")
    cfg.update(overrides)
    return cfg


@pytest.fixture
def mydata(tmp_path, monkeypatch):
    write_tiny_dataset(tmp_path, name="mydata")
    monkeypatch.chdir(tmp_path)  # RecBole's ./log
    torch.set_num_threads(1)
    return tmp_path


def test_every_column_loads_and_the_item_fields_make_the_text(mydata, caplog):
    config = Config("SASRec", "mydata", config_dict=own_config(mydata))
    assert config["load_col"] is None
    dataset = load_dataset(config)
    assert {"user_id", "item_id", "timestamp"} <= set(dataset.inter_feat.columns)
    assert text_fields(config, dataset) == ["title", "categories", "price"]
    with caplog.at_level(logging.INFO):
        texts = build_item_texts(config, dataset)
    assert "title is " in texts[0] and "price is " in texts[0]
    # one logged line says which fields made the text
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("item text of ")]
    assert said == [f"item text of {len(texts)} items from fields title, categories, price"]


def test_own_props_come_from_config_files(mydata):
    """What README tells a pip-installed user: settings for their dataset in a file of their own."""
    props = mydata / "mydata.yaml"
    props.write_text("item_text_fields: [title, price]\nitem_text_names: {price: cost}\nMAX_ITEM_LIST_LENGTH: 7\n")
    settings = own_config(mydata)
    settings.pop("MAX_ITEM_LIST_LENGTH", None)  # the test's own sizing, which would override the file
    config = Config("SASRec", "mydata", config_file_list=[str(props)], config_dict=settings)
    assert config["MAX_ITEM_LIST_LENGTH"] == 7
    texts = build_item_texts(config, load_dataset(config))
    assert all("categories is" not in t for t in texts) and "cost is " in texts[0] and "title is " in texts[0]


def test_sasrec_trains_on_own_data(mydata):
    results = run_recbole_llmemb("SASRec", "mydata", config_dict=own_config(mydata, epochs=1))
    assert results["config"]["dataset"] == "mydata" and results["test"]["n_rows"] == 30  # the file's 30 users
    assert len(results["history"]) == 1 and results["history"][0]["train_loss"] > 0
    for key, value in results["test"]["overall"].items():  # RecBole's own evaluator agrees
        assert abs(results["test"]["recbole"][key] - value) < 1e-4, key


def test_a_named_load_col_is_kept(mydata):
    config = Config("SASRec", "mydata", config_dict=own_config(mydata, load_col={"inter": ["user_id", "item_id", "timestamp"]}))
    assert config["load_col"] == {"inter": ["user_id", "item_id", "timestamp"]}


def test_missing_time_field_is_one_clear_message(mydata, capsys):
    inter = mydata / "mydata" / "mydata.inter"
    inter.write_text("\n".join("\t".join(line.split("\t")[:2]) for line in inter.read_text().splitlines()) + "\n")
    argv = ["--model=SASRec", "--dataset=mydata"] + [f"--{k}={v}" for k, v in own_config(mydata).items()]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    assert "'timestamp'" in err and "order" in err and "RO" in err
    with pytest.raises(UserError):
        load_dataset(Config("SASRec", "mydata", config_dict=own_config(mydata)))
