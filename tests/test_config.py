import random

import numpy as np
import pytest
import torch

from flowedu import config


def test_mode_reads_the_environment(monkeypatch):
    monkeypatch.setenv("FLOWEDU_MODE", "full")
    assert config.mode() == "full"
    monkeypatch.setenv("FLOWEDU_MODE", " Quick ")
    assert config.mode() == "quick"
    assert config.by_mode(quick=1, full=2) == 1


def test_mode_default_follows_cuda(monkeypatch):
    monkeypatch.delenv("FLOWEDU_MODE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert config.mode() == "full"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert config.mode() == "quick"


def test_unknown_mode_names_the_allowed_values(monkeypatch):
    monkeypatch.setenv("FLOWEDU_MODE", "fast")
    with pytest.raises(ValueError, match="FLOWEDU_MODE must be one of quick, full"):
        config.mode()


def test_device_prefers_cuda_then_mps_then_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert config.device() == torch.device("cpu")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert config.device() == torch.device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert config.device() == torch.device("cuda")


def test_default_dataset(monkeypatch):
    monkeypatch.setenv("FLOWEDU_MODE", "quick")
    monkeypatch.delenv("FLOWEDU_DATASET", raising=False)
    assert config.default_dataset() == "digits"
    monkeypatch.setenv("FLOWEDU_MODE", "full")
    assert config.default_dataset() == "mnist"
    monkeypatch.setenv("FLOWEDU_DATASET", "fashion-mnist")
    assert config.default_dataset() == "fashion-mnist"
    monkeypatch.setenv("FLOWEDU_DATASET", "imagenet")
    with pytest.raises(ValueError, match="FLOWEDU_DATASET must be one of"):
        config.default_dataset()


def test_seed_everything_makes_draws_repeatable():
    def draws():
        generator = config.seed_everything(123)
        legacy = np.random.rand()  # noqa: NPY002 - the global RNG is what seed_everything seeds
        return random.random(), legacy, torch.rand(1).item(), torch.rand(1, generator=generator).item()

    assert draws() == draws()


@pytest.mark.parametrize("seed", [-1, 2**63, 1.5, True, "3"])
def test_seed_everything_rejects_bad_seeds(seed):
    with pytest.raises(ValueError, match="seed must be"):
        config.seed_everything(seed)


def test_setup_prints_mode_device_dataset_and_versions(monkeypatch, capsys):
    monkeypatch.setenv("FLOWEDU_MODE", "quick")
    monkeypatch.delenv("FLOWEDU_DATASET", raising=False)
    info = config.setup(seed=0)
    out = capsys.readouterr().out
    for word in ("mode: quick", f"device: {info['device']}", "dataset: digits", "torch", "flowedu"):
        assert word in out


def test_shared_subpackages_reexport_their_modules():
    import flowedu
    from flowedu.checks import core

    assert flowedu.checks.check_close is core.check_close
    assert "check_nll_from_logits" in flowedu.checks.__all__


def test_reexport_rejects_a_name_exported_twice(tmp_path, monkeypatch):
    package = tmp_path / "twice"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name in ("a", "b"):
        (package / f"{name}.py").write_text("__all__ = ['f']\ndef f():\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    from flowedu._reexport import reexport

    with pytest.raises(ImportError, match="'f' is exported by both a and b"):
        reexport("twice", [str(package)], {})
