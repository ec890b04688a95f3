"""LoRA fine-tuning of the served model (runs in the trainer's child process).

``train(config, dataset_dir, run_dir)`` reads ``dataset_dir/data.jsonl``, trains
a plain LoRA (peft) on the base GGUF's weights and writes into ``run_dir``::

    config.json                  the TrainConfig of the run
    checkpoints/step-NNNNNN/     the newest 2 checkpoints (see checkpoint.py)
    adapter/                     peft adapter (adapter_model.safetensors, adapter_config.json)
    adapter.gguf                 the same LoRA for llama.cpp (SFT only; see export.py)
    result.json                  the TrainResult

SFT: each ``train`` record is rendered with the model's chat template and the
loss is the causal LM loss on the assistant tokens only. Data order is a
seeded shuffle per epoch; with the RNG states and the cursor checkpointed, a
resumed run continues exactly where the interrupted one would have gone.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from mongars.training import checkpoint as ckpt
from mongars.training.hf_model import IGNORE, Encoder, load_base, messages_of, on_device

ProgressFn = Callable[[dict[str, Any]], None]
StopFn = Callable[[], bool]


@dataclass
class TrainConfig:
    """One training run. ``max_steps`` (when set) overrides ``epochs``."""

    base_model: str  # path of the served GGUF
    objective: Literal["sft", "mntp"] = "sft"
    max_steps: int | None = None
    epochs: int = 1
    batch_size: int = 4
    seq_len: int = 256
    lr: float = 2e-4
    warmup_steps: int = 2
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    # Attention projections: what llama.cpp adapts cheaply, and the Q/K permutation path
    # export.py must get right; the MLP modules (gate/up/down_proj) are accepted too.
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    checkpoint_every: int = 10
    keep_checkpoints: int = 2
    seed: int = 0
    threads: int = 0  # torch threads; 0 = every core
    mntp_mask_prob: float = 0.2

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["target_modules"] = list(self.target_modules)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if "learning_rate" in data and "lr" not in data:
            values["lr"] = float(data["learning_rate"])
        if "target_modules" in values:
            values["target_modules"] = tuple(values["target_modules"])
        return cls(**values)

    def fingerprint(self) -> str:
        """What a checkpoint must share with the run resuming it (threads may change)."""
        data = self.to_dict()
        data.pop("threads")
        data.pop("checkpoint_every")
        data.pop("keep_checkpoints")
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


@dataclass
class TrainResult:
    status: Literal["completed", "paused"]
    step: int
    total_steps: int
    loss: float | None  # the mean loss of the last up to 10 steps
    tokens: int  # loss tokens seen, over all sessions of the run
    elapsed_s: float  # training time, over all sessions of the run
    train_examples: int
    skipped_examples: int  # records with no assistant token within seq_len
    resumed_from: int | None = None
    checkpoint: str | None = None
    adapter_dir: str | None = None
    gguf_path: str | None = None
    losses: list[float] = field(default_factory=list)  # this session's per-step losses

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Example:
    ids: list[int]
    labels: list[int]


def read_records(dataset_dir: Path) -> tuple[list[dict[str, Any]], str]:
    """The records of ``data.jsonl`` and the file's sha256."""
    path = Path(dataset_dir) / "data.jsonl"
    raw = path.read_bytes()
    records = [json.loads(line) for line in raw.decode("utf-8").splitlines() if line.strip()]
    return records, hashlib.sha256(raw).hexdigest()


def encode_records(
    records: list[dict[str, Any]], encoder: Encoder, seq_len: int, split: str
) -> tuple[list[Example], int]:
    """SFT examples of one split (the last ``seq_len`` tokens of each), and how many
    records were left out for having no assistant token there."""
    out: list[Example] = []
    skipped = 0
    for record in records:
        if record.get("split", "train") != split:
            continue
        ids, labels = encoder.encode(messages_of(record))
        ids, labels = ids[-seq_len:], labels[-seq_len:]
        if all(label == IGNORE for label in labels[1:]):
            skipped += 1
            continue
        out.append(Example(ids, labels))
    return out, skipped


