"""CapsNet Explorer: a Gradio app to see what CapsNet's capsules encode.

`explorer.app.build_demo()` builds it; `python -m explorer` serves it. The folders follow the data:
inputs/ -> session.py (one Analysis per browser session) -> views/ (pure, no Gradio) -> tabs/ (Gradio only);
explorer/app.py's docstring maps where each piece lives. Submodules are imported lazily, so
`explorer.inputs.preprocess` and `explorer.views` load without Gradio.
"""
