"""The user's settings checked before anything runs: a key nobody reads gets a "did you mean",
a number that is not one or is out of range gets one message, and a loss the model cannot train
with is refused before RecBole's data loaders fail on it."""
import difflib
from functools import lru_cache
from pathlib import Path

import yaml

from recbole_llmemb.errors import UserError

PROPS_DIR = Path(__file__).resolve().parent.parent / "props"
#: settings read by the plugin's code that no props file lists
PLUGIN_KEYS = {
    "eval_checkpoint", "resume_checkpoint", "report", "item_text_fields", "item_text_instruction",
    "item_text_list_fields", "item_text_names", "item_text_phrase_fields",
    "config_files", "model", "dataset",
    # RecBole's own, set by its Config or its dataset code rather than by a property file
    "MODEL_TYPE", "device", "eval_type", "local_rank", "encoding", "single_spec", "is_cuda",
    "train_neg_sample_args", "valid_neg_sample_args", "test_neg_sample_args", "MODEL_INPUT_TYPE",
}
#: numeric settings: (type, smallest allowed value, whether the smallest is excluded)
NUMBERS = {
    "epochs": (int, 1, False), "collab_epochs": (int, 1, False), "train_batch_size": (int, 1, False),
    "eval_batch_size": (int, 1, False), "learning_rate": (float, 0, True), "stopping_step": (int, 1, False),
    "eval_step": (int, 1, False), "MAX_ITEM_LIST_LENGTH": (int, 1, False), "hidden_size": (int, 1, False),
    "embedding_size": (int, 1, False), "inner_size": (int, 1, False), "n_layers": (int, 1, False),
    "n_heads": (int, 1, False), "weight_decay": (float, 0, False), "seed": (int, 0, False),
    "hidden_dropout_prob": (float, 0, False), "attn_dropout_prob": (float, 0, False),
    "scft_steps": (int, 0, False), "scft_batch_size": (int, 2, False), "scft_lr": (float, 0, True),
    "llm_max_length": (int, 1, False), "llm_batch_size": (int, 1, False), "lora_r": (int, 1, False),
    "said_tokens": (int, 1, False), "said_batch_size": (int, 1, False), "said_lr": (float, 0, True),
    "said_id_dim": (int, 1, False), "alpha": (float, 0, False), "align_tau": (float, 0, True),
    "text_blend": (float, 0, False), "text_blend_last": (int, 1, False),
    "said_epochs": (int, 1, False), "said_steps": (int, 1, False), "said_max_length": (int, 1, False),
    "said_mask_ratio": (float, 0, True), "said_lora_lr": (float, 0, True), "lora_alpha": (int, 1, False),
    "lora_dropout": (float, 0, False), "scft_drop_ratio": (float, 0, False), "scft_epochs": (int, 1, False),
    "scft_weight_decay": (float, 0, False), "adapter_dropout": (float, 0, False), "adapter_hidden": (int, 1, False),
    "tslrec_k": (int, 2, False), "tslrec_epochs": (int, 1, False), "tslrec_batch_size": (int, 1, False),
    "tslrec_lr": (float, 0, True), "tslrec_max_length": (int, 1, False), "tslrec_item_length": (int, 1, False), "tslrec_valid_share": (float, 0, False),
    "stage_checkpoint_seconds": (float, 0, False),
    "pca_dim": (int, 1, False),
}
SEQUENTIAL_LOSSES = ("CE", "BPR")
#: word settings: the module (imported only when the key is set) and the name of its allowed values
CHOICES = {
    "adapter_act": ("recbole_llmemb.model.layers", "_ACTIVATIONS"),
    "adapter_init": ("recbole_llmemb.model.layers", "ADAPTER_INITS"),
    "adapter_precision": ("recbole_llmemb.model.layers", "PRECISIONS"),
    "llm_emb_norm": ("recbole_llmemb.model.layers", "INPUT_NORMS"),
    "align_loss": ("recbole_llmemb.losses", "ALIGN_LOSSES"),
    "rat_init": ("recbole_llmemb.model.llmemb", "RAT_INITS"),
    "align_targets": ("recbole_llmemb.model.llmemb", "ALIGN_TARGETS"),
    "seq_input_scale": ("recbole_llmemb.model.llmemb", "SEQ_INPUT_SCALES"),
    "text_blend_gate": ("recbole_llmemb.rerank", "GATES"),
    "llm_pooling": ("recbole_llmemb.generator.pooling", "POOLINGS"),
    "scft_loss": ("recbole_llmemb.generator.scft", "LOSSES"),
    "said_export": ("recbole_llmemb.generator.said", "EXPORTS"),
    "said_vocab": ("recbole_llmemb.generator.said", "VOCABS"),
    "tslrec_loss": ("recbole_llmemb.generator.tslrec", "LOSSES"),
    "llm_embedding_method": ("recbole_llmemb.generate", "BUILDERS"),
    "text_blend_vectors": ("recbole_llmemb.generate", "BLEND_VECTORS"),
}


def allowed_words(key):
    """The values a word setting accepts (from the module that uses them: one list, no copy)."""
    import importlib

    module, name = CHOICES[key]
    return tuple(getattr(importlib.import_module(module), name))


def check_word(key, value):
    """Refuse a word setting outside its allowed values, naming them."""
    allowed = allowed_words(key)
    word = str(value).lower() if key == "adapter_act" else value  # activations match case-blind (layers.make_activation)
    if word not in allowed:
        raise UserError(f"{key}={value}: use one of {', '.join(sorted(allowed))}.")