def collate(batch: list[Example], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded tensors: input_ids, attention_mask, labels (IGNORE on padding)."""
    width = max(len(e.ids) for e in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, e in enumerate(batch):
        ids[row, : len(e.ids)] = torch.tensor(e.ids)
        labels[row, : len(e.labels)] = torch.tensor(e.labels)
        mask[row, : len(e.ids)] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def causal_loss(model: Any, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    """Mean next-token loss over the labelled tokens, and their number."""
    batch = on_device(batch, model)
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    target = batch["labels"][:, 1:]
    n = int((target != IGNORE).sum())
    loss = torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]).float(),
        target.reshape(-1),
        ignore_index=IGNORE,
        reduction="sum",
    )
    return loss / max(n, 1), n


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    return [int(i) for i in np.random.default_rng([seed, epoch]).permutation(n)]


def lr_factor(step: int, total: int, warmup: int) -> float:
    """Linear warm-up, then cosine decay to 10% (``step`` counts from 0)."""
    if step < warmup:
        return (step + 1) / (warmup + 1)
    progress = (step - warmup) / max(1, total - warmup)
    return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def attach_lora(model: Any, config: TrainConfig) -> Any:
    """The base wrapped with a fresh plain LoRA (seeded init; rsLoRA off)."""
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=list(config.target_modules),
        use_rslora=False,
        bias="none",
        task_type="CAUSAL_LM",
    )
    with warnings.catch_warnings():  # peft calls a transformers API deprecated in 5.x
        warnings.simplefilter("ignore", FutureWarning)
        return get_peft_model(model, lora)


LossFn = Callable[[Any, dict[str, torch.Tensor]], tuple[torch.Tensor, int]]


class _Session:
    """The model, optimizer, schedule and data cursor of a run; saved and restored whole."""

    def __init__(
        self, config: TrainConfig, model: Any, examples: list[Example], loss_fn: LossFn, pad: int
    ) -> None:
        self.config, self.model, self.examples = config, model, examples
        self.loss_fn, self.pad = loss_fn, pad
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(
            self.params, lr=config.lr, weight_decay=config.weight_decay
        )
        per_epoch = math.ceil(len(examples) / config.batch_size)
        self.total = config.max_steps if config.max_steps is not None else config.epochs * per_epoch
        total, warmup = self.total, config.warmup_steps
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: lr_factor(s, total, warmup)
        )
        self.step, self.epoch, self.position = 0, 0, 0
        self.order = epoch_order(len(examples), config.seed, 0)
        self.counters: dict[str, float] = {"tokens": 0, "elapsed_s": 0.0}
        self.recent: list[float] = []  # the last 10 losses

    def restore(self, previous: ckpt.Checkpoint) -> None:
        from peft import set_peft_model_state_dict

        set_peft_model_state_dict(self.model, previous.adapter)
        self.optimizer.load_state_dict(previous.optimizer)
        self.scheduler.load_state_dict(previous.scheduler)
        ckpt.restore_rng(previous.rng)
        self.step = previous.step
        self.epoch, self.position = previous.cursor["epoch"], previous.cursor["position"]
        self.order = list(previous.cursor["order"])
        self.counters = dict(previous.extra["counters"])
        self.recent = list(previous.extra.get("recent_losses", []))

    def save(self, root: Path, data_sha: str) -> Path:
        from peft import get_peft_model_state_dict

        cfg = self.config
        state = ckpt.Checkpoint(
            step=self.step,
            adapter=dict(get_peft_model_state_dict(self.model, save_embedding_layers=False)),
            optimizer=self.optimizer.state_dict(),
            scheduler=self.scheduler.state_dict(),
            rng=ckpt.capture_rng(),
            cursor={
                "epoch": self.epoch,
                "position": self.position,
                "order": self.order,
                "seed": cfg.seed,
            },
            extra={
                "counters": self.counters,
                "recent_losses": self.recent,
                "config": cfg.fingerprint(),
                "dataset_sha256": data_sha,
            },
        )
        return ckpt.save(root, state, keep=cfg.keep_checkpoints)

    def train_step(self) -> dict[str, Any]:
        """One optimizer step on the next batch; its progress record (without eta_s)."""
        cfg = self.config
        if self.position >= len(self.order):
            self.epoch, self.position = self.epoch + 1, 0
            self.order = epoch_order(len(self.examples), cfg.seed, self.epoch)
        t0 = time.monotonic()
        chosen = self.order[self.position : self.position + cfg.batch_size]
        loss, n_tokens = self.loss_fn(
            self.model, collate([self.examples[i] for i in chosen], self.pad)
        )
        loss.backward()
        if cfg.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.params, cfg.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        self.position += cfg.batch_size
        value = float(loss.detach())
        self.recent = [*self.recent, value][-10:]
        self.counters["tokens"] += n_tokens
        self.counters["elapsed_s"] += time.monotonic() - t0
        return {
            "step": self.step,
            "total_steps": self.total,
            "loss": value,
            "tokens": n_tokens,
            "elapsed_s": round(self.counters["elapsed_s"], 3),
            "lr": self.scheduler.get_last_lr()[0],
            "epoch": self.epoch,
        }


def train(
    config: TrainConfig,
    dataset_dir: Path | str,
    run_dir: Path | str,
    on_progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
    resume: bool = False,
    provenance: dict[str, str] | None = None,
) -> TrainResult:
    """Train (or, with ``resume``, continue) a LoRA; see the module docstring.

    ``should_stop`` is asked after each step: True writes a checkpoint and returns
    with status "paused". A fresh run refuses a folder that has checkpoints.
    """
    if config.objective not in ("sft", "mntp"):
        raise ValueError(f"unknown training objective {config.objective!r}")
    run = Path(run_dir)
    root = run / "checkpoints"
    run.mkdir(parents=True, exist_ok=True)
    ckpt.clean_partial(root)
    previous = ckpt.latest(root) if resume else None
    if not resume and ckpt.checkpoint_dirs(root):
        raise ckpt.CheckpointError(f"{run} has checkpoints already: resume it or use a new folder")
    records, data_sha = read_records(Path(dataset_dir))
    if previous is not None:
        _check_fits(previous, config, data_sha)
    (run / "config.json").write_text(json.dumps(config.to_dict(), indent=1))

    model, tokenizer = load_base(config.base_model, config.threads)
    loss_fn: LossFn
    if config.objective == "mntp":
        from mongars.training import mntp

        examples, skipped = mntp.encode_records(records, tokenizer, config.seq_len)
        loss_fn = mntp.MntpLoss(tokenizer, config)
    else:
        examples, skipped = encode_records(records, Encoder(tokenizer), config.seq_len, "train")
        loss_fn = causal_loss
    if not examples:
        raise ValueError("the dataset has no usable training record")
    seed_all(config.seed)  # after loading: the LoRA init depends on the seed alone
    session = _Session(config, attach_lora(model, config), examples, loss_fn, tokenizer.eos_id)
    if previous is not None:
        session.restore(previous)
    result = TrainResult(
        status="completed",
        step=session.step,
        total_steps=session.total,
        loss=None,
        tokens=0,
        elapsed_s=0.0,
        train_examples=len(examples),
        skipped_examples=skipped,
        resumed_from=previous.step if previous else None,
    )
    last_saved = previous.path if previous else None
    session.model.train()
    started = time.monotonic()
    while session.step < session.total:
        progress = session.train_step()
        result.losses.append(progress["loss"])
        per_step = (time.monotonic() - started) / len(result.losses)
        progress["eta_s"] = round(per_step * (session.total - session.step), 1)
        if on_progress is not None:
            on_progress(progress)
        stop = session.step < session.total and should_stop is not None and should_stop()
        every = config.checkpoint_every
        if stop or (every > 0 and session.step % every == 0):
            last_saved = session.save(root, data_sha)
        if stop:
            result.status = "paused"
            break
    result.step, result.checkpoint = session.step, str(last_saved) if last_saved else None
    result.loss = sum(session.recent) / len(session.recent) if session.recent else None
    result.tokens = int(session.counters["tokens"])
    result.elapsed_s = round(session.counters["elapsed_s"], 3)
    if result.status == "completed":
        _write_outputs(session.model, config, run, result, data_sha, provenance or {})
    (run / "result.json").write_text(json.dumps(result.to_dict(), indent=1))
    tokenizer.close()
    return result


def _check_fits(previous: ckpt.Checkpoint, config: TrainConfig, data_sha: str) -> None:
    if previous.extra.get("config") != config.fingerprint():
        raise ckpt.CheckpointError(f"{previous.path} was written with another training config")
    if previous.extra.get("dataset_sha256") != data_sha:
        raise ckpt.CheckpointError(f"{previous.path} was written for another dataset")


def _write_outputs(
    model: Any,
    config: TrainConfig,
    run: Path,
    result: TrainResult,
    data_sha: str,
    provenance: dict[str, str],
) -> None:
    from mongars.training.export import export_gguf_lora, write_peft_adapter

    result.adapter_dir = str(write_peft_adapter(model, run / "adapter"))
    if config.objective != "sft":  # an MNTP adapter is a text encoder, never served
        return
    meta = {
        "mongars.run_id": run.name,
        "mongars.dataset_sha256": data_sha,
        "mongars.base_model": Path(config.base_model).name,
        "mongars.objective": config.objective,
        "mongars.steps": str(result.step),
        **provenance,
    }
    out = export_gguf_lora(model, config.base_model, run / "adapter.gguf", config.lora_alpha, meta)
    result.gguf_path = str(out)
