"""Every plugin setting, once: its type, default, allowed values and meaning.

This table is the one source of the plugin's keys. ``props/generator.yaml`` and ``props/rat.yaml``
are written from it (``python -m recbole_llmemb.settings --write``), as is ``docs/settings.md``;
the config checks every value against it before anything runs, and every owner reads a setting
the one way, :func:`read`. RecBole's own keys are RecBole's: only the few numbers that the plugin
checks early (:data:`RECBOLE_NUMBERS`) are listed here.

``used_by`` says who reads a setting, so that a run can refuse or drop what it would not read:
``model`` (the plugin's models only), ``text`` (the plugin's models and the text re-ranker),
``rerank`` (the re-ranker only), ``any`` (every run).
"""
import sys
from dataclasses import dataclass
from pathlib import Path

from recbole_llmemb.errors import UserError

PROPS_DIR = Path(__file__).resolve().parent.parent / "props"
DOCS_PAGE = PROPS_DIR.parent / "docs" / "settings.md"

#: the embedding methods (each registers a builder under its name in ``generator/``)
METHODS = ("scft", "said", "tslrec", "plain", "random")


@dataclass(frozen=True)
class Setting:
    key: str
    kind: str            # int | float | bool | str | word | list | dict
    default: object
    meaning: str
    group: str           # the props file that holds the default (generator, rat, overall), or "" for none
    used_by: str = "any"
    choices: tuple = ()  # a word setting's allowed values
    low: float = None    # numbers: the smallest allowed value ...
    low_open: bool = False   # ... excluded
    high: float = None
    high_open: bool = False


def _s(key, kind, default, meaning, group, used_by="any", choices=(), low=None, low_open=False, high=None, high_open=False):
    return Setting(key, kind, default, meaning, group, used_by, tuple(choices), low, low_open, high, high_open)


