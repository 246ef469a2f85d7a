() => {
  const DOM = GRADIO_DOM; // Gradio's DOM, as checked by explorer/gradio_compat.py (PAGE_DOM)
  // Every plotly figure downloads as PNG from plotly's own toolbar (the camera) and as SVG from a small button
  // added here, beside the figure, once per figure. Called after every gr.Plot's .change and every view tab's
  // selection (app.py: page_hooks). Plotly draws after those events, the first time only once its script has
  // loaded, so the scan runs again a few times, 200 ms apart (at most 3 s; each scan costs a selector query).
  const T = (text) => (window.capsnetT ? window.capsnetT(text) : text);
  const fileName = (block) => "capsnet-" + ((block && block.id) || "figure").replace(/[^a-z0-9-]/gi, "");
  const add = () => {
    document.querySelectorAll(DOM.plot).forEach((gd) => {
      const block = gd.closest(DOM.block);
      if (!block || block.querySelector(":scope > .capsnet-svg")) return;
      const button = document.createElement("button");
      button.type = "button";
      button.className = "capsnet-svg";
      button.textContent = "SVG";
      button.dataset.aria = "Download this figure as SVG"; // static/language.js names it in the page's language
      button.setAttribute("aria-label", T("Download this figure as SVG"));
      button.addEventListener("click", () => {
        const plot = block.querySelector(DOM.plot);
        if (plot && window.Plotly) window.Plotly.downloadImage(plot, {format: "svg", filename: fileName(block)});
      });
      block.appendChild(button);
    });
  };
  const scan = (tries) => {
    add();
    if (tries > 0) setTimeout(() => scan(tries - 1), 200);
  };
  window.capsnetSvgButtons = () => scan(15);
  window.capsnetSvgButtons();
}
