"""Strict config loading: unknown keys and wrong types stop with a message naming the key."""

from dataclasses import dataclass

import pytest

from azrlib.config import ConfigError, config_to_dict, describe, load_config, option


@dataclass(frozen=True)
class Inner:
    rate: float = option(0.5, "a rate")


@dataclass(frozen=True)
class Demo:
    steps: int = option(10, "how many steps")
    lr: float = option(1e-6, "learning rate")
    name: str = option("x", "a name")
    flag: bool = option(False, "a switch")
    types: tuple[str, ...] = option(("a", "b"), "a list")
    maybe: int | None = option(None, "optional")
    inner: Inner = option(Inner(), "nested")


def test_yaml_and_overrides(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("steps: 3\nlr: 1e-4\ntypes: [x]\ninner: {rate: 2}\n")
    cfg = load_config(Demo, p, ["name=run1", "flag=true", "maybe=4"])
    assert (cfg.steps, cfg.lr, cfg.types, cfg.inner.rate, cfg.name, cfg.flag, cfg.maybe) == \
        (3, 1e-4, ("x",), 2.0, "run1", True, 4)
    assert config_to_dict(cfg)["inner"] == {"rate": 2.0}


@pytest.mark.parametrize("data,needle", [
    ({"stepz": 1}, "stepz"),
    ({"steps": "many"}, "steps"),
    ({"steps": 1.5}, "steps"),
    ({"flag": "yes"}, "flag"),
    ({"types": "a"}, "types"),
    ({"inner": {"rat": 1}}, "inner.rat"),
])
def test_bad_keys_name_the_key(data, needle):
    with pytest.raises(ConfigError, match=needle):
        load_config(Demo, data)


def test_missing_file_and_preset_are_clear(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(Demo, tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="no preset"):
        load_config(Demo, "no-such-preset")


def test_describe_lists_every_field_with_help():
    text = describe(Demo)
    for name in ("steps", "lr", "name", "flag", "types", "maybe", "inner"):
        assert name in text
    assert "learning rate" in text