_TABLE = [
    # ---- the language model (props/generator.yaml)
    _s("llm_path", "str", None, "a packaged model's name (all-MiniLM-L6-v2, all-mpnet-base-v2, SmolLM2-135M), a local model folder, or a hub id already in the local Hugging Face cache; ~ = all-MiniLM-L6-v2", "generator", "text"),
    _s("llm_pooling", "word", "mean", "one vector per text: mean of the tokens, or the last non-padding token (an EOS is appended for decoder LMs)", "generator", "text", ("mean", "last")),
    _s("llm_max_length", "int", 128, "tokens per item text (longer texts are truncated)", "generator", "text", low=1),
    _s("llm_device", "str", None, "~ = cuda when present, else cpu", "generator", "text"),
    _s("llm_dtype", "word", None, "~ = bfloat16 on cuda, float32 on cpu", "generator", "text", ("float32", "bfloat16", "float16")),
    _s("llm_batch_size", "int", 64, "extraction: texts per batch (sorted by length first)", "generator", "text", low=1),
    _s("lora_r", "int", 8, "LoRA rank (peft), for every stage that tunes the LM", "generator", "text", low=1),
    _s("lora_alpha", "int", 32, "LoRA scaling", "generator", "text", low=1),
    _s("lora_dropout", "float", 0.1, "LoRA dropout", "generator", "text", low=0, high=1, high_open=True),
    _s("lora_target_modules", "list", None, "~ = per family: BERT query,key,value,dense; LLaMA/Qwen q,k,v,o,gate,up,down_proj; GPT-2 c_attn,c_proj,c_fc", "generator", "text"),
    _s("pca_dim", "int", None, "reduce the item vectors to this many dimensions with PCA (~ = keep)", "generator", "text", low=1),
    _s("store_dtype", "word", "float32", "the element type of stored item vectors: float16 halves the cache entry (large catalogues); part of the cache key", "generator", "text", ("float32", "float16")),
    _s("embedding_cache_dir", "str", "llmemb_cache/", "where stage 1's outputs are cached (relative to the working directory)", "generator"),
    _s("item_text_max_chars", "int", 100, "each attribute value is cut to about this many characters", "generator", "text", low=1),
    _s("stage_checkpoint_seconds", "float", 300, "a long stage-1 build (training, extraction) saves its progress this often; a rerun with the same settings resumes there", "generator", "text", low=0),
    # ---- LLMEmb stage 1: SCFT
    _s("scft_loss", "word", "soft", "soft (the official soft-target symmetric loss) | infonce", "generator", "text", ("soft", "infonce")),
    _s("scft_tau", "float", None, "initial trained temperature; ~ = 3.0 for soft (official), 0.05 for infonce", "generator", "text", low=0, low_open=True),
    _s("scft_drop_ratio", "float", 0.4, "each view drops int(ratio * n) of the item's n attributes", "generator", "text", low=0, high=1, high_open=True),
    _s("scft_batch_size", "int", 32, "items per step (two views each; the others are the negatives)", "generator", "text", low=2),
    _s("scft_steps", "int", 150, "optimiser steps; 0 = no fine-tuning, extract from the base model", "generator", "text", low=0),
    _s("scft_epochs", "float", None, "if set, replaces scft_steps with epochs * ceil(n_items / batch)", "generator", "text", low=0, low_open=True),
    _s("scft_lr", "float", 2.0e-4, "SCFT learning rate (LoRA)", "generator", "text", low=0, low_open=True),
    _s("scft_weight_decay", "float", 0.0, "SCFT weight decay", "generator", "text", low=0),
    # ---- SAID stage 1
    _s("said_tokens", "int", 4, "soft tokens per item", "generator", "text", low=1),
    _s("said_id_init", "word", "text", "where the id vectors start: text (the base model's pooled item-text vectors' top said_id_dim principal components, unit variance each: codes arranged by meaning; chosen on validation) | random (N(0,1), the paper)", "generator", "text", ("text", "random")),
    _s("said_id_dim", "int", 64, "size of each item's trainable id vector (the projector's input)", "generator", "text", low=1),
    _s("said_epochs", "float", 10, "passes over the items (the authors' 4,000 steps of 32 are 10.6 passes over Beauty)", "generator", "text", low=0, low_open=True),
    _s("said_steps", "int", None, "optimiser steps; when set, replaces said_epochs", "generator", "text", low=1),
    _s("said_batch_size", "int", 32, "items per step", "generator", "text", low=1),
    _s("said_lr", "float", 1.0e-3, "learning rate of the id table and projector", "generator", "text", low=0, low_open=True),
    _s("said_lora", "bool", False, "True: LoRA-tune the LM too (lora_* settings), at said_lora_lr", "generator", "text"),
    _s("said_lora_lr", "float", 2.0e-4, "learning rate of SAID's LoRA", "generator", "text", low=0, low_open=True),
    _s("said_mask_ratio", "float", 1.0, "encoders: share of the text's tokens masked and predicted from the soft tokens", "generator", "text", low=0, low_open=True, high=1),
    _s("said_export", "word", "tokens", "the item vector: tokens (mean of its soft tokens) | id (its id vector)", "generator", "text", ("tokens", "id")),
    _s("said_max_length", "int", 64, "text tokens the soft tokens must reproduce (the text's start: title, brand, ...)", "generator", "text", low=1),
    _s("said_vocab", "word", "corpus", "score against the tokens the item texts use (corpus) or the whole vocabulary (full)", "generator", "text", ("corpus", "full")),
    # ---- TSLRec stage 1
    _s("tslrec_k", "int", 16, "latent categories (k-means of the alignment SASRec's items)", "generator", "text", low=2),
    _s("tslrec_loss", "word", "mse", "mse (the paper) | kl", "generator", "text", ("mse", "kl")),
    _s("tslrec_epochs", "int", 1, "passes over the training users", "generator", "text", low=1),
    _s("tslrec_batch_size", "int", 16, "users per step", "generator", "text", low=1),
    _s("tslrec_lr", "float", 2.0e-4, "learning rate of LoRA and the category head", "generator", "text", low=0, low_open=True),
    _s("tslrec_item_length", "int", 32, "tokens of each item's attribute text in a history (and in its one-item extraction)", "generator", "text", low=1),
    _s("tslrec_max_length", "int", 256, "tokens per user: special tokens, the instruction once, the items (oldest dropped first)", "generator", "text", low=1),
    _s("tslrec_valid_share", "float", 0.05, "users held out to report the fit after each epoch", "generator", "text", low=0, high=1, high_open=True),
    # ---- the item text (the dataset's props file)
    _s("item_text_fields", "list", None, "item fields in the text, in order (~ = every item field but ids and URLs)", "", "text"),
    _s("item_text_names", "dict", None, "display names of the fields ({field: name})", "", "text"),
    _s("item_text_instruction", "str", None, "the text's first line (~ = 'The item has the following attributes:')", "", "text"),
    _s("item_text_list_fields", "list", None, "token_seq fields whose tokens are joined with ', ' (labels)", "", "text"),
    _s("item_text_phrase_fields", "list", None, "token_seq fields whose tokens are joined with spaces (free text)", "", "text"),
    # ---- stage 2: RAT (props/rat.yaml)
    _s("llm_embedding_method", "word", "scft", "the stage-1 method whose item vectors the model reads", "rat", "model", METHODS),
    _s("freeze_emb", "bool", True, "keep the LM item matrix frozen (False: fine-tune it too)", "rat", "model"),
    _s("adapter_hidden", "int", None, "the adapter's middle size; ~ = d/2 (d: the LM vectors' size)", "rat", "model", low=1),
    _s("adapter_dropout", "float", 0.0, "dropout between the adapter's two linear layers", "rat", "model", low=0, high=1, high_open=True),
    _s("adapter_layernorm", "bool", False, "LayerNorm on the adapter's output", "rat", "model"),
    _s("adapter_init", "word", "xavier", "xavier (xavier-normal weights, zero biases) | official (xavier-normal weights, PyTorch's default biases)", "rat", "model", ("xavier", "official")),
    _s("adapter_precision", "word", "auto", "auto (bfloat16 matmuls on a CPU that has them natively: AMX or AVX512-BF16; else float32) | float32 | bfloat16", "rat", "model", ("auto", "float32", "bfloat16")),
    _s("llm_emb_norm", "word", "center", "the adapter's input: center (mean removed, unit mean norm) | whiten (also decorrelated) | none", "rat", "model", ("center", "whiten", "none")),
    _s("item_id_emb", "bool", True, "text-plus-id: a trainable per-item table added to the adapted text (warm start: what the text does not explain)", "rat", "model"),
    _s("id_dropout", "float", 0.0, "with item_id_emb: in training each item's id offset is left out with this probability, so the model also ranks by text alone (as for new items)", "rat", "model", low=0, high=1, high_open=True),
    _s("id_l2", "float", 0.0, "with item_id_emb: weight of an L2 penalty on the id offsets (their sum of squares over the table) in the training loss: an offset must earn its place beside the text, so a rarely seen item's shrinks towards its text most; 0 = off", "rat", "model", low=0),
    _s("id_offsets", "word", "all", "with item_id_emb: which items have an id offset: all | head (tail items, outside the training split's head, are scored by their text alone, in training and evaluation; with new_item_ids=neighbours they borrow as new items do)", "rat", "model", ("all", "head")),
    _s("adapter_mode", "word", "trained", "trained (the linear adapter: fitted to the alignment SASRec's table at the warm start, then trained with the model) | principal (fixed, never trained: the LM vectors' top principal components, whitened, at the collaborative table's scale; the text part keeps the text's own neighbours, which a trained adapter bends towards SASRec's, and the id offsets learn the rest)", "rat", "model", ("trained", "principal")),
    _s("rat_init", "word", "collaborative", "collaborative (start from the alignment SASRec: adapter fitted to its item table, encoder loaded) | scratch", "rat", "model", ("collaborative", "scratch")),
    _s("alpha", "float", 0.1, "weight of the collaborative alignment loss; 0 turns it off", "rat", "model", low=0),
    _s("align_loss", "word", "infonce", "infonce (cosine, symmetric) | soft (the official soft-target form on raw vectors)", "rat", "model", ("infonce", "soft")),
    _s("align_tau", "float", 0.1, "temperature of the alignment loss (soft: 2.0 in the official code)", "rat", "model", low=0, low_open=True),
    _s("align_targets", "word", "unique", "unique (each of the batch's target items once) | all (every target position: the official code's)", "rat", "model", ("unique", "all")),
    _s("seq_input_scale", "word", "none", "none | sqrt_hidden (vectors entering the encoder times sqrt(table width): the official SASRec's; scores unscaled)", "rat", "model", ("none", "sqrt_hidden")),
    _s("new_item_ids", "word", "zero", "with new_items: a new item's id offset is zero (its text alone) or the mean offset of its 10 nearest items by text (neighbours)", "rat", "model", ("zero", "neighbours")),
    _s("text_score", "float", 0, "starting weight w of a text term in the scores, trained with the model: w * cos(item's text, mean of the user's last text_blend_last items'), vectors text_blend_vectors, gate text_blend_gate; 0 = off (SASRec and GRU4Rec backbones)", "rat", "model", low=0),
    _s("self_distill", "float", 0, "weight of LLM-ESR's self-distillation: MSE between a user's representation and the mean of the self_distill_users users nearest by the text of their training histories (vectors text_blend_vectors); 0 = off (SASRec and GRU4Rec backbones)", "rat", "model", low=0),
    _s("self_distill_users", "int", 10, "with self_distill: how many text-retrieved users teach each user", "rat", "model", low=1),
    _s("text_mixture", "float", 0, "share of the next-item distribution given to the text's own: log((1 - s) softmax(model scores) + s softmax(cos / text_mixture_tau)), the cosine as text_score's, the user's input items out of the text's part; in training (the cross-entropy of the mixture) and evaluation; 0 = off (SASRec and GRU4Rec backbones; with loss_type BPR the pairwise loss on the mixture's log-probabilities)", "rat", "model", low=0, high=1, high_open=True),
    _s("text_mixture_own_loss", "float", 0, "with text_mixture: weight of the model's own cross-entropy added to the mixture's in training (the model's distribution kept a whole recommender, not only the text's complement); 0 = the mixture's alone", "rat", "model", low=0),
    _s("text_mixture_over", "word", "all", "with text_mixture or text_blend_mode: mixture: the items the model's softmax covers, all (every item) | new (the items outside the user's input, as the text's part; the input items then leave the ranking)", "rat", "text", ("all", "new")),
    _s("text_mixture_new_share", "float", None, "with new_items and a mixture: the text's share for the new items (never trained, so the model's part knows them least); ~ = the share every item has", "rat", "text", low=0, low_open=True, high=1, high_open=True),
    _s("text_mixture_tail_share", "float", None, "with a mixture: the text's share for a user whose last text_blend_last items are all tail items; a user's share runs from the common one (none of them tail) to this one by the tail items' share of them; ~ = every user the common share", "rat", "text", low=0, low_open=True, high=1, high_open=True),
    _s("text_mixture_tau", "float", 0.05, "with text_mixture or text_blend_mode: mixture: the temperature of the text's softmax over cosines", "rat", "text", low=0, low_open=True),
    _s("text_score_trainable", "bool", True, "with text_score: learn its weight with the model (False: keep the start weight)", "rat", "model"),
    _s("output_bias", "bool", False, "BERT4Rec backbones: RecBole's trainable per-item output bias (a free popularity term)", "rat", "model"),
    # ---- the run (props/overall.yaml)
    _s("collab_epochs", "int", None, "epochs of the alignment SASRec; ~ = the same as the model's", "overall", "model", low=1),
    _s("text_blend", "float", 0, "the text re-ranker's weight at evaluation; 0 = no re-ranker", "overall", low=0),
    _s("text_blend_gate", "word", "tail", "none | tail (the weight, the re-ranker's or text_score's, times the share of tail items among the user's last items) | tail_items (the text term on tail items only)", "overall", "rerank", ("none", "tail", "tail_items")),
    _s("text_blend_mode", "word", "sum", "sum | mixture: the re-ranker's form, z(scores) + text_blend * z(cosine), or the mixture of text_mixture with share text_blend (in (0, 1); text_blend_gate none)", "overall", "rerank", ("sum", "mixture")),
    _s("text_blend_last", "int", 3, "how many of the user's last items make the text query (the re-ranker's and text_score's)", "overall", "rerank", low=1),
    _s("text_blend_vectors", "word", "plain", "the text vectors of the re-ranker and of text_score: own (a plugin model's own) or an embedding method's", "overall", "rerank", ("own",) + METHODS),
    _s("long_tail", "dict", {"head_ratio": 0.2, "user_short_threshold": None, "popularity_buckets": 5, "history_buckets": 5},
       "the groups of every evaluation: head = top head_ratio of items by training interactions; short users: at most user_short_threshold (~ = median)", "overall"),
    _s("new_items", "float", 0, "item cold start: this share of the items (drawn with the seed) is held out of training entirely and evaluated as the group item_new", "overall", low=0, high=1, high_open=True),
    _s("target_weights", "word", "none", "none | recent: each training target weighted by its popularity bucket's share among the users' last training targets over its share among all (later interactions go to rarer items; CE losses)", "overall", choices=("none", "recent")),
    _s("new_items_negatives", "bool", False, "with new_items: held-out items stay negatives of the training softmax (False: out of it, as items not yet listed while the model trained; CE losses)", "overall"),
    _s("mask_history", "bool", False, "full ranking of a sequential model: leave the items of the user's input sequence out of the ranking (RecBole masks a general model's seen items, never a sequential model's; on for data without repeat interactions, such as Amazon reviews)", "overall"),
    _s("results_dir", "str", "results/", "one JSON results file per run lands here", "overall"),
    _s("protocol_name", "str", None, "named in every results file; the report refuses to mix protocols (props/paper.yaml sets it)", ""),
    _s("eval_checkpoint", "str", None, "evaluate this trained checkpoint, no training", ""),
    _s("resume_checkpoint", "str", None, "go on training this checkpoint (weights, optimiser, epoch) into a new one", ""),
    _s("report", "bool", False, "command line: also write an HTML/Markdown report of the run", ""),
    # ---- several processes (the runner's launcher; RecBole's own names)
    _s("nproc", "int", 1, "processes on this machine (one per GPU; gloo on CPUs): the run in torch.distributed", "", low=1),
    _s("world_size", "int", None, "processes on every machine together (several machines); ~ = nproc", "", low=1),
    _s("ip", "str", "localhost", "several processes: the address of the machine of rank 0", ""),
    _s("port", "int", 29500, "several processes: a free port on the machine of rank 0", "", low=1, high=65535),
    _s("offset", "int", 0, "several machines: the global rank of this machine's first process", "", low=0),
]
SETTINGS = {s.key: s for s in _TABLE}
GROUP_FILES = {"generator": PROPS_DIR / "generator.yaml", "rat": PROPS_DIR / "rat.yaml", "overall": PROPS_DIR / "overall.yaml"}

