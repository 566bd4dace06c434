"""``python -m offline bench CONFIG``: seconds per training step of each stage's network.

Runs a few optimizer steps on random audio of the config's window and batch size with the
configured precision and device (no data needed), after warm-up steps that are not timed, and
prints seconds per step and the implied time of one epoch over ``--train-clips`` clips (7578 =
four fifths of FSDKaggle2018's 9473 training clips). Use it to size a run before starting it.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import torch

from offline.commands.arguments import add_experiment_arguments, experiment_from_args
from offline.config import STAGES
from offline.training import autocast_for, soft_cross_entropy
from rtag.model import resolve_device
from rtag.networks import CnnComb, build_network

__all__ = ["register", "run", "seconds_per_step"]


def seconds_per_step(network: torch.nn.Module, window_samples: int, num_classes: int, batch_size: int, precision: str, device: torch.device, steps: int, warmup_steps: int = 1) -> float:
    """Mean wall time of ``steps`` training steps (forward, loss, backward, Adam) after warm-up.

    Args:
        network: the network to train (moved to ``device``).
        window_samples: input length.
        num_classes: output size.
        batch_size: examples per step.
        precision: ``"fp32"``, ``"bf16"`` or ``"fp16"``.
        device: where to run.
        steps: timed steps.
        warmup_steps: untimed steps first (default 1).
    """
    network = network.to(device).train()
    optimizer = torch.optim.Adam([p for p in network.parameters() if p.requires_grad], lr=1e-3)
    scaler = torch.amp.GradScaler("cuda", enabled=precision == "fp16")
    generator = torch.Generator().manual_seed(0)
    audio = (torch.rand(batch_size, window_samples, generator=generator) * 2 - 1).to(device)
    target = torch.nn.functional.one_hot(torch.arange(batch_size) % num_classes, num_classes).float().to(device)
    elapsed = 0.0
    for step in range(warmup_steps + steps):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        started = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        with autocast_for(device, precision):
            logits = network(audio)
        scaler.scale(soft_cross_entropy(logits, target)).backward()
        scaler.step(optimizer)
        scaler.update()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if step >= warmup_steps:
            elapsed += time.perf_counter() - started
    return elapsed / steps


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``bench`` parser."""
    parser = subparsers.add_parser("bench", help="time training steps of each stage's network (no data needed)",
        description="Time training steps (forward, backward, optimizer) of cnn-audio, cnn-spec and cnn-comb on random "
                    "inputs of the experiment's model size, with an epoch estimate; needs no data.")
    add_experiment_arguments(parser)
    parser.add_argument("--stage", choices=STAGES, action="append", help="stage(s) to time (default: all three)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps (default 3)")
    parser.add_argument("--train-clips", type=int, default=7578, help="clips per epoch for the epoch estimate (default 7578)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print seconds per step and per epoch for each stage."""
    cfg = experiment_from_args(args)
    device = resolve_device(cfg.train.device)
    steps_per_epoch = max(1, args.train_clips // cfg.train.batch_size)
    for stage in args.stage or STAGES:
        network = build_network(dataclasses.replace(cfg.model, kind=stage))
        if isinstance(network, CnnComb):
            network.freeze_features()  # stage 3 trains only the dense head
        seconds = seconds_per_step(
            network, cfg.model.window_samples, cfg.model.num_classes, cfg.train.batch_size, cfg.train.precision, device, args.steps
        )
        print(
            f"{cfg.name} {stage}: {seconds:.3f} s/step (batch {cfg.train.batch_size}, {cfg.train.precision}, {device}, "
            f"{torch.get_num_threads()} threads), {seconds * steps_per_epoch / 60:.1f} min/epoch of {args.train_clips} clips"
        )
    return 0
