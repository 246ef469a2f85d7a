() => {
  const DOM = GRADIO_DOM; // Gradio's DOM, as checked by explorer/gradio_compat.py (PAGE_DOM)
  const VIEWS = EMBED_VIEWS; // ?view=<name> -> the view tab's elem_id (explorer/app.py: embed_js)
  // ?view=<name> shows that one view beside its input, for an iframe in a course page: the page's CSS
  // (body.capsnet-embed) hides the title, the introduction, the view tabs' strip and the footer, and the view's
  // tab is opened as a click would open it, so its views draw as usual. An unknown name: one sentence, full page.
  const view = new URLSearchParams(window.location.search).get("view");
  if (view === null) return [];
  const note = document.getElementById("embed-note");
  if (!Object.prototype.hasOwnProperty.call(VIEWS, view)) {
    if (note) {
      note.textContent = `There is no view named "${view.slice(0, 40)}"; the views are ${Object.keys(VIEWS).join(", ")}.`;
      note.classList.add("embed-note-shown");
    }
    return [];
  }
  document.body.classList.add("capsnet-embed");
  const open = (tries) => {
    const button = document.getElementById(VIEWS[view] + DOM.tab_button);
    const strip = document.querySelector("#view-tabs " + DOM.tab_strip);
    if (button && strip) {
      button.click();
      strip.style.display = "none";
    } else if (tries > 0) setTimeout(() => open(tries - 1), 100);
  };
  open(50);
  return [];
}