#: RecBole's numbers that the plugin checks before anything runs: (type, low, low excluded)
RECBOLE_NUMBERS = {
    "epochs": ("int", 1, False), "train_batch_size": ("int", 1, False), "eval_batch_size": ("int", 1, False),
    "learning_rate": ("float", 0, True), "stopping_step": ("int", 1, False), "eval_step": ("int", 1, False),
    "MAX_ITEM_LIST_LENGTH": ("int", 1, False), "hidden_size": ("int", 1, False), "embedding_size": ("int", 1, False),
    "inner_size": ("int", 1, False), "n_layers": ("int", 1, False), "n_heads": ("int", 1, False),
    "weight_decay": ("float", 0, False), "seed": ("int", 0, False), "hidden_dropout_prob": ("float", 0, False),
    "attn_dropout_prob": ("float", 0, False),
}


def choices(key):
    """A word setting's allowed values."""
    return SETTINGS[key].choices


def keys(used_by=None, group=None):
    """The plugin's keys, optionally only those read by ``used_by`` or defaulted in ``group``'s file."""
    return frozenset(k for k, s in SETTINGS.items()
                     if (used_by is None or s.used_by == used_by) and (group is None or s.group == group))


def read(config, key, default=None):
    """``config[key]`` when the config (a RecBole Config or a dict) holds a value, else the table's
    default, else ``default`` (a RecBole key's, or a fallback the owner computes, such as ``~``'s meaning)."""
    try:
        value = config[key] if config is not None else None
    except (KeyError, TypeError):
        value = None
    if value is not None:
        return value
    table = SETTINGS[key].default if key in SETTINGS else None
    return default if table is None else table


