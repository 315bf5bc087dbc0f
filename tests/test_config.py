import os
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


def test_steps_and_size_follow_the_mode_and_the_smoke_cap(monkeypatch):
    monkeypatch.delenv("FLOWEDU_SMOKE", raising=False)
    monkeypatch.delenv("FLOWEDU_LONG", raising=False)
    monkeypatch.setenv("FLOWEDU_MODE", "quick")
    assert config.steps(quick=40, full=20) == 40 and config.size(quick=300, full=10_000) == 300
    monkeypatch.setenv("FLOWEDU_MODE", "full")
    assert config.steps(quick=40, full=20, long=3000) == 20
    monkeypatch.setenv("FLOWEDU_LONG", "1")
    assert config.steps(quick=40, full=20, long=3000) == 3000 and config.by_mode(quick=1, full=2, long=3) == 3
    monkeypatch.setenv("FLOWEDU_SMOKE", "1")
    assert config.steps(quick=40, full=20, long=3000) == config.SMOKE_STEPS
    assert config.steps(quick=1, full=1) == 1  # a cap, never an increase
    assert config.size(quick=300, full=10_000) == config.SMOKE_SIZE
    assert config.size(quick=300, full=10_000, smoke=200) == 200
    assert config.by_mode(quick=(256,), full=(512, 256)) == (512, 256)  # models keep their full size
    monkeypatch.setenv("FLOWEDU_MODE", "quick")
    assert config.by_mode(quick=1, full=2, long=3) == 1  # FLOWEDU_LONG means nothing in quick mode


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "10", None])
def test_steps_reject_what_is_not_a_positive_integer(bad):
    with pytest.raises(ValueError, match="must be a positive integer"):
        config.steps(quick=bad, full=10)
    with pytest.raises(ValueError, match="must be a positive integer"):
        config.size(quick=10, full=bad)


def test_steps_accept_numpy_integers(monkeypatch):
    monkeypatch.delenv("FLOWEDU_SMOKE", raising=False)
    monkeypatch.setenv("FLOWEDU_MODE", "quick")
    assert config.steps(quick=np.int64(7), full=9) == 7


def test_flags_reject_unknown_values(monkeypatch):
    monkeypatch.setenv("FLOWEDU_SMOKE", "maybe")
    with pytest.raises(ValueError, match="FLOWEDU_SMOKE must be 0 or 1"):
        config.is_smoke()


def test_claim_asserts_or_reports_a_skip_under_smoke(monkeypatch, capsys):
    monkeypatch.delenv("FLOWEDU_SMOKE", raising=False)
    assert config.claim(1.7 < 1.9, "NLL 1.7 < 1.9") is None  # nothing to display at the end of a cell
    with pytest.raises(config.ClaimError, match="NLL 2.1 < 1.9"):
        config.claim(2.1 < 1.9, "NLL 2.1 < 1.9")
    with pytest.raises(AssertionError):  # a ClaimError is an AssertionError, as nbval and pytest expect
        config.claim(torch.tensor(False), "a 0-d tensor is a condition too")
    monkeypatch.setenv("FLOWEDU_SMOKE", "1")
    assert config.claim(2.1 < 1.9, "NLL 2.1 < 1.9") is None
    out = capsys.readouterr().out
    assert "claim skipped" in out and "FLOWEDU_SMOKE=1" in out and "NLL 2.1 < 1.9" in out
    with pytest.raises(ValueError, match="message"):
        config.claim(True, "")


