"""Checks on atomic files before RecBole reads them, so that a bad file is one clear message.

Without them RecBole tries to download a missing dataset (or asks on stdin), and a missing
column or a malformed row surfaces as a KeyError or a pandas error deep inside its loader.
"""
import csv
import sys
from pathlib import Path

from recbole_llmemb.errors import UserError

_TYPES = {"token", "token_seq", "float", "float_seq"}


def _not_utf8(path):
    """The first line of ``path`` that is not UTF-8, as one clear error."""
    with open(path, "rb") as f:
        for row, raw in enumerate(f, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as e:
                return UserError(f"{path}, row {row}: bytes that are not UTF-8 ({raw[e.start:e.end]!r} at column "
                                 f"{e.start + 1}); re-save the file as UTF-8.")
    return UserError(f"{path}: not UTF-8; re-save the file as UTF-8.")


def read_header(path):
    """Field names and types from an atomic file's first line."""
    with open(path, "rb") as f:
        raw = f.readline()
    try:
        first = raw.decode("utf-8").lstrip("\ufeff").rstrip("\r\n")
    except UnicodeDecodeError:
        raise _not_utf8(path) from None
    if not first.strip():
        raise UserError(f"{path} is empty: an atomic file starts with a header line such as "
                        "'user_id:token<TAB>item_id:token<TAB>timestamp:float'.")
    fields = {}
    for cell in first.split("\t"):
        name, _, ftype = cell.partition(":")
        if ftype not in _TYPES:
            raise UserError(
                f"{path}: header field '{cell}' is not 'name:type' with type one of {sorted(_TYPES)}."
            )
        if name in fields:
            raise UserError(f"{path}: the header names '{name}' twice; each column needs its own name.")
        fields[name] = ftype
    return fields


def _ids(path, field):
    """The values of one column (a set of strings)."""
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.reader(f, delimiter="\t")  # quoting as pandas reads it (RecBole's loader)
        header = [c.partition(":")[0] for c in next(reader, [])]
        col = header.index(field)
        return {row[col] for row in reader if len(row) > col}


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
    _check_item_coverage(config, folder, dataset, load_col)


def _check_item_coverage(config, folder, dataset, load_col):
    """An .item file must list every item of the .inter file: RecBole silently drops the
    interactions of items it lacks (filter_inter_by_user_or_item)."""
    item = folder / f"{dataset}.item"
    if not item.is_file() or ("item" not in load_col and config["load_col"] is not None):
        return
    iid = config["ITEM_ID_FIELD"]
    if iid not in read_header(item) or iid not in read_header(folder / f"{dataset}.inter"):
        return
    missing = sorted(_ids(folder / f"{dataset}.inter", iid) - _ids(item, iid))
    if missing:
        raise UserError(
            f"{item} lacks {len(missing)} item id(s) that {dataset}.inter uses (e.g. {', '.join(missing[:3])}); "
            "RecBole would drop their interactions. Add a row for each (empty fields are fine), or leave the "
            ".item file out of load_col."
        )


_QUOTES = (' A field that starts with a double quote (") is read as quoted up to the next quote, across tabs '
           "and lines (RecBole reads the file with pandas): remove that quote, or quote the whole field and "
           "double every quote inside it.")


def _check_rows(path, n_fields, fields):
    """Every row has the header's number of fields and numbers where the header says float."""
    float_cols = [i for i, t in enumerate(fields.values()) if t == "float"]
    csv.field_size_limit(sys.maxsize)  # a 1 MB title is a long field, not a broken file
    with open(path, encoding="utf-8", newline="") as f:
        # quoting as pandas reads it (RecBole's loader); strict: text after a closing quote is an error there too
        reader = csv.reader(f, delimiter="\t", strict=True)
        start = 2  # the line where the record being read begins (a quoted field may span lines)
        try:
            next(reader, None)
            for row in reader:
                _check_row(path, start, row, n_fields, fields, float_cols)
                start = reader.line_num + 1
        except UnicodeDecodeError:
            raise _not_utf8(path) from None
        except csv.Error as e:
            raise UserError(f"{path}, row {start}: {e}." + _QUOTES) from None


def _check_row(path, line_no, row, n_fields, fields, float_cols):
    """One row: the header's number of fields, numbers where the header says float."""
    if not row:
        return
    if len(row) != n_fields:
        ran_over = any("\t" in cell or "\n" in cell for cell in row)  # a quoted field swallowed separators
        raise UserError(f"{path}, row {line_no}: {len(row)} fields, the header has {n_fields}." + (_QUOTES if ran_over else ""))
    for i in float_cols:
        if row[i]:
            try:
                float(row[i])
            except ValueError:
                raise UserError(f"{path}, row {line_no}: '{row[i]}' in float column '{list(fields)[i]}' is not a number.") from None
