() => {
  const DOM = GRADIO_DOM; // Gradio's DOM, as checked by explorer/gradio_compat.py (PAGE_DOM)
  // A click on a pose dimension (a trajectory in #eq-trajectories, or a [data-pose-dim] button) opens the
  // Pose tab at that dimension's slider (#pose-dim-<d>), for the digit capsule the trajectories show.
  const pickClass = (k) => {
    if (k === undefined || k === null || k === "") return;
    const radios = document.querySelectorAll(`#selected-class ${DOM.radio_input}`);
    for (const r of radios) {
      if (r.value === String(k) && !r.checked) { r.click(); return; }
    }
  };
  const focusSlider = (d, tries) => {
    const box = document.getElementById("pose-dim-" + d);
    const visible = box && box.offsetParent !== null;
    if (!visible) {
      if (tries > 0) setTimeout(() => focusSlider(d, tries - 1), 100);
      return;
    }
    box.scrollIntoView({block: "center", behavior: "instant"});
    const input = box.querySelector(DOM.slider_range) || box.querySelector("input");
    if (input) input.focus({preventScroll: true});
    box.classList.add("pose-dim-flash");
    setTimeout(() => box.classList.remove("pose-dim-flash"), 2500);
  };
  const openPoseDim = (d, k) => {
    pickClass(k);
    document.getElementById("pose-tab" + DOM.tab_button)?.click(); // the Pose tab's button (elem_id "pose-tab")
    focusSlider(d, 50);
  };
  window.capsnetOpenPoseDim = openPoseDim;
  document.addEventListener("click", (e) => {
    const b = e.target.closest && e.target.closest("[data-pose-dim]");
    if (b) openPoseDim(b.dataset.poseDim, b.dataset.digitClass);
  });
  const onPlotClick = (ev) => {
    const p = ev && ev.points && ev.points.find((q) => q.customdata !== undefined && q.customdata !== null);
    if (!p) return;
    const gd = p.fullData && document.querySelector(`#eq-trajectories ${DOM.plot}`);
    const meta = gd && gd.layout && gd.layout.meta;
    openPoseDim(Array.isArray(p.customdata) ? p.customdata[0] : p.customdata, meta ? meta.digit_class : undefined);
  };
  // Called by the trajectories plot's .change (tabs/equivariance.py) once per new figure.
  window.capsnetBindPoseLinks = () => window.capsnetWhenPlot(`#eq-trajectories ${DOM.plot}`, (gd) => {
    if (gd._poseLinkFor !== gd._ev) {
      gd.on("plotly_click", onPlotClick);
      gd._poseLinkFor = gd._ev;  // a new plot (new emitter) gets the handler again
    }
  });
}
