"""Configuration: RecBole's Config with the plugin's property files and model lookup.

Layers, lowest first: RecBole's defaults, ``props/overall.yaml``, ``props/generator.yaml``; for a
plugin model RecBole's own file for its backbone, ``props/rat.yaml`` and its method's file
(``props/said.yaml``); ``props/<Model>.yaml`` and ``props/<dataset>.yaml`` when they exist; the
user's ``config_file_list``; ``config_dict`` (the command line).
"""
import os
import sys
from pathlib import Path

from recbole_llmemb import compat, distributed, settings
from recbole_llmemb.pipeline.checks import check_applicable, check_known, check_values, unused_keys
from recbole_llmemb.errors import UserError  # noqa: F401  (re-exported: the pipeline raises it too)

compat.apply()

from recbole.config import Config as RecBoleConfig  # noqa: E402
from recbole.utils import ModelType  # noqa: E402
from recbole.utils import get_model as recbole_get_model  # noqa: E402

# RecBole's checkpoints pickle the run's Config: those written before the pipeline package name it
# recbole_llmemb.config.Config, which must keep loading (eval_checkpoint, resume_checkpoint)
sys.modules.setdefault("recbole_llmemb.config", sys.modules[__name__])

PROPS_DIR = Path(__file__).resolve().parent.parent.parent / "props"
REPO_ROOT = PROPS_DIR.parent
RECBOLE_EXAMPLE_DIR = Path(__import__("recbole").__file__).resolve().parent / "dataset_example"
RECBOLE_PROPS_DIR = RECBOLE_EXAMPLE_DIR.parent / "properties"


def plugin_models():
    """The plugin's own models by name (imported lazily: they pull in the LM stack)."""
    from recbole_llmemb.model import MODELS

    return MODELS


def get_model_class(name):
    """Find a model class by name, the plugin's first, then RecBole's."""
    if not isinstance(name, str):
        return name
    models = plugin_models()
    if name in models:
        return models[name]
    try:
        return recbole_get_model(name)
    except ImportError as e:  # RecBole's search imports exlib_recommender, which needs xgboost/lightgbm
        if name.lower() in ("xgboost", "lightgbm"):
            raise UserError(f"Model '{name}' needs the package '{e.name}': pip install {e.name}") from None
        raise UserError(f"Unknown model '{name}'. Plugin models: {', '.join(sorted(models))}; "
                        "or any RecBole model name (SASRec, BERT4Rec, GRU4Rec, Caser, NARM, BPR, ...).") from None
    except (ValueError, AttributeError):
        raise UserError(
            f"Unknown model '{name}'. Plugin models: {', '.join(sorted(models))}; "
            "or any RecBole model name (SASRec, BERT4Rec, GRU4Rec, Caser, NARM, BPR, ...)."
        ) from None


def is_plugin_model(model_class):
    """Whether ``model_class`` is one of the plugin's RAT models (LLMEmb*, SAID*, TSLRec*)."""
    from recbole_llmemb.model import RATMixin

    return isinstance(model_class, type) and issubclass(model_class, RATMixin)


def embedding_method(model_class, config):
    """The stage-1 method whose vectors a plugin model reads: ``llm_embedding_method``, else its own."""
    return str(config["llm_embedding_method"] or model_class.embedding_method)


def uses_collaborative(model_class, config):
    """Whether the pipeline must train or load the alignment SASRec for this run (not to evaluate a
    trained checkpoint: its weights are all there)."""
    if not is_plugin_model(model_class) or config["eval_checkpoint"]:
        return False
    return float(settings.read(config, "alpha")) > 0 or settings.read(config, "rat_init") == "collaborative"


def item_table_size(model_class, config):
    """The size of a model's item table (the alignment SASRec's ``hidden_size``): GRU4Rec's is
    ``embedding_size``, the others' ``hidden_size``."""
    from recbole.model.sequential_recommender import GRU4Rec

    return int(config["embedding_size" if issubclass(model_class, GRU4Rec) else "hidden_size"])


