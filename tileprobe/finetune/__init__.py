"""Fine-tuning: the baseline a frozen embedding and a small head are measured against.

The task's backbone is trained end to end on the tiles' (or images') pixels, in three variants named in a task's
`finetune` list: `partial` (the last `partial_blocks` blocks and a new linear output), `full` (every weight) and
`scratch` (the same architecture from random weights). A fine-tuned network is a head like any other: it runs
through the very same cross-validation, folds, seeds, metrics and outputs (`tileprobe.learn.evaluate`), so the
report puts its rows beside the frozen heads', with the time each took.
"""
