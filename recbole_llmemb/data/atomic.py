"""Checks on atomic files before RecBole reads them, so that a bad file is one clear message.

Without them RecBole tries to download a missing dataset (or asks on stdin), and a missing
column or a malformed row surfaces as a KeyError or a pandas error deep inside its loader.
"""
import csv
from pathlib import Path

from recbole_llmemb.errors import UserError

_TYPES = {"token", "token_seq", "float", "float_seq"}


def read_header(path):
    """Field names and types from an atomic file's first line."""
    with open(path, encoding="utf-8") as f:
        first = f.readline().rstrip("\r\n")
    fields = {}
    for cell in first.split("\t"):
        name, _, ftype = cell.partition(":")
        if ftype not in _TYPES:
            raise UserError(
                f"{path}: header field '{cell}' is not 'name:type' with type one of {sorted(_TYPES)}."
            )
        fields[name] = ftype
    return fields


def check_atomic_files(config):
    """Fail early and clearly on a missing dataset, a missing column or a malformed row."""
    dataset, folder = config["dataset"], Path(config["data_path"])
    inter = folder / f"{dataset}.inter"
    if not inter.is_file():
        raise UserError(
            f"Dataset '{dataset}' not found: expected the atomic file {inter}. Put the RecBole atomic "
            f"files ({dataset}.inter, and {dataset}.item for item text) in {folder}, or pass "
            "--data_path=FOLDER that holds a '<dataset>/' folder. See dataset/README.md."
        )
    load_col = config["load_col"] or {"inter": None}
    required = {"inter": [config["USER_ID_FIELD"], config["ITEM_ID_FIELD"]]}
    if config["eval_args"].get("order") == "TO" and config["TIME_FIELD"]:
        required["inter"].append(config["TIME_FIELD"])
    for suffix, wanted in load_col.items():
        path = folder / f"{dataset}.{suffix}"
        if not path.is_file():
            if suffix == "inter":
                continue
            raise UserError(f"{path} is missing, but load_col asks for its columns {wanted}.")
        fields = read_header(path)
        missing = [c for c in list(wanted or []) + required.get(suffix, []) if c not in fields]
        if missing:
            why = ""
            if config["TIME_FIELD"] in missing and suffix == "inter" and config["eval_args"].get("order") == "TO":
                why = (f" The time-ordered split (eval_args order TO) sorts by '{config['TIME_FIELD']}': add that "
                       "column, name yours with TIME_FIELD, or split in file order with --eval_args=\"{'order': 'RO'}\".")
            raise UserError(
                f"{path}: column(s) {missing} are not in the header {list(fields)}.{why} Fix the file or "
                "the load_col / *_FIELD settings in your config file (--config_files=yours.yaml)."
            )
        _check_rows(path, len(fields), fields)


def _check_rows(path, n_fields, fields):
    """Every row has the header's number of fields and numbers where the header says float."""
    float_cols = [i for i, t in enumerate(fields.values()) if t == "float"]
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.reader(f, delimiter="\t")
        next(reader, None)
        for line_no, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != n_fields:
                raise UserError(f"{path}, row {line_no}: {len(row)} fields, the header has {n_fields}.")
            for i in float_cols:
                if row[i]:
                    try:
                        float(row[i])
                    except ValueError:
                        name = list(fields)[i]
                        raise UserError(f"{path}, row {line_no}: '{row[i]}' in float column '{name}' is not a number.") from None
