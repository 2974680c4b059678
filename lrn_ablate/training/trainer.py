"""The trainer group (conf/trainer/): the settings the training loop reads, declared and checked here."""

from __future__ import annotations

from lrn_ablate.settings import Bool, Choice, Default, Exactly, Group, Int, OneOf, Text

TRAINER = Group("trainer")
# The summary.json numbers a search sweeper can maximise (trainer.objective).
OBJECTIVES = ("final_test_acc", "best_test_acc")


class Device(Text):
    """auto, cpu, cuda or cuda:N."""

    def accepts(self, value: object) -> bool:
        return isinstance(value, str) and (value in ("auto", "cpu", "cuda")
                                           or (value.startswith("cuda:") and value[5:].isdigit()))

    def describe(self) -> str:
        return "one of auto, cpu, cuda or cuda:N"


TRAINER.declare(
    "default",
    epochs=Int(), batch_size=Int(), eval_batch_size=Int(), device=Device(),
    threads=OneOf((Exactly("auto"), Int())), deterministic=Bool(), resume=Choice(("auto", "never")),
    progress=Bool(), precision=Choice(("fp32", "bf16", "fp16")), channels_last=Bool(), compile=Bool(),
    # Runs made before the setting existed have no objective key; they stay valid (and resumable).
    objective=Default(Choice(OBJECTIVES), OBJECTIVES[0]),
    # Under torchrun on GPUs: SyncBatchNorm, statistics over the whole batch. Left out of
    # conf/trainer/default.yaml so that runs made before it stay comparable: +trainer.sync_bn=true.
    sync_bn=Default(Bool(), False),
)
