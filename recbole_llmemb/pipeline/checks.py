"""The user's settings checked before anything runs: a key nobody reads gets a "did you mean",
a value outside its type, range or choices one message (from the settings table,
``recbole_llmemb/settings.py``), a setting this run would not read is refused or dropped, and a
loss the model cannot train with is refused before RecBole's data loaders fail on it."""
import difflib
from functools import lru_cache
from pathlib import Path

import yaml

from recbole_llmemb import settings
from recbole_llmemb.errors import UserError

#: keys that RecBole sets itself (in its Config or its dataset code) rather than reading from a file
RECBOLE_SET_KEYS = {
    "config_files", "model", "dataset", "MODEL_TYPE", "device", "eval_type", "local_rank", "encoding",
    "single_spec", "is_cuda", "train_neg_sample_args", "valid_neg_sample_args", "test_neg_sample_args",
    "MODEL_INPUT_TYPE",
}
SEQUENTIAL_LOSSES = ("CE", "BPR")


def _yaml_keys(path):
    try:
        with open(path, encoding="utf-8") as f:
            return set(yaml.safe_load(f) or {})
    except (OSError, yaml.YAMLError, TypeError):
        return set()


@lru_cache(maxsize=1)
def known_keys():
    """Every setting RecBole or the plugin reads: RecBole's argument lists and property files (every
    model's, every dataset's), the plugin's settings table and the keys of its presets."""
    import recbole
    from recbole.utils import argument_list

    keys = set(RECBOLE_SET_KEYS) | set(settings.SETTINGS)
    for name in dir(argument_list):
        if name.endswith("_arguments"):
            keys |= set(getattr(argument_list, name))
    for path in (Path(recbole.__file__).parent / "properties").rglob("*.yaml"):
        keys |= _yaml_keys(path)
    for path in settings.PROPS_DIR.glob("*.yaml"):
        keys |= _yaml_keys(path)
    return frozenset(keys)


def plugin_model_keys():
    """Settings only the plugin's own models read (RAT's, the alignment SASRec's epochs)."""
    return settings.keys(used_by="model")


def text_keys():
    """Settings of the item text and the language model: read by the plugin's models and the re-ranker."""
    return settings.keys(used_by="text")


#: the re-ranker's settings that a plugin model's ``text_score`` reads too
TEXT_QUERY_KEYS = {"text_blend_last", "text_blend_vectors", "text_blend_gate"}


def uses_text_query(config, plugin_model):
    """Whether the run reads the text vectors of the re-ranker or of a plugin model's ``text_score`` or
    ``self_distill``."""
    return float(config["text_blend"] or 0) > 0 or (
        plugin_model and any(float(config[k] or 0) > 0 for k in ("text_score", "self_distill", "text_mixture")))


def unused_keys(config, plugin_model):
    """The settings this run would not read: a plugin model's for a RecBole model, the language
    model's and the item text's without the re-ranker (for a RecBole model), the re-ranker's beside
    ``text_blend: 0`` (but for those ``text_score`` reads). No results file records them as if applied."""
    rerank = float(config["text_blend"] or 0) > 0
    unused = set() if rerank else set(settings.keys(used_by="rerank"))
    if uses_text_query(config, plugin_model):
        unused -= TEXT_QUERY_KEYS
    if not plugin_model:
        unused |= plugin_model_keys() | (set() if rerank else text_keys())
    return unused & set(config.final_config_dict)