def backbone_of(model_class):
    """The RecBole model a plugin model extends (``None`` for RecBole's own models)."""
    if not model_class.__module__.startswith("recbole_llmemb."):
        return None
    return next((c for c in model_class.__mro__[1:] if c.__module__.startswith("recbole.model.")), None)


def props_files(model_class, dataset):
    """The property files that exist for this model and dataset, lowest first."""
    files = [PROPS_DIR / "overall.yaml", PROPS_DIR / "generator.yaml"]
    backbone = backbone_of(model_class)
    if backbone is not None:  # the backbone's keys from RecBole's own file, then the plugin's on top
        files += [RECBOLE_PROPS_DIR / "model" / f"{backbone.__name__}.yaml", PROPS_DIR / "rat.yaml"]
        if getattr(model_class, "method_props", None):
            files.append(PROPS_DIR / model_class.method_props)
    files += [PROPS_DIR / f"{model_class.__name__}.yaml", PROPS_DIR / f"{dataset}.yaml"]
    return [str(f) for f in files if f.is_file()]


def merge_layers(*layers):
    """Later layers win key by key; a dict value merges into the dict below it."""
    merged = {}
    for layer in layers:
        for key, value in (layer or {}).items():
            if isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key] = {**merged[key], **value}
            else:
                merged[key] = value
    return merged