def check(key, value):
    """Refuse a value of the wrong type or outside its range or choices, naming what is allowed."""
    if value is None:
        return
    if key in RECBOLE_NUMBERS:
        kind, low, low_open = RECBOLE_NUMBERS[key]
        _check_number(key, value, kind, low, low_open, None, False)
        return
    s = SETTINGS.get(key)
    if s is None:
        return
    if s.kind == "word" and value not in s.choices:
        raise UserError(f"{key}={value}: use one of {', '.join(s.choices)}.")
    if s.kind in ("int", "float"):
        _check_number(key, value, s.kind, s.low, s.low_open, s.high, s.high_open)
    if s.kind == "bool" and not isinstance(value, bool):
        raise UserError(f"{key}={value!r}: must be True or False.")


def _check_number(key, value, kind, low, low_open, high, high_open):
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "int" and ok and float(value) != int(value):
        ok = False
    if not ok:
        raise UserError(f"{key}={value!r}: must be {'a whole number' if kind == 'int' else 'a number'}.")
    if low is not None and (value < low or (low_open and value == low)):
        raise UserError(f"{key}={value}: must be {'>' if low_open else '>='} {low}.")
    if high is not None and (value > high or (high_open and value == high)):
        raise UserError(f"{key}={value}: must be {'<' if high_open else '<='} {high}.")