def why_unused(key, model):
    if settings.SETTINGS[key].used_by == "rerank":
        also = " or a plugin model's text score (--text_score=5)" if key in TEXT_QUERY_KEYS else ""
        return (f"{key} is a setting of the text re-ranker, which is off (text_blend=0): turn it on "
                f"(--text_blend=0.3 or props/rerank.yaml){also} or leave {key} out.")
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
    if "new_item_ids" in command_line_keys and not float(config["new_items"] or 0) > 0:
        raise UserError("new_item_ids sets the id offsets of new items, and there are none (new_items=0): "
                        "hold some out (--new_items=0.1) or leave new_item_ids out.")
    if plugin_model and "text_score_trainable" in command_line_keys and not float(config["text_score"] or 0) > 0:
        raise UserError("text_score_trainable says whether the text term's weight is learned, and there is no "
                        "text term (text_score=0): give --text_score=W or leave text_score_trainable out.")
    if plugin_model and "self_distill_users" in command_line_keys and not float(config["self_distill"] or 0) > 0:
        raise UserError("self_distill_users says how many users teach each user, and self-distillation is off "
                        "(self_distill=0): give --self_distill=0.1 or leave self_distill_users out.")
    from recbole.utils import ModelType

    if config["target_weights"] == "recent" and (config["loss_type"] != "CE" or model.endswith("BERT4Rec")
                                                   or config["MODEL_TYPE"] != ModelType.SEQUENTIAL):
        raise UserError(f"target_weights=recent weighs a cross-entropy loss; {model} trains with another (BPR, or "
                        "BERT4Rec's own, or a general model's): leave target_weights out.")
    mixed = (plugin_model and float(config["text_mixture"] or 0) > 0) or (
        float(config["text_blend"] or 0) > 0 and config["text_blend_mode"] == "mixture")
    for key, what in (("text_mixture_tau", "the temperature of the text's part of a mixture"),
                      ("text_mixture_over", "the items the model's part of a mixture covers"),
                      ("text_mixture_new_share", "the text's share of a mixture for the new items"),
                      ("text_mixture_tail_share", "the text's share of a mixture for users whose last items are tail items")):
        if key in command_line_keys and not mixed:
            raise UserError(f"{key} is {what}, and there is no mixture (text_mixture=0, and no re-ranker with "
                            f"text_blend_mode=mixture): give --text_mixture=0.3 or leave {key} out.")
    if "text_mixture_new_share" in command_line_keys and not float(config["new_items"] or 0) > 0:
        raise UserError("text_mixture_new_share is the text's share of the mixture for the new items, and no item is "
                        "held out of training (new_items=0): give --new_items=0.1 or leave text_mixture_new_share out.")
    if plugin_model and "text_mixture_own_loss" in command_line_keys and not float(config["text_mixture"] or 0) > 0:
        raise UserError("text_mixture_own_loss weighs the model's own loss beside the mixture's in training, and no "
                        "model is trained with a mixture (text_mixture=0): give --text_mixture=0.5 or leave "
                        "text_mixture_own_loss out.")
    for key in ("text_score", "self_distill", "text_mixture"):  # each reads the user at the last position
        if plugin_model and float(config[key] or 0) > 0 and model.endswith("BERT4Rec"):
            raise UserError(f"{key}={config[key]}: {model} represents masked positions, and {key} is defined for "
                            "models that represent a user by the last position (SASRec, GRU4Rec backbones); "
                            f"leave {key} out.")
    nproc, world = int(config["nproc"] or 1), config["world_size"]
    if world is not None and int(world) < nproc:
        raise UserError(f"world_size={world} counts every process of the run, and this machine alone runs nproc={nproc}: "
                        f"give world_size >= {nproc} or leave it out.")
    launcher = sorted(k for k in ("world_size", "ip", "port", "offset") if k in command_line_keys)
    if launcher and nproc <= 1 and not (world and int(world) > 1):
        raise UserError(f"{launcher[0]} sets up a run in several processes, and this one runs in one (nproc=1): "
                        "give --nproc=N (and world_size for several machines) or leave it out.")
    if plugin_model and float(config["id_dropout"] or 0) > 0 and not config["item_id_emb"]:
        raise UserError(f"id_dropout={config['id_dropout']} leaves out id offsets, and there are none "
                        "(item_id_emb=False): leave id_dropout out or set item_id_emb=True.")
    if plugin_model and float(config["id_l2"] or 0) > 0 and not config["item_id_emb"]:
        raise UserError(f"id_l2={config['id_l2']} penalises the id offsets, and there are none "
                        "(item_id_emb=False): leave id_l2 out or set item_id_emb=True.")
    if plugin_model and config["adapter_mode"] == "principal" and (config["adapter_layernorm"] or float(config["adapter_dropout"] or 0) > 0):
        raise UserError("adapter_mode=principal is a fixed projection: leave adapter_layernorm and adapter_dropout out.")
    if plugin_model or uses_text_query(config, plugin_model):
        from recbole_llmemb.generator.backbone import resolve_model_path

        resolve_model_path(config)  # a wrong model is one line before the dataset loads, not after
    if plugin_model and config["id_offsets"] == "head" and not config["item_id_emb"]:
        raise UserError("id_offsets=head keeps id offsets for head items only, and there are none "
                        "(item_id_emb=False): leave id_offsets out or set item_id_emb=True.")


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


def check_values(config, keys, explicit=()):
    """Every value from the settings table's type, range and choices, and a loss the model trains with.
    A plugin setting the user gave as none (``explicit``) is refused where it has a default: a value
    the user gives is honoured or refused, never replaced."""
    for key in keys:
        settings.check(key, config[key])
    for key in sorted(explicit):
        default = settings.SETTINGS[key].default if key in settings.SETTINGS else None
        if default is not None and config[key] is None:
            raise UserError(f"{key}=None: give a value (the default is {default!r}), or leave it out.")
    from recbole.utils import ModelType

    if config["MODEL_TYPE"] == ModelType.SEQUENTIAL and config["loss_type"] not in SEQUENTIAL_LOSSES:
        raise UserError(f"loss_type={config['loss_type']}: RecBole's sequential models ({config['model']}) train with "
                        f"{' or '.join(SEQUENTIAL_LOSSES)}. For one sampled negative per target, use "
                        "--loss_type=BPR (props/paper.yaml does).")
