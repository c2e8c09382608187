"""The study's fixed seed offsets. Its params are typed by slimaudio.schemas.pwl_softmax
(`PwlFit`, `PwlSoftmax`), built by the stages with slimaudio.spec.build."""

from __future__ import annotations

# Seeds derived from base.seed. Fixed values: changing one changes every number it feeds.
LOGIT_CROPS_SEED_OFFSET = 7   # pwl_fit: the clean training crops whose attention logits are fitted
FT_CACHE_SEED_OFFSET = 1      # pwl_softmax: the noisy training crops of the frozen-trunk cache
