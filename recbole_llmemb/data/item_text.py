"""Item text from a RecBole dataset's item features (LLMEmb's prompt).

Each item becomes ``instruction + "\\n" + "name is value; name is value; ..."`` (the official
LLMEmb layout: the instruction on its own line, then the attributes). Each field's value is
turned back into the string it had in the atomic file:

* ``token``: the token itself (RecBole keeps whole strings such as titles and brands).
* ``token_seq``: RecBole split the cell on spaces. The tokens are rejoined with spaces. When the
  cell held a Python-style list (amazon's ``'Beauty', 'Makeup', 'Concealers & Neutralizers'``)
  it is parsed and its items joined with ", ". Otherwise a field whose vocabulary is small
  (labels such as ml-100k's genres: at most ``max(50, sqrt(n_items))`` distinct tokens) is joined
  with ", ", and a free-text field (ml-100k's ``movie_title``) with spaces.
  ``item_text_list_fields`` / ``item_text_phrase_fields`` (lists) override that guess.
* ``float`` / ``float_seq``: RecBole fills a missing float with the column mean, so the value in
  the dataset cannot tell "missing" from "average". The raw atomic ``.item`` file is read again
  (only the item id and the float text fields) and its strings are used as they are written
  there; an empty cell means the attribute is missing and is left out. If the raw file cannot be
  read, the dataset's values are used (formatted with ``%g``) and a warning says that missing
  values then show as the column mean.

Every value is HTML-unescaped (``&amp;`` -> ``&``), its whitespace collapsed (titles with
newlines or tabs), and cut to about ``item_text_max_chars`` (100) characters at a word boundary.
A missing token (``[PAD]``), an empty string or an empty list leaves the attribute out.

An item with no attribute at all gets the fallback attribute ``("item id", <token>)``, i.e. the
text ``instruction + "\\nitem id is <token>"``; such items are counted and named in a warning.

Fields, their order, display names and the instruction come from the dataset's props
(``item_text_fields``, ``item_text_names``, ``item_text_instruction``); without
``item_text_fields`` every item field except the item id (and fields named like ids, URLs or
images) is used, in file order.
"""
import ast
import html
import logging
import math
import os
import re

import numpy as np

from recbole_llmemb.errors import UserError
from recbole_llmemb.settings import read

DEFAULT_INSTRUCTION = "The item has the following attributes:"
FALLBACK_NAME = "item id"
_SKIP_NAME = re.compile(r"(^|_)(id|url|urls|image|images|img|imurl)($|_)", re.IGNORECASE)
_QUOTED = re.compile(r"'((?:[^'\\]|\\.)*)'|\"((?:[^\"\\]|\\.)*)\"")


def _logger():
    return logging.getLogger()


# --------------------------------------------------------------------------- value cleaning
def clean_value(value, max_chars=100):
    """HTML-unescape, collapse whitespace, cut to about ``max_chars`` at a word boundary."""
    s = " ".join(html.unescape(str(value)).split())
    if max_chars and len(s) > max_chars:
        cut = s[:max_chars]
        space = cut.rfind(" ")
        if space >= max_chars * 0.6:
            cut = cut[:space]
        s = cut.rstrip(" ,;:")
    return s


def parse_list_string(s):
    """``'Beauty', 'Makeup', "Women's"`` -> ``['Beauty', 'Makeup', "Women's"]``, or None if ``s`` is no such list."""
    s = s.strip()
    if not s or s[0] not in "'\"[":
        return None
    body = s[1:-1] if s.startswith("[") and s.endswith("]") else s
    try:
        parsed = ast.literal_eval("[" + body + "]")
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        parsed = None
    if isinstance(parsed, list) and all(isinstance(p, str) for p in parsed):
        return parsed
    found = [a if a else b for a, b in _QUOTED.findall(body)]
    rest = _QUOTED.sub("", body)
    if found and not rest.replace(",", "").strip():  # nothing but quoted items and commas
        return found
    return None


