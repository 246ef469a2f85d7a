() => {
  // The plots' scripts (pose_link.js, trajectories_narrow.js, routing_links.js) run when Gradio changes a plot's
  // value (its .change event's js, wired in Python), which is before plotly has drawn the new figure: this calls
  // fn(gd) with the plot's element as soon as plotly has drawn it (at most 2 s of animation frames).
  window.capsnetWhenPlot = (selector, fn, frames = 120) => {
    const gd = document.querySelector(selector);
    if (gd && typeof gd.on === "function" && gd.layout) fn(gd);
    else if (frames > 0) requestAnimationFrame(() => window.capsnetWhenPlot(selector, fn, frames - 1));
  };
}
