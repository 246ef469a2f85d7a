"""Hugging Face Spaces entry point: the same app as `python -m explorer`."""
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from explorer.app import LAUNCH_OPTIONS, build_demo  # noqa: E402

demo = build_demo()

if __name__ == "__main__":
    demo.launch(**LAUNCH_OPTIONS)
