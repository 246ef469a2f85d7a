"""Views: pure functions from an Analysis / CapsNetOutput to plotly figures, images and JSON. No Gradio here;
every number comes from capsnet (one forward pass, `CapsNet.decode`), never re-derived."""