class Config(RecBoleConfig):
    """RecBole's Config that finds plugin models and layers the plugin's ``props/``."""

    def __init__(self, model=None, dataset=None, config_file_list=None, config_dict=None):
        config_dict = dict(config_dict or {})
        model = model or config_dict.get("model")
        dataset = dataset or config_dict.get("dataset")
        if model is None or dataset is None:
            raise UserError("Both a model and a dataset are needed, e.g. --model=SASRec --dataset=ml-100k.")
        model_class = get_model_class(model)
        for f in config_file_list or []:
            if not os.path.isfile(f):
                raise UserError(f"Config file not found: {f}")
        files = props_files(model_class, dataset) + list(config_file_list or [])
        check_known(config_dict)
        for f in config_file_list or []:
            check_known(self._read_yaml(f), source=f)
        self._explicit_keys = set(config_dict)
        self._dataset_name = dataset
        # the user's own layers, for stages that train a different model on the same setup
        self.user_config_files = list(config_file_list or [])
        self.user_config_dict = dict(config_dict)
        super().__init__(model_class, dataset, files, config_dict)
        check_values(self, set(config_dict) | set(self.file_config_dict),
                     explicit=set(config_dict) | set(self._load_config_files(self.user_config_files)))
        #: settings this run does not read (layered defaults of stages it has not), left out of its results file
        self.unused_keys = unused_keys(self, backbone_of(model_class) is not None)
        #: the unused ones the user's own config files set (the runner warns about them)
        self.ignored_file_keys = sorted(self.unused_keys & set(self._load_config_files(self.user_config_files)))

    def check_applicable(self):
        """Refuse a setting given on the command line that this run would not use (a user's run, not a
        stage's internal one such as the alignment SASRec, whose settings the stage derives)."""
        check_applicable(self, backbone_of(get_model_class(self["model"])) is not None, self.user_config_dict)

    def _load_cmd_line(self):
        """Never ``sys.argv`` (pytest's flags, the runner's own): the runner parses the command line
        itself and passes it as ``config_dict``. RecBole's own ``Config`` keeps reading it."""
        return {}

    def _merge_external_config_dict(self):
        """Later layers override earlier ones key by key; dict values (eval_args, long_tail) merge.

        A dataset that no layer describes loads every column of its atomic files (RecBole's
        fallback loads only ids, and the time-ordered split then sorts by a column it never loaded).
        """
        self.external_config_dict = merge_layers(self.file_config_dict, self.variable_config_dict, self.cmd_config_dict)
        if "load_col" not in self.external_config_dict and not (RECBOLE_PROPS_DIR / "dataset" / f"{self._dataset_name}.yaml").is_file():
            self.external_config_dict["load_col"] = None

    @staticmethod
    def _read_yaml(path):
        """One config file's keys and values (a file that is no YAML mapping is one clear error)."""
        import yaml

        try:
            with open(path, encoding="utf-8") as f:
                loaded = yaml.safe_load(f)
        except yaml.YAMLError as e:
            raise UserError(f"Config file {path} is not valid YAML: {str(e).splitlines()[0]}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise UserError(f"Config file {path} must hold key: value lines, not a {type(loaded).__name__}.")
        return loaded or {}

    def _load_config_files(self, file_list):
        """Like RecBole's, but dict values of later files merge into earlier ones."""
        return merge_layers(*(super(Config, self)._load_config_files([f]) for f in file_list or []))

    def _get_final_config_dict(self):
        final = super()._get_final_config_dict()
        # CE needs no sampled negatives; RecBole refuses its own default for sequential CE models.
        if (
            final.get("loss_type") == "CE"
            and final.get("MODEL_TYPE") == ModelType.SEQUENTIAL
            and "train_neg_sample_args" not in self.external_config_dict
        ):
            final["train_neg_sample_args"] = None
        return final

    def _init_device(self):
        """RecBole's, but several processes run on CPUs too: RecBole asserts a GPU per process and
        hard-codes nccl; here gloo on CPUs, and a stage's own config joins the group the run started."""
        if "local_rank" not in self.final_config_dict:
            return super()._init_device()
        final = self.final_config_dict
        final["gpu_id"] = ",".join(map(str, final["gpu_id"])) if isinstance(final["gpu_id"], tuple) else str(final["gpu_id"])
        final["world_size"] = final.get("world_size") or final.get("nproc") or 1
        final.setdefault("ip", "localhost")
        final.setdefault("port", settings.SETTINGS["port"].default)
        distributed.init_from_config(final)

    def _set_default_parameters(self):
        data_root = self.final_config_dict.get("data_path") or "dataset/"
        super()._set_default_parameters()
        self.final_config_dict["data_path"] = resolve_data_path(data_root, self.dataset)


def resolve_data_path(data_root, dataset):
    """``<data_root>/<dataset>``; a relative root is tried from the cwd, then the repository.

    ml-100k falls back to the copy that RecBole's wheel ships.
    """
    candidates = [Path(data_root) / dataset]
    if not Path(data_root).is_absolute():
        candidates.append(REPO_ROOT / data_root / dataset)
    if dataset == "ml-100k":
        candidates.append(RECBOLE_EXAMPLE_DIR / "ml-100k")
    for c in candidates:
        if (c / f"{dataset}.inter").is_file():
            return str(c.resolve())
    return str(candidates[0])


def parse_args(argv):
    """RecBole's command line: ``--key=value`` (values as Python literals or YAML)."""
    import ast

    import yaml

    out = {}
    for arg in argv:
        if not arg.startswith("--") or "=" not in arg:
            raise UserError(f"Unrecognised argument '{arg}': use --key=value, e.g. --model=SASRec --dataset=ml-100k.")
        key, value = arg[2:].split("=", 1)
        try:
            out[key] = ast.literal_eval(value)  # None, True, 3, 1e-3, {'mode': 'uni100'}
        except (ValueError, SyntaxError):
            try:
                # '~' is YAML's null; a word such as 'none' stays a word (llm_emb_norm=none, text_blend_gate=none)
                out[key] = None if value == "~" else value if value.lower() in ("none", "null") else yaml.safe_load(value)
            except yaml.YAMLError:
                out[key] = value
    return out


def one_process_only(args, command):
    """A stage's own command runs in one process: the launcher's settings are refused in one line."""
    given = [key for key in distributed.LAUNCH_KEYS if key in args]
    if given:
        raise UserError(f"--{given[0]}: {command} runs in one process; run_recbole_llmemb.py --nproc=N runs this "
                        "stage in N processes before it trains.")


def split_command_line(argv, default_model=None):
    """``(model, dataset, config_files, overrides)`` from ``--model=.. --dataset=.. --config_files=a.yaml,b.yaml --k=v``."""
    args = parse_args(argv)
    files = args.pop("config_files", None)
    files = [f for f in str(files).replace(",", " ").split() if f] if files else None
    return args.pop("model", default_model), args.pop("dataset", None), files, args
