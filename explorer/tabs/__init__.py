"""Tabs: one module per tab, `tab(ui: ExplorerUI) -> None` (see explorer.session). Gradio components and
events only; the numbers and figures come from explorer.views."""
