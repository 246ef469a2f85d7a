() => {
  // The Routing tab's link diagram (views.contributions.links_figure): hovering over a digit capsule (the right
  // column of markers, trace meta -2) shows only its links; clicking one keeps them isolated until clicked again.
  // Link traces carry their digit capsule in `meta`; their SVG groups are dimmed directly, so no plotly global is
  // needed. The isolated digit is exposed as data-isolated on the plot (read by the browser test).
  const DOM = GRADIO_DOM; // Gradio's and plotly's DOM, as checked by explorer/gradio_compat.py (PAGE_DOM)
  const DIM = 0.05;
  const bind = (gd) => {
    if (gd.__routingLinks === gd._ev) return; // bound already (a new figure brings a new emitter)
    gd.__routingLinks = gd._ev;
    let locked = null;
    const show = (digit) => {
      const groups = gd.querySelectorAll(DOM.plot_traces);
      (gd.data || []).forEach((t, i) => {
        if (typeof t.meta !== "number" || t.meta < 0 || !groups[i]) return;
        groups[i].style.opacity = digit === null || t.meta === digit ? "" : String(DIM);
      });
      gd.dataset.isolated = digit === null ? "" : String(digit);
    };
    const digitOf = (e) => {
      const p = e && e.points && e.points[0];
      return p && p.data && p.data.meta === -2 ? p.pointNumber : null;
    };
    gd.on("plotly_hover", (e) => { const d = digitOf(e); if (d !== null && locked === null) show(d); });
    gd.on("plotly_unhover", () => { if (locked === null) show(null); });
    gd.on("plotly_click", (e) => {
      const d = digitOf(e);
      if (d === null) return;
      locked = locked === d ? null : d;
      show(locked);
    });
    gd.on("plotly_afterplot", () => show(locked));
  };
  // Called by the link diagram's .change (tabs/routing_structure.py) once per new figure.
  window.capsnetBindRoutingLinks = () => window.capsnetWhenPlot(`#routing-links ${DOM.plot}`, bind);
}
