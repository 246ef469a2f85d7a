"""Hugging Face Spaces entry point: the same app as `python -m explorer`."""
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from explorer.app import LAUNCH_OPTIONS, build_demo  # noqa: E402

demo = build_demo(data_dir=os.environ.get("CAPSNET_DATA"))  # no MNIST by default: synthetic examples + a download button

if __name__ == "__main__":
    demo.launch(**LAUNCH_OPTIONS)
