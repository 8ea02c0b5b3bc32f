"""Generator defaults from ``props/generator.yaml`` and a lookup that falls back to them.

Until ``props/generator.yaml`` is part of the config layering, ``setting(config, key)`` reads
the config first and the packaged defaults second, so every generator key has a value.
"""
from functools import lru_cache
from pathlib import Path

import yaml

GENERATOR_PROPS = Path(__file__).resolve().parent.parent.parent / "props" / "generator.yaml"


@lru_cache(maxsize=1)
def defaults():
    """The generator's default settings (a dict) from ``props/generator.yaml``."""
    with open(GENERATOR_PROPS, encoding="utf-8") as f:
        return dict(yaml.safe_load(f) or {})


def _lookup(config, key):
    if config is None:
        return None, False
    if isinstance(config, dict):
        return config.get(key), key in config
    try:
        final = config.final_config_dict
    except AttributeError:
        final = None
    if final is not None:
        return final.get(key), key in final
    try:
        value = config[key]
    except (KeyError, TypeError):
        return None, False
    return value, True


def setting(config, key, default=None):
    """``config[key]`` when the config holds a non-null value, else the generator default, else ``default``."""
    value, _ = _lookup(config, key)
    if value is not None:
        return value
    value = defaults().get(key)
    return default if value is None else value
