"""The task each process of a data-parallel group runs (a bench.workers job): start the
framework's distributed runtime for its World, then train each item's model for its
steps on the global batches, returning the losses and final parameters. The process
of rank 0 also trains the same model on one device on the same global batches (the
baseline parity compares with), recording that run's gradients for the optimizer-form
bounds. Nothing is caught per item: a replica that stopped would leave its peers
waiting in a collective, so any failure ends the process and the group stops it all."""

from __future__ import annotations

import dataclasses
import importlib
import math
from typing import Any

import numpy as np

from bench import data, progress
from bench.distributed import World
from bench.faults import Fault, strike
from bench.parity.cases import DATA_SEED


def start(world: World, timeout_s: float) -> Any:
    """The framework's DataParallel runtime for `world` (impls/<name>/distributed.py)."""
    module = importlib.import_module(f"impls.{world.framework}.distributed")
    return module.DataParallel(world, timeout_s)


def trajectory(dp: Any, spec: Any, params: Any, dtype: str, optimizer: Any, mode: str,
               batch_size: int, steps: int, fault: Fault | None, item_id: str
               ) -> dict[str, Any]:
    """Losses and final parameters of `steps` data-parallel steps on global batches,
    the batches of parity's single-device trajectories (DATA_SEED)."""
    model = dp.build(spec, params, dtype)
    trainer = dp.trainer(model, optimizer, "cross_entropy", mode)
    losses = []
    for t in range(steps):
        strike(fault, f"{item_id}/step{t}")
        x, target = data.batch(spec, batch_size, "cross_entropy", DATA_SEED, index=t)
        losses.append(dp.global_loss(trainer, trainer.step(trainer.put(x, target))))
        if not math.isfinite(losses[-1]):
            raise FloatingPointError(f"non-finite loss {losses[-1]} at step {t} of {item_id}")
    return {"losses": np.array(losses), "final": dp.get_params(model)}


def train_task(args: dict[str, Any], fault: Fault | None = None) -> dict[str, Any]:
    """args: world (World as a dict), items (dicts: case, dtype, optimizer, mode),
    steps, batch_size, timeout_s, baseline (rank 0 also trains on one device)."""
    from bench.parity.cases import case_params, cases, optimizer_spec
    from bench.parity.worker import _trajectory

    world = World(**args["world"])
    dp = start(world, args["timeout_s"])
    by_name = {c.name: c for c in cases()}
    out: dict[str, Any] = {"world": world.to_dict(), "runtime": dp.describe(),
                           "versions": dp.adapter.versions(),
                           "optimizer_forms": dp.adapter.optimizer_forms, "results": {}, "baseline": {},
                           "baseline_errors": {}}
    items = args["items"]
    for done, item in enumerate(items, 1):
        case = by_name[item["case"]]
        key = (item["dtype"], item["case"], item["optimizer"], item["mode"])
        item_id = f"{world.form}/{'/'.join(key)}/p{world.rank}"
        params, opt = case_params(case), optimizer_spec(item["optimizer"])
        out["results"][key] = trajectory(dp, case.spec, params, item["dtype"], opt, item["mode"],
                                         args["batch_size"], args["steps"], fault, item_id)
        if args.get("baseline") and world.rank == 0:
            single = dataclasses.replace(case, batch_size=args["batch_size"])
            try:  # one device, no collective: its failure is this item's alone
                out["baseline"][key] = _trajectory(dp.adapter, single, params, item["dtype"], opt,
                                                   item["mode"], args["steps"], True,
                                                   world.device)
            except Exception as exc:  # noqa: BLE001 - an error row for this item
                out["baseline_errors"][key] = f"{type(exc).__name__}: {exc}"
        progress.say(done, len(items), item_id)
    dp.close()
    return out

