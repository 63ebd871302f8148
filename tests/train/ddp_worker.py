"""Run under torchrun by test_train_distributed.py: train the toy task with DDP.

Usage: ``python -m torch.distributed.run --nproc_per_node 2 ddp_worker.py OUT_DIR RUN_DIR``.
Each rank starts from different weights (DDP must broadcast rank 0's), trains, and writes its
final weights to ``OUT_DIR/rank<r>.safetensors`` and its result to ``OUT_DIR/rank<r>.json``.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file
from train_toys import DDP_BATCHES, DDP_EVAL, FixedSource, ddp_config, make_net, toy_loss

from seqlab.train import Trainer
from seqlab.train.distributed import all_reduce_sum, barrier, cleanup, init_from_env


def main(out_dir: Path, run_dir: Path) -> None:
    """Train on this rank's shards and write what the test compares."""
    torch.set_num_threads(1)
    info = init_from_env()
    assert info.world_size == 2, info
    net = make_net(seed=100 + info.rank)
    scores = iter(DDP_EVAL[info.rank])
    trainer = Trainer(
        net, toy_loss, ddp_config(), run_dir=run_dir, evaluate=lambda: {"loss": next(scores)}
    )
    result = trainer.fit(FixedSource(DDP_BATCHES, n=11))
    total = all_reduce_sum(torch.tensor([float(info.rank + 1)]))
    save_file(
        {k: v.contiguous() for k, v in net.state_dict().items()},
        out_dir / f"rank{info.rank}.safetensors",
    )
    summary = dataclasses.asdict(result) | {"all_reduce": total.item()}
    (out_dir / f"rank{info.rank}.json").write_text(json.dumps(summary))
    barrier()
    cleanup()


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
