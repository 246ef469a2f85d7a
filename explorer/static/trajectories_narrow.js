() => {
  // The Transforms tab's pose trajectories (#eq-trajectories) put the pose panel and the lengths panel side by
  // side (explorer/views/equivariance.py). Below 600 px of plot width (a phone) the panels' titles and axis
  // titles run into each other, so stack them: pose on top, lengths below, each the full width. Back to side by
  // side when the plot is wide again. A new figure from the server comes side by side and is stacked again: the
  // plot's .change (tabs/equivariance.py) calls capsnetFitTrajectories, and a resize of the plot refits it.
  const DOM = GRADIO_DOM; // Gradio's DOM, as checked by explorer/gradio_compat.py (PAGE_DOM)
  const NARROW = 600;
  const STACKED = {
    "xaxis.domain": [0, 1], "yaxis.domain": [0.45, 1], "xaxis2.domain": [0, 1], "yaxis2.domain": [0, 0.24],
    "annotations[0].x": 0.5, "annotations[1].x": 0.5, "annotations[1].y": 0.24, height: 620, "legend.y": -0.12, width: null, autosize: true,
  };
  const SIDE_BY_SIDE = {
    "xaxis.domain": [0, 0.62], "yaxis.domain": [0, 1], "xaxis2.domain": [0.72, 1], "yaxis2.domain": [0, 1],
    "annotations[0].x": 0.31, "annotations[1].x": 0.86, "annotations[1].y": 1.0, height: 380, "legend.y": -0.22, width: null, autosize: true,
  };
  const fit = (gd) => {
    if (!gd || !gd.layout || !gd.layout.xaxis2 || !window.Plotly || gd.offsetParent === null) return;
    const stacked = gd.layout.xaxis2.domain && gd.layout.xaxis2.domain[0] === 0;
    const narrow = gd.clientWidth < NARROW;
    if (narrow === stacked) return;
    window.Plotly.relayout(gd, narrow ? STACKED : SIDE_BY_SIDE);  // width: null keeps it following the container
  };
  const resized = new ResizeObserver((entries) => entries.forEach((e) => fit(e.target)));
  window.capsnetFitTrajectories = () => window.capsnetWhenPlot(`#eq-trajectories ${DOM.plot}`, (gd) => {
    fit(gd);
    resized.observe(gd); // once per element: observing it again changes nothing
  });
}
