"""A few preference steps on the mini world; run plainly or under `accelerate launch`
(see test_multiprocess)."""

import sys
from pathlib import Path

from profuser.models.loading import load_causal_lm
from profuser.train.preference_loop import train_preference
from tests.train.test_preference_loop import PHASE, _cfg, _pairs

world, out = Path(sys.argv[1]), Path(sys.argv[2])
pex, tok, src = _pairs(world)
cfg = _cfg(micro_batch=1, checkpoint_every=100)
train_preference(load_causal_lm(src), tok, pex, PHASE, cfg, out, seed=3)