def _yaml_keys(path):
    try:
        with open(path, encoding="utf-8") as f:
            return set(yaml.safe_load(f) or {})
    except (OSError, yaml.YAMLError, TypeError):
        return set()


@lru_cache(maxsize=1)
def known_keys():
    """Every setting RecBole or the plugin reads: RecBole's argument lists and property files
    (every model's, every dataset's), the plugin's props files and its code-only keys."""
    import recbole
    from recbole.utils import argument_list

    keys = set(PLUGIN_KEYS)
    for name in dir(argument_list):
        if name.endswith("_arguments"):
            keys |= set(getattr(argument_list, name))
    for path in (Path(recbole.__file__).parent / "properties").rglob("*.yaml"):
        keys |= _yaml_keys(path)
    for path in PROPS_DIR.glob("*.yaml"):
        keys |= _yaml_keys(path)
    return frozenset(keys)


#: the text re-ranker's settings beside its weight ``text_blend`` (recbole_llmemb/rerank.py)
RERANKER_KEYS = ("text_blend_gate", "text_blend_last", "text_blend_vectors")


@lru_cache(maxsize=1)
def plugin_model_keys():
    """Settings only the plugin's own models read: RAT's and each method's (props/rat.yaml, said.yaml,
    tslrec.yaml), and the alignment SASRec's epochs."""
    return frozenset().union(*(_yaml_keys(PROPS_DIR / f) for f in ("rat.yaml", "said.yaml", "tslrec.yaml")), {"collab_epochs"})


@lru_cache(maxsize=1)
def text_keys():
    """Settings of the item text and the language model: read by the plugin's models and the re-ranker
    (the cache's folder is a place, not a setting of the run: accepted everywhere)."""
    keys = _yaml_keys(PROPS_DIR / "generator.yaml") | {k for k in PLUGIN_KEYS if k.startswith("item_text_")}
    return frozenset(keys - {"embedding_cache_dir"})


def unused_keys(config, plugin_model):
    """The settings this run would not read: a plugin model's for a RecBole model, the language
    model's and the item text's without the re-ranker (for a RecBole model), the re-ranker's beside
    ``text_blend: 0``. No results file records them as if applied."""
    rerank = float(config["text_blend"] or 0) > 0
    unused = set() if rerank else set(RERANKER_KEYS)
    if not plugin_model:
        unused |= plugin_model_keys() | (set() if rerank else text_keys())
    return unused & set(config.final_config_dict)


def why_unused(key, model):
    if key in RERANKER_KEYS:
        return (f"{key} is a setting of the text re-ranker, which is off (text_blend=0): turn it on "
                f"(--text_blend=0.3 or props/rerank.yaml) or leave {key} out.")
    if key in plugin_model_keys():
        return (f"{key} is read only by the plugin's models (LLMEmb*, SAID*, TSLRec*); {model} does not use it: "
                f"leave it out, or run e.g. --model=LLMEmb{model}.")
    return (f"{key} is read only by the plugin's models and the text re-ranker (text_blend > 0); {model} without "
            "the re-ranker does not use it: leave it out.")


def check_applicable(config, plugin_model, command_line_keys):
    """Refuse a setting given on the command line that this run would not use (one given in a config
    file, perhaps shared by several models, is named in a warning and left out of the results file)."""
    model = config["model"]
    for key in sorted(set(command_line_keys) & config.unused_keys):
        raise UserError(why_unused(key, model))
    if float(config["text_blend"] or 0) > 0 and not plugin_model and config["text_blend_vectors"] == "own":
        raise no_own_vectors(model)


def no_own_vectors(model):
    """The error for ``text_blend_vectors=own`` on a model that reads no text vectors (a RecBole model)."""
    return UserError(f"text_blend_vectors=own: {model} reads no text vectors of its own; use plain (the language "
                     "model's own vectors) or an embedding method's name (scft, said, tslrec).")


def check_known(keys, source=None):
    """Refuse a key that nothing reads (a typo would otherwise be silently ignored); ``source`` names
    the config file it came from."""
    known = known_keys()
    for key in keys:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=3, cutoff=0.6)
            hint = f" Did you mean {' or '.join(close)}?" if close else ""
            where = f" in {source}" if source else ""
            raise UserError(f"Unknown setting '{key}'{where}: neither RecBole nor the plugin reads it.{hint}")


def check_values(config, keys):
    """Numbers that are numbers and in range, words that are among their values, and a loss the
    model trains with."""
    for key in keys:
        if key in CHOICES and config[key] is not None:
            check_word(key, config[key])
        if key not in NUMBERS or config[key] is None:
            continue
        kind, low, strict = NUMBERS[key]
        value = config[key]
        ok_type = isinstance(value, (int, float)) and not isinstance(value, bool)
        if kind is int and ok_type and float(value) != int(value):
            ok_type = False
        if not ok_type:
            raise UserError(f"{key}={value!r}: must be {'a whole number' if kind is int else 'a number'}.")
        if value < low or (strict and value == low):
            raise UserError(f"{key}={value}: must be {'>' if strict else '>='} {low}.")
    from recbole.utils import ModelType

    if config["MODEL_TYPE"] == ModelType.SEQUENTIAL and config["loss_type"] not in SEQUENTIAL_LOSSES:
        raise UserError(f"loss_type={config['loss_type']}: RecBole's sequential models ({config['model']}) train with "
                        f"{' or '.join(SEQUENTIAL_LOSSES)}. For one sampled negative per target, use "
                        "--loss_type=BPR (props/paper.yaml does).")