# ---------------------------------------------------------------------------------------- written files
def _yaml_value(value):
    if value is None:
        return "~"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, str):
        return value
    if isinstance(value, float) and (abs(value) < 1e-3 and value):
        return f"{value:.1e}"
    return str(value)


_HEADERS = {
    "generator": ("# recbole-llmemb: stage-1 defaults (item text -> language model -> item vectors).\n"
                  "# Written from recbole_llmemb/settings.py (python -m recbole_llmemb.settings --write): edit there.\n"
                  "# Any key can be overridden in a config file or on the command line (--key=value).\n"),
    "rat": ("# RAT (recommendation adaptation training): how every plugin model (LLMEmb*, SAID*, TSLRec*) turns\n"
            "# frozen item vectors into its item table. Layered over RecBole's own file for the model's backbone,\n"
            "# under the method's file (props/said.yaml, props/tslrec.yaml) and props/<Model>.yaml.\n"
            "# Written from recbole_llmemb/settings.py (python -m recbole_llmemb.settings --write): edit there.\n"),
}


def props_text(group):
    """The text of ``props/<group>.yaml``: each key of the group with its default and meaning."""
    lines = [_HEADERS[group]]
    for s in _TABLE:
        if s.group == group:
            lines.append(f"{s.key + ': ' + _yaml_value(s.default):<34} # {s.meaning}\n")
    return "".join(lines)


