"""`python -m explorer`: serve the CapsNet Explorer.

Flags override; without them Gradio's own GRADIO_SERVER_NAME / GRADIO_SERVER_PORT
environment variables apply (and then 127.0.0.1:7860).
"""
from __future__ import annotations

import argparse
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


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
    return p.parse_args(argv)


def default_data_dir() -> str | None:
    """$CAPSNET_DATA if set, else ./data when it holds MNIST, else None."""
    env = os.environ.get("CAPSNET_DATA")
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
    args = parse_args(argv)
    from .app import build_demo
    from .limits import serve

    demo = build_demo(args.checkpoint, data_dir=args.data_dir if args.data_dir is not None else default_data_dir())
    # prints "Running on local URL: ..."; SIGINT / SIGTERM stop it and delete its uploads and temporary files
    serve(demo, extra_dirs=[demo.explorer.tmp_dir], **launch_kwargs(args))


if __name__ == "__main__":
    main()