# --------------------------------------------------------------------------- dataset access
def _item_table(dataset):
    """``{field: column (numpy array / list)}`` of ``dataset.item_feat`` (DataFrame or Interaction)."""
    feat = dataset.item_feat
    if feat is None:
        return {}
    if hasattr(feat, "columns"):  # pandas DataFrame (before data_preparation)
        return {c: feat[c].values for c in feat.columns}
    table = {}
    for c in feat.interaction:  # recbole Interaction (after data_preparation)
        v = feat.interaction[c]
        table[c] = v.cpu().numpy() if hasattr(v, "cpu") else np.asarray(v)
    return table


def text_fields(config, dataset):
    """The item fields that go into the text, in order (``item_text_fields`` or all non-id fields)."""
    iid = config["ITEM_ID_FIELD"]
    table = _item_table(dataset)
    available = [f for f in table if f != iid]
    wanted = read(config, "item_text_fields")
    if wanted is None:
        fields = [f for f in available if not _SKIP_NAME.search(f)]
    else:
        if isinstance(wanted, str):
            wanted = [w.strip() for w in wanted.split(",") if w.strip()]
        missing = [f for f in wanted if f not in table]
        if missing:
            raise UserError(
                f"item_text_fields names {missing}, which the dataset's item features lack "
                f"(loaded item fields: {available or 'none'}). Add them to load_col['item'] or "
                "drop them from item_text_fields."
            )
        fields = list(wanted)
    if not fields:  # every item would get the fallback text: nothing for a language model to read
        raise UserError(
            f"Dataset '{config['dataset']}' has no item text fields: item embeddings need the atomic file "
            f"{config['dataset']}.item with text columns (title, categories, ...) loaded through "
            f"load_col['item'] (loaded item fields: {available or 'none'})."
        )
    return fields


def _raw_float_strings(config, dataset, fields):
    """``{field: {item_token: raw string or None}}`` from the raw atomic .item file, or None if unreadable."""
    import pandas as pd

    iid = config["ITEM_ID_FIELD"]
    path = os.path.join(getattr(dataset, "dataset_path", None) or config["data_path"], f"{config['dataset']}.item")
    sep = read(config, "field_separator", "\t")
    encoding = read(config, "encoding", "utf-8")
    try:
        with open(path, encoding=encoding) as f:
            header = f.readline().rstrip("\n").rstrip("\r").split(sep)
        cols = {h.split(":")[0]: h for h in header}
        usecols = [cols[iid]] + [cols[f] for f in fields]
        df = pd.read_csv(path, delimiter=sep, usecols=usecols, dtype=str, encoding=encoding,
                         engine="python", keep_default_na=False)
    except (OSError, KeyError, ValueError) as e:
        _logger().warning(f"item text: could not re-read {path} for raw float values ({e}); "
                          "missing floats will show RecBole's fill value (the column mean).")
        return None
    keys = df[cols[iid]].astype(str).tolist()
    out = {}
    for f in fields:
        vals = df[cols[f]].tolist()
        out[f] = {k: (v.strip() if v and v.strip() and v.strip().lower() != "nan" else None)
                  for k, v in zip(keys, vals)}
    return out


def _seq_is_list(config, dataset, field, n_items):
    list_fields = read(config, "item_text_list_fields") or []
    phrase_fields = read(config, "item_text_phrase_fields") or []
    if field in list_fields:
        return True
    if field in phrase_fields:
        return False
    vocab = len(dataset.field2id_token.get(field, [])) - 1
    return vocab <= max(50, math.sqrt(max(n_items, 1)))


