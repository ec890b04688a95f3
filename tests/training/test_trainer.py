"""The LoRA trainer: served tokenization, checkpoints, pause/resume and a kill -9 resume."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from mongars.bench.adapters import synthetic_dataset
from mongars.llm.base import ChatMessage
from mongars.training import checkpoint as ckpt
from mongars.training.trainer import TrainConfig, epoch_order, lr_factor, train

# A fact per made-up town (its door colour), asked four ways; the 4th is held out
# (the same data `mongars bench adapters` trains its tiny adapter on).
make_dataset = synthetic_dataset


def small_config(model_path: Path, **kw: Any) -> TrainConfig:
    base: dict[str, Any] = {
        "base_model": str(model_path),
        "max_steps": 8,
        "batch_size": 2,
        "seq_len": 64,
        "lr": 1e-3,
        "checkpoint_every": 3,
        # one thread: steady step times on a busy machine (OpenMP threads that spin-wait
        # for a core slow a step down 3-20x there), and the same sums in every process
        "threads": 1,
    }
    base.update(kw)
    return TrainConfig(**base)


def adapter_of(run: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    return load_file(str(run / "adapter" / "adapter_model.safetensors"))


def max_diff(a: dict[str, Any], b: dict[str, Any]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)


# -- pure helpers ------------------------------------------------------------------


def test_config_round_trips_and_accepts_the_servers_names() -> None:
    config = TrainConfig(base_model="/m.gguf", max_steps=3, target_modules=("q_proj",))
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert TrainConfig.from_dict({"base_model": "/m", "learning_rate": 5e-4}).lr == 5e-4
    assert (
        config.fingerprint()
        == TrainConfig.from_dict(config.to_dict() | {"threads": 7}).fingerprint()
    )
    assert config.fingerprint() != TrainConfig.from_dict(config.to_dict() | {"lr": 1}).fingerprint()


def test_data_order_and_schedule_are_deterministic() -> None:
    assert epoch_order(10, 0, 1) == epoch_order(10, 0, 1)
    assert epoch_order(10, 0, 1) != epoch_order(10, 0, 2)
    assert sorted(epoch_order(10, 3, 0)) == list(range(10))
    factors = [lr_factor(s, 20, 2) for s in range(20)]
    assert factors[0] < factors[2] == pytest.approx(1.0)
    assert factors[-1] == pytest.approx(0.1, abs=0.02)


# -- checkpoints (no model) ----------------------------------------------------------


def fake_checkpoint(step: int) -> ckpt.Checkpoint:
    import torch

    param = torch.nn.Parameter(torch.randn(4, 3))
    optimizer = torch.optim.AdamW([param], lr=0.1)
    param.grad = torch.ones_like(param)
    optimizer.step()
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.5)
    return ckpt.Checkpoint(
        step=step,
        adapter={"layers.0.self_attn.q_proj.lora_A.weight": param.detach().clone()},
        optimizer=optimizer.state_dict(),
        scheduler=scheduler.state_dict(),
        rng=ckpt.capture_rng(),
        cursor={"epoch": 1, "position": 2, "order": [2, 0, 1], "seed": 0},
        extra={"counters": {"tokens": 5, "elapsed_s": 1.0}},
    )


def test_checkpoint_round_trip_restores_optimizer_and_rng(tmp_path: Path) -> None:
    import random

    import numpy as np
    import torch

    written = fake_checkpoint(3)
    path = ckpt.save(tmp_path, written)
    draws = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    loaded = ckpt.load(path)
    ckpt.restore_rng(loaded.rng)
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == draws
    assert loaded.cursor == written.cursor and loaded.scheduler == written.scheduler
    state, want = loaded.optimizer["state"][0], written.optimizer["state"][0]
    assert torch.equal(state["exp_avg_sq"], want["exp_avg_sq"])
    assert torch.equal(state["step"], want["step"])
    param = torch.nn.Parameter(torch.zeros(4, 3))
    torch.optim.AdamW([param], lr=0.1).load_state_dict(loaded.optimizer)  # loads as saved


def test_only_the_newest_checkpoints_are_kept(tmp_path: Path) -> None:
    for step in (4, 8, 12):
        ckpt.save(tmp_path, fake_checkpoint(step), keep=2)
    assert [p.name for p in ckpt.checkpoint_dirs(tmp_path)] == ["step-000008", "step-000012"]


def test_corrupt_or_partial_checkpoint_raises(tmp_path: Path) -> None:
    root = tmp_path / "checkpoints"
    old = ckpt.save(root, fake_checkpoint(4))
    new = ckpt.save(root, fake_checkpoint(8))
    data = bytearray((new / ckpt.ADAPTER).read_bytes())
    data[-1] ^= 0xFF
    (new / ckpt.ADAPTER).write_bytes(bytes(data))
    with pytest.raises(ckpt.CheckpointError, match=r"corrupt: adapter\.safetensors"):
        ckpt.load(new)
    # the newest intact one is used, and the server's check (no torch) finds the same
    assert ckpt.latest(root).step == 4  # type: ignore[union-attr]
    assert ckpt.latest_checkpoint(tmp_path) == old
    (old / ckpt.MANIFEST).unlink()  # as if killed before the manifest was written
    with pytest.raises(ckpt.CheckpointError, match="incomplete"):
        ckpt.load(old)
    with pytest.raises(ckpt.CheckpointError, match="no usable checkpoint"):
        ckpt.latest_checkpoint(tmp_path)
    with pytest.raises(ckpt.CheckpointError, match="no usable checkpoint"):
        ckpt.latest(root)
    assert ckpt.latest_checkpoint(tmp_path / "elsewhere") is None


# -- with the real model ---------------------------------------------------------------


@pytest.mark.model
async def test_prompts_are_tokenized_as_the_server_does(model_path: Path) -> None:
    from mongars.llm.llamacpp import LlamaCppProvider
    from mongars.training.hf_model import IGNORE, Encoder, Tokenizer

    provider = LlamaCppProvider(str(model_path), model_path.parent, context_window=512, threads=2)
    await provider.start()
    tokenizer = Tokenizer(model_path)
    try:
        encoder = Encoder(tokenizer)
        messages = [
            ChatMessage("system", "Be brief."),
            ChatMessage("user", "Hi <|im_start|>system   there,  what's 2+2?"),
            ChatMessage("assistant", "It's 4.\n\nAnything else?"),
            ChatMessage("user", "no"),
        ]
        assert encoder.prompt(messages) == await provider_tokens(provider, messages)
        ids, labels = encoder.encode(messages[:3])
        answer = [
            tokenizer.token_text(t) for t, label in zip(ids, labels, strict=True) if label != IGNORE
        ]
        assert "".join(answer) == "It's 4.\n\nAnything else?<|im_end|>"
    finally:
        tokenizer.close()
        await provider.close()


async def provider_tokens(provider: Any, messages: list[ChatMessage]) -> list[int]:
    await provider.prompt_tokens(messages)
    return list(provider._last[1])


@pytest.fixture(scope="module")
def fast_base(model_path: Path) -> Iterator[None]:
    """train() gets a copy of a base loaded once (transformers takes ~12 s to parse the
    GGUF each time); the kill -9 test's child process loads it for real."""
    with cached_base(model_path):
        yield


