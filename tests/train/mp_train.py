"""Train a few steps on the mini world; run plainly or under `accelerate launch` (see test_multiprocess)."""

import sys
from pathlib import Path

from profuser.models.loading import load_causal_lm
from profuser.train.loop import train_fusion
from profuser.train.schedules import get_schedule
from tests.train.test_loop import _cfg, _examples

world, out = Path(sys.argv[1]), Path(sys.argv[2])
exs, tok = _examples(world, 8)
cfg = _cfg(micro_batch=1, checkpoint_every=100)
model = load_causal_lm(str(world / "models" / "vicuna-like"))
train_fusion(model, tok, exs, get_schedule("simulfuse"), cfg, out, seed=3, k=4)
