"""CapsNet Explorer: a Gradio app to see what CapsNet's capsules encode.

`explorer.app.build_demo()` builds it; `python -m explorer` serves it.
Submodules are imported lazily so `explorer.preprocess` / `explorer.views` load without Gradio.
"""
