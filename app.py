"""Hugging Face Spaces entry point: the same app as `python -m explorer`."""
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from explorer.app import LAUNCH_OPTIONS, build_demo  # noqa: E402
from explorer.limits import serve  # noqa: E402

demo = build_demo(data_dir=os.environ.get("CAPSNET_DATA"))  # no MNIST by default: synthetic examples + a download button

if __name__ == "__main__":
    serve(demo, extra_dirs=[demo.explorer.tmp_dir], **LAUNCH_OPTIONS)  # SIGTERM / SIGINT: stop and delete its files