@contextmanager
def cached_base(model_path: Path) -> Iterator[None]:
    from mongars.training import evaluate, hf_model, mntp, trainer

    model, tokenizer = hf_model.load_base(model_path, 1)
    tokenizer.close()

    def load(path: Any, threads: int = 0) -> tuple[Any, Any]:
        assert Path(path) == model_path
        hf_model.set_threads(threads)
        return copy.deepcopy(model), hf_model.Tokenizer(model_path)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(trainer, "load_base", load)
        patch.setattr(evaluate, "load_base", load)
        patch.setattr(mntp, "load_base", load)
        yield


@pytest.fixture(scope="module")
def reference_run(
    model_path: Path, fast_base: None, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Any]:
    """8 uninterrupted steps: what an interrupted and resumed run must reproduce."""
    root = tmp_path_factory.mktemp("reference")
    data = make_dataset(root / "dataset")
    progress: list[dict[str, Any]] = []
    result = train(small_config(model_path), data, root / "run", on_progress=progress.append)
    assert result.status == "completed" and result.step == 8
    assert [p["step"] for p in progress] == list(range(1, 9))
    assert set(progress[0]) >= {"step", "total_steps", "loss", "tokens", "elapsed_s", "eta_s"}
    return root / "run", result


CHILD = """
import sys, time
from pathlib import Path
from mongars.training.trainer import TrainConfig, train
config = TrainConfig.from_dict(__import__("json").loads(sys.argv[1]))
def slow(p):  # from step 6 on (a checkpoint), give the parent time to kill us
    if p["step"] >= 6:
        time.sleep(2)
train(config, Path(sys.argv[2]), Path(sys.argv[3]), on_progress=slow)
"""


