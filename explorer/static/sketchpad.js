// Draw, clear, draw again with no extra click. Run once per page by demo.load(js=...).
//
// Why this exists: Gradio 6.31's Sketchpad (ImageEditor) falls back to its "image" tool whenever its canvas
// is emptied, on page load and after its own "Clear canvas" tool, and then shows "select the draw tool to
// start": the next stroke draws nothing until the visitor finds the Brush. Gradio has no option for the tool
// to use after a clear. Clearing from Python (returning None) is no way round it: it clears only the first
// time (drawing sends strokes to the server without changing the component's value, so the next None is no
// change), and each later digit is drawn on top of the earlier ones.
//
// So: whenever the sketchpad shows that placeholder (watched inside #sketchpad), press its Brush; and the app's own "Clear canvas"
// button (#clear-canvas) presses the sketchpad's clear tool, so both controls run Gradio's one clear
// (every layer and the undo history emptied, one change event to the server) and behave the same.
// Buttons are found by their place in Gradio's toolbars, not by aria-label, which Gradio translates into
// the visitor's language.
() => {
  const DOM = GRADIO_DOM; // Gradio's own DOM, as checked by explorer/gradio_compat.py (PAGE_DOM)
  const pad = () => document.getElementById("sketchpad");
  // Left toolbar: Brush, then Erase (no image tool: the sketchpad has no sources and no transforms).
  const brush = () => pad()?.querySelector(DOM.sketch_brush);
  // Top panel: pan, zoom out, zoom in, undo, redo and, always last, clear canvas.
  const clearTool = () => {
    const buttons = pad()?.querySelectorAll(DOM.sketch_top_buttons) ?? [];
    return buttons.length ? buttons[buttons.length - 1] : null;
  };
  const idle = () => pad()?.querySelector(DOM.sketch_idle); // the "select the draw tool" placeholder
  let queued = false;
  const selectBrush = () => {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => { // after Gradio has finished its own clear
      queued = false;
      if (idle()) brush()?.click();
    });
  };
  new MutationObserver(() => { if (idle()) selectBrush(); })
    .observe(pad() ?? document.body, { childList: true, subtree: true }); // the Draw tab is open at load
  document.addEventListener("click", (event) => {
    if (event.target instanceof Element && event.target.closest("#clear-canvas")) clearTool()?.click();
  });
  selectBrush();
}
