"""`python -m explorer`: serve the CapsNet Explorer.

Flags override; without them Gradio's own GRADIO_SERVER_NAME / GRADIO_SERVER_PORT
environment variables apply (and then 127.0.0.1:7860). The CAPSNET_* variables are read at startup,
through capsnet.settings; a bad one stops the server with one sentence.
"""
from __future__ import annotations

import argparse
import sys


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m explorer", description="Serve the CapsNet Explorer (Gradio).")
    p.add_argument("--host", default=None, help="address to bind (default: $GRADIO_SERVER_NAME or 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="port (default: $GRADIO_SERVER_PORT or 7860)")
    p.add_argument("--share", action="store_true", default=None, help="also make a public gradio.live link")
    p.add_argument("--checkpoint", default=None,
                   help="weights (.safetensors); default checkpoints/capsnet.safetensors or $CAPSNET_CHECKPOINT")
    p.add_argument("--data-dir", default=None,
                   help="folder with the MNIST .gz files, for test-digit examples (default: $CAPSNET_DATA, or ./data "
                        "if it holds MNIST; without one only the built-in synthetic examples are offered)")
    p.add_argument("--allow-download", action="store_true",
                   help="add a 'Download MNIST' button that makes this server download MNIST when a visitor clicks "
                        "it (for local use: never on a shared or hosted server)")
    return p.parse_args(argv)


def default_data_dir() -> str | None:
    """$CAPSNET_DATA if set, else ./data when it holds MNIST, else None."""
    from capsnet.settings import settings

    env = settings().data_dir
    if env:
        return env
    from .inputs.examples import mnist_unavailable_reason

    return "data" if mnist_unavailable_reason("data") is None else None


def launch_kwargs(args: argparse.Namespace) -> dict:
    """`demo.launch()` arguments: LAUNCH_OPTIONS plus only the flags given. No host flag means Gradio's
    default bind (127.0.0.1 unless $GRADIO_SERVER_NAME says otherwise); no share link unless --share."""
    from .app import LAUNCH_OPTIONS

    kwargs = dict(LAUNCH_OPTIONS)
    if args.host is not None:
        kwargs["server_name"] = args.host
    if args.port is not None:
        kwargs["server_port"] = args.port
    if args.share:
        kwargs["share"] = True
    return kwargs


def main(argv=None) -> None:
    args = parse_args(argv)  # first, and without torch or Gradio: --help answers at once
    from capsnet.settings import SettingsError

    from .app import build_demo, explorer_ui
    from .limits import serve
    from .serving import server_environment

    server_environment()  # before build_demo: Gradio reads these when the demo's queue is made
    data_dir = args.data_dir if args.data_dir is not None else default_data_dir()
    try:
        demo = build_demo(args.checkpoint, data_dir=data_dir, allow_download=args.allow_download)
    except SettingsError as e:  # a bad CAPSNET_* number: its one sentence, not a traceback
        sys.exit(f"python -m explorer: {e}")
    # prints "Running on local URL: ..."; SIGINT / SIGTERM stop it and delete its uploads and temporary files
    serve(demo, extra_dirs=[explorer_ui(demo).tmp_dir], **launch_kwargs(args))


if __name__ == "__main__":
    main()