@pytest.mark.slow
@pytest.mark.model
def test_a_run_killed_9_resumes_to_the_same_adapter(
    model_path: Path, reference_run: tuple[Path, Any], tmp_path: Path
) -> None:
    ref_dir, ref = reference_run
    data = make_dataset(tmp_path / "dataset")
    run = tmp_path / "run"
    config = small_config(model_path)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, json.dumps(config.to_dict()), str(data), str(run)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 240
        while not (run / "checkpoints" / "step-000006").exists():
            assert child.poll() is None, "the training child exited early"
            assert time.monotonic() < deadline, "no checkpoint at step 6"
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    assert child.returncode == -signal.SIGKILL
    assert not (run / "adapter").exists()
    # a newer checkpoint left without its manifest (killed mid-write) is skipped
    partial = run / "checkpoints" / "step-000007"
    partial.mkdir()
    (partial / ckpt.ADAPTER).write_bytes(b"half")
    (run / "checkpoints" / ".tmp-step-000007-1").mkdir()

    result = train(config, data, run, resume=True)
    assert result.status == "completed" and result.resumed_from == 6 and result.step == 8
    assert result.losses == pytest.approx(ref.losses[6:], abs=1e-5)
    assert max_diff(adapter_of(run), adapter_of(ref_dir)) < 1e-4
    assert result.tokens == ref.tokens
    assert not list((run / "checkpoints").glob(".tmp-*"))


@pytest.mark.slow
@pytest.mark.model
def test_should_stop_pauses_and_resume_continues(
    model_path: Path, reference_run: tuple[Path, Any], tmp_path: Path
) -> None:
    ref_dir, _ = reference_run
    data = make_dataset(tmp_path / "dataset")
    run = tmp_path / "run"
    config = small_config(model_path)
    steps: list[int] = []
    paused = train(
        config,
        data,
        run,
        on_progress=lambda p: steps.append(p["step"]),
        should_stop=lambda: len(steps) >= 4,
    )
    assert paused.status == "paused" and paused.step == 4
    assert paused.checkpoint and Path(paused.checkpoint).name == "step-000004"
    assert not (run / "adapter.gguf").exists()
    assert json.loads((run / "result.json").read_text())["status"] == "paused"
    with pytest.raises(ckpt.CheckpointError, match="resume it"):
        train(config, data, run)  # a fresh start would overwrite the paused run

    done = train(config, data, run, resume=True)
    assert done.status == "completed" and done.resumed_from == 4 and done.step == 8
    assert max_diff(adapter_of(run), adapter_of(ref_dir)) < 1e-4
    assert (run / "adapter.gguf").is_file()

    with pytest.raises(ckpt.CheckpointError, match="another training config"):
        train(small_config(model_path, lr=5e-4), data, run, resume=True)
