"""A ComfyUI-compatible server for development and tests.

It speaks the HTTP + websocket API of ComfyUI 0.3.64 (see PROTOCOL.md in the
project's reference material) but runs no models: model nodes pass symbolic
values around and ``VAEDecode`` renders a deterministic picture of the prompt.

Entry points:

- ``python -m comfybridge.sim --port 8188`` (see ``comfybridge.sim.__main__``)
- ``comfybridge.sim.server.create_app(config)`` / ``run(config)``
- ``comfybridge.sim.process.SimProcess`` to start one as a subprocess in tests.
"""

from comfybridge.sim.config import SimConfig

__all__ = ["SimConfig"]
