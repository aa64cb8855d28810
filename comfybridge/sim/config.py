"""Settings of one simulator instance, shared by the CLI and ``create_app``."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

CHECKPOINTS = (
    "sd_xl_base_1.0.safetensors",
    "sd_xl_refiner_1.0.safetensors",
    "sd_xl_inpaint_0.1.safetensors",
)


@dataclasses.dataclass
class SimConfig:
    host: str = "127.0.0.1"
    port: int = 8188
    # None means "a fresh temporary directory", created by ``resolve_data_dir``.
    data_dir: Path | None = None
    # Time a sampler spends per step; the only knob that makes SDXL-like graphs slow.
    step_ms: float = 0.0
    # Extra time image nodes spend per megapixel they process, so large image graphs
    # (the reference "slow" workflows) take long enough to be interrupted or deleted.
    ms_per_megapixel: float = 0.0
    # Fault injection. Rates are probabilities in [0, 1].
    jitter: float = 0.0
    fail_rate: float = 0.0
    http_error_rate: float = 0.0
    ws_drop_rate: float = 0.0
    slow_accept_ms: float = 0.0
    crash_after: int | None = None
    seed: int | None = None
    exec_log: Path | None = None
    # One JSON line per finished prompt: its history's start and end timestamps (ms).
    timing_log: Path | None = None
    max_upload_size: int = 100 * 1024 * 1024
    # When set, every route and the /ws upgrade need ``Authorization: Bearer <token>``, as a
    # backend behind an authenticating proxy would.
    auth_token: str | None = None
    # The checkpoint names offered in ckpt_name combos and /models/checkpoints.
    checkpoints: tuple[str, ...] = CHECKPOINTS
    # Time a loader spends when it loads another model than the one the server holds: what
    # a checkpoint switch costs on a GPU, so that model affinity can be measured.
    model_load_ms: float = 0.0
    # Refuse a client-supplied prompt_id that is not a canonical UUID, as newer ComfyUI does.
    require_uuid_prompt_ids: bool = False
    argv: list[str] = dataclasses.field(default_factory=list)

    def resolve_data_dir(self) -> Path:
        if self.data_dir is None:
            self.data_dir = Path(tempfile.mkdtemp(prefix="comfybridge-sim-"))
        self.data_dir = Path(self.data_dir).resolve()
        for sub in ("input", "output", "temp"):
            (self.data_dir / sub).mkdir(parents=True, exist_ok=True)
        return self.data_dir