def test_record_appends_json_lines_only_when_asked(monkeypatch, tmp_path):
    import json

    target = tmp_path / "results.jsonl"
    monkeypatch.delenv("FLOWEDU_SMOKE", raising=False)
    monkeypatch.setenv("FLOWEDU_MODE", "quick")
    monkeypatch.delenv("FLOWEDU_RESULTS", raising=False)
    config.record("vae.test_elbo", -98.6, unit="nats")
    assert not target.exists()
    monkeypatch.setenv("FLOWEDU_RESULTS", str(target))
    config.record("vae.test_elbo", -98.6, unit="nats", note="latent 2")
    config.record("vae.dataset_note", "digits")
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert [line["key"] for line in lines] == ["vae.test_elbo", "vae.dataset_note"]
    assert lines[0]["value"] == -98.6 and lines[0]["unit"] == "nats" and lines[0]["mode"] == "quick"
    monkeypatch.setenv("FLOWEDU_SMOKE", "1")  # capped runs never reach the results page
    config.record("vae.test_elbo", -300.0)
    assert len(target.read_text().splitlines()) == 2
    with pytest.raises(ValueError, match="dotted name"):
        config.record("elbo", 1.0)
    with pytest.raises(ValueError, match="finite"):
        config.record("vae.elbo", float("nan"))


def test_quick_mode_uses_one_math_thread_unless_told(monkeypatch):
    monkeypatch.setenv("FLOWEDU_MODE", "quick")
    monkeypatch.delenv("FLOWEDU_THREADS", raising=False)
    assert config.threads() == 1
    monkeypatch.setenv("FLOWEDU_THREADS", "2")
    assert config.threads() == 2
    monkeypatch.setenv("FLOWEDU_MODE", "full")
    monkeypatch.delenv("FLOWEDU_THREADS")
    assert config.threads() is None
    monkeypatch.setenv("FLOWEDU_THREADS", "two")
    with pytest.raises(ValueError, match="FLOWEDU_THREADS"):
        config.threads()


def test_setup_tells_a_full_mode_user_how_to_switch_to_quick(monkeypatch, capsys):
    monkeypatch.setenv("FLOWEDU_MODE", "full")
    monkeypatch.delenv("FLOWEDU_SMOKE", raising=False)
    monkeypatch.delenv("FLOWEDU_THREADS", raising=False)
    threads = torch.get_num_threads()
    try:
        config.setup(0, dataset="none")
    finally:
        torch.set_num_threads(threads)
    assert "%env FLOWEDU_MODE=quick" in capsys.readouterr().out


def test_progress_bars_follow_tqdm_disable(monkeypatch):
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    assert config.progress_enabled() and not config.progress_enabled(False)
    monkeypatch.setenv("TQDM_DISABLE", "1")
    assert not config.progress_enabled(True)


def test_a_claim_measured_on_some_data_sets_is_only_reported_on_others(monkeypatch, capsys):
    monkeypatch.delenv("FLOWEDU_SMOKE", raising=False)
    monkeypatch.setitem(config._session, "dataset", "fashion-mnist")
    config.claim(False, "FCD falls 4x", datasets=("digits",))
    out = capsys.readouterr().out
    assert "not asserted on fashion-mnist: measured on digits only] FCD falls 4x: DOES NOT HOLD" in out
    monkeypatch.setitem(config._session, "dataset", "digits")
    with pytest.raises(config.ClaimError):
        config.claim(False, "FCD falls 4x", datasets=("digits",))
    with pytest.raises(ValueError, match="datasets must be"):
        config.claim(True, "x", datasets="digits")


def test_environment_sets_unsets_and_restores(monkeypatch):
    monkeypatch.setenv("FLOWEDU_TEST_A", "old")
    monkeypatch.setenv("FLOWEDU_TEST_C", "gone")
    monkeypatch.delenv("FLOWEDU_TEST_B", raising=False)
    with pytest.raises(RuntimeError), config.environment({"FLOWEDU_TEST_A": "new", "FLOWEDU_TEST_B": "1"},
                                                        unset=("FLOWEDU_TEST_C",)):
        assert os.environ["FLOWEDU_TEST_A"] == "new" and os.environ["FLOWEDU_TEST_B"] == "1"
        assert "FLOWEDU_TEST_C" not in os.environ
        raise RuntimeError("the block fails")
    assert os.environ["FLOWEDU_TEST_A"] == "old" and os.environ["FLOWEDU_TEST_C"] == "gone"
    assert "FLOWEDU_TEST_B" not in os.environ
    with pytest.raises(ValueError, match="values must map names to strings"):
        with config.environment({"FLOWEDU_TEST_A": 1}):
            pass