def markdown():
    """``docs/settings.md``: every plugin key with its type, default, allowed values and meaning."""
    titles = {"generator": "Stage 1: the language model and the methods' fine-tuning (`props/generator.yaml`)",
              "rat": "Stage 2: RAT, the models' item table (`props/rat.yaml`)",
              "overall": "The run (`props/overall.yaml`)",
              "": "Given in a dataset's props file, a config file or on the command line (no default file)"}
    out = ["# Settings\n\n",
           "Every plugin setting (written from `recbole_llmemb/settings.py` by "
           "`python -m recbole_llmemb.settings --write`; do not edit by hand). Any key can be set in a "
           "config file (`--config_files=my.yaml`) or on the command line (`--key=value`); `~` is none. "
           "RecBole's own settings are RecBole's: see its documentation.\n\n"
           "Read by: `model` = the plugin's models only (a RecBole model refuses it on the command line); "
           "`text` = the plugin's models and the text re-ranker; `rerank` = the re-ranker only; `any` = every run.\n"]
    for group, title in titles.items():
        out += [f"\n## {title}\n\n", "| key | type | default | allowed | read by | meaning |\n", "|---|---|---|---|---|---|\n"]
        for s in _TABLE:
            if s.group != group:
                continue
            allowed = " \\| ".join(s.choices) if s.choices else _range(s)
            default = _yaml_value(s.default) if not isinstance(s.default, dict) else ", ".join(
                f"{k}: {_yaml_value(v)}" for k, v in s.default.items())
            out.append(f"| `{s.key}` | {s.kind} | `{default}` | {allowed} | {s.used_by} | {s.meaning.replace('|', chr(92) + '|')} |\n")
    return "".join(out)


def _range(s):
    if s.low is None and s.high is None:
        return ""
    left = "-inf" if s.low is None else f"{'(' if s.low_open else '['}{s.low:g}"
    right = "inf)" if s.high is None else f"{s.high:g}{')' if s.high_open else ']'}"
    return f"{left}, {right}"


def write():
    """Rewrite the files that come from this table."""
    for group in ("generator", "rat"):
        GROUP_FILES[group].write_text(props_text(group), encoding="utf-8")
    DOCS_PAGE.parent.mkdir(exist_ok=True)
    DOCS_PAGE.write_text(markdown(), encoding="utf-8")


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python -m recbole_llmemb.settings --write")
    write()
    print(f"wrote {GROUP_FILES['generator']}, {GROUP_FILES['rat']}, {DOCS_PAGE}")