def item_attributes(config, dataset):
    """Per item (aligned with ``field2id_token[ITEM_ID][1:]``): ``[(display name, value string), ...]``.

    Missing values are left out; an item with none gets ``[("item id", <token>)]``.
    """
    from recbole.utils import FeatureType

    iid = config["ITEM_ID_FIELD"]
    tokens = [str(t) for t in dataset.field2id_token[iid][1:]]
    n = len(tokens)
    fields = text_fields(config, dataset)
    names = read(config, "item_text_names") or {}
    max_chars = int(read(config, "item_text_max_chars"))
    table = _item_table(dataset)
    _logger().info("item text of %d items from fields %s", n,
                   ", ".join(f if names.get(f, f) == f else f"{f} (as '{names[f]}')" for f in fields))

    # row of each internal item id in the item table
    row_of = np.full(n + 1, -1, dtype=np.int64)
    if iid in table:
        ids = np.asarray(table[iid]).astype(np.int64)
        ok = (ids >= 0) & (ids <= n)
        row_of[ids[ok]] = np.nonzero(ok)[0]

    float_fields = [f for f in fields if dataset.field2type[f] in (FeatureType.FLOAT, FeatureType.FLOAT_SEQ)]
    raw = _raw_float_strings(config, dataset, float_fields) if float_fields else {}

    columns = {}  # field -> list of value strings (or None) per item
    for f in fields:
        ftype = dataset.field2type[f]
        col = table[f]
        vals = [None] * n
        if ftype == FeatureType.TOKEN:
            id2tok = dataset.field2id_token[f]
            for i in range(n):
                r = row_of[i + 1]
                if r < 0:
                    continue
                tid = int(col[r])
                if tid > 0:
                    vals[i] = str(id2tok[tid])
        elif ftype == FeatureType.TOKEN_SEQ:
            id2tok = dataset.field2id_token[f]
            as_list = _seq_is_list(config, dataset, f, n)
            for i in range(n):
                r = row_of[i + 1]
                if r < 0:
                    continue
                seq = [int(t) for t in np.asarray(col[r]).ravel() if int(t) > 0]
                if not seq:
                    continue
                joined = " ".join(str(id2tok[t]) for t in seq)
                parts = parse_list_string(joined)
                if parts is not None:
                    parts = [clean_value(p, max_chars) for p in parts]
                    vals[i] = ", ".join(p for p in parts if p)
                elif as_list:
                    vals[i] = ", ".join(str(id2tok[t]) for t in seq)
                else:
                    vals[i] = joined
        elif ftype in (FeatureType.FLOAT, FeatureType.FLOAT_SEQ):
            raw_f = raw.get(f) if raw else None
            for i in range(n):
                if raw_f is not None:
                    vals[i] = raw_f.get(tokens[i])
                    continue
                r = row_of[i + 1]
                if r < 0:
                    continue
                v = np.asarray(col[r]).ravel()
                v = v[~np.isnan(v)]
                if v.size:
                    vals[i] = ", ".join(f"{x:g}" for x in v)
        columns[f] = vals

    out = []
    for i in range(n):
        attrs = []
        for f in fields:
            v = columns[f][i]
            if v is None:
                continue
            v = clean_value(v, max_chars)
            if v and v.lower() not in ("nan", "none", "[]"):
                attrs.append((str(names.get(f, f)), v))
        out.append(attrs)
    empty = [tokens[i] for i, a in enumerate(out) if not a]
    if empty:
        shown = ", ".join(empty[:10]) + (", ..." if len(empty) > 10 else "")
        _logger().warning(
            f"item text: {len(empty)} of {n} items have no text in fields {fields}; they get the "
            f"fallback text '{FALLBACK_NAME} is <token>': {shown}"
        )
        for i, a in enumerate(out):
            if not a:
                a.append((FALLBACK_NAME, tokens[i]))
    return out


def instruction(config):
    """The instruction line (``item_text_instruction``)."""
    return str(read(config, "item_text_instruction", DEFAULT_INSTRUCTION)).strip()


def render(instr, attrs):
    """``instr + "\\n" + "name is value; ..."``."""
    body = "; ".join(f"{k} is {v}" for k, v in attrs)
    return f"{instr}\n{body}" if instr else body


def build_item_texts(config, dataset):
    """One text per item, aligned with ``dataset.field2id_token[ITEM_ID_FIELD][1:]``."""
    instr = instruction(config)
    return [render(instr, attrs) for attrs in item_attributes(config, dataset)]
