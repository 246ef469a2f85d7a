"""Hugging Face Spaces entry point: the same app as `python -m explorer`, never with its --allow-download."""
from capsnet.settings import settings
from explorer.app import LAUNCH_OPTIONS, build_demo, explorer_ui
from explorer.limits import serve
from explorer.serving import server_environment

server_environment()  # before build_demo: Gradio reads these when the demo's queue is made
demo = build_demo(data_dir=settings().data_dir)  # no MNIST by default: synthetic examples, no server-side download

if __name__ == "__main__":
    serve(demo, extra_dirs=[explorer_ui(demo).tmp_dir], **LAUNCH_OPTIONS)  # SIGTERM / SIGINT: stop and delete its files
