"""comfybridge: a small client of the ComfyUI HTTP + websocket API.

It imports nothing from Django; configuration comes in through constructors.
See comfybridge/README.md for the public API.
"""
