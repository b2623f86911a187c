"""Data-parallel smoke run: ``torchrun --nproc_per_node=2 -m kgvsf_explore.training._ddp_smoke``.

Trains the tiny preset for a few steps on a tiny sample world with the gloo backend (CPU), then
gathers a checksum of every rank's final weights; rank 0 writes them, with the checksum of the
saved checkpoint, to ``<out>/ddp_check.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    """Run the smoke test (under ``torchrun``; also works in a single process)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--steps", type=int, default=4, help="steps per phase")
    parser.add_argument("--seed", type=int, default=3, help="sample world seed")
    args = parser.parse_args(argv)

    import torch
    import torch.distributed as dist

    from ..cube import Cube
    from ..models.config import preset
    from ..world import make_world
    from .checkpoint import tensors_sha256, weights_sha256
    from .loop import pretrain

    torch.set_num_threads(1)
    dist.init_process_group(backend="gloo")
    try:
        rank, world = dist.get_rank(), dist.get_world_size()
        ds, _ = make_world(seed=args.seed, size="tiny")
        p = preset("tiny", phase1_steps=args.steps, phase2_steps=args.steps, batch_size=2,
                   eval_every=2, val_batches=2)
        out = Path(args.out)
        result = pretrain(Cube(ds), out, p.model, p.train, device="cpu", progress=False)
        assert result.model is not None
        local = tensors_sha256(result.model.state_dict())
        sums: list[str | None] = [None] * world
        dist.all_gather_object(sums, local)
        if rank == 0:
            report = {
                "world_size": world,
                "rank_weights_sha256": sums,
                "checkpoint_weights_sha256": weights_sha256(out),
                "steps": result.steps,
                "history": result.history,
            }
            (out / "ddp_check.json").write_text(json.dumps(report, indent=1))
        dist.barrier()
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
