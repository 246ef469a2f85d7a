() => {
  const DOM = GRADIO_DOM; // Gradio's DOM, as checked by explorer/gradio_compat.py (PAGE_DOM)
  const VIEWS = LINK_VIEWS; // a view's name in a link -> its tab's elem_id (explorer/app.py: links_js)
  // What a link's query string asks for:
  // - ?view=<name>: that one view beside its input, for an iframe in a course page. The page's CSS
  //   (body.capsnet-embed) hides the title, the introduction and the footer; the view tabs' strip is hidden here
  //   and the view's tab opened as a click would open it, so its views draw as usual.
  // - ?in=<input>&k=<capsule>&p=<pose>&tab=<name>&<setting>=<value>...: a share link (explorer/inputs/share.py).
  //   Once the opening example is shown, its fields go into the hidden #share-in, whose change event sets the
  //   view's settings and then analyses the input on the server (which refuses a damaged link or setting in one
  //   sentence) and keeps the pose for the Pose tab; once that analysis is shown, the capsule and the view are
  //   picked as clicks would pick them, and the view draws with its settings.
  // A name or capsule that is not one of the page's: one sentence in #embed-note. Each wait is bounded (200 ms
  // steps, at most 30 s).
  const params = new URLSearchParams(window.location.search);
  const when = (test, then, tries = 150) => {
    if (test()) then();
    else if (tries > 0) setTimeout(() => when(test, then, tries - 1), 200);
  };
  const note = (text) => {
    const box = document.getElementById("embed-note");
    if (box) { box.textContent = text; box.classList.add("embed-note-shown"); }
  };
  const known = (name) => Object.prototype.hasOwnProperty.call(VIEWS, name);
  const T = (text) => (window.capsnetT ? window.capsnetT(text) : text); // the page's language (static/language.js)
  const unknown = (text, name) =>
    note(text.replace("{name}", name.slice(0, 40)).replace("{views}", Object.keys(VIEWS).join(", ")));
  const tabButton = (name) => document.getElementById(VIEWS[name] + DOM.tab_button);

  const view = params.get("view");
  if (view !== null && !known(view)) unknown(T("There is no view named \"{name}\"; the views are {views}."), view);
  if (view !== null && known(view)) {
    document.body.classList.add("capsnet-embed");
    const strip = () => document.querySelector("#view-tabs " + DOM.tab_strip);
    when(() => tabButton(view) && strip(), () => {
      tabButton(view).click();
      strip().style.display = "none";
    });
  }

  const input = params.get("in");
  if (input === null) return [];
  // The prediction names the analysis's source as a class (explorer/events.py): never its visible text.
  const shown = (source) => document.querySelector(`#prediction .input-source${source ? ".source-" + source : ""}`);
  const pick = () => {
    const k = params.get("k"), tab = params.get("tab");
    if (k !== null && !/^[0-9]$/.test(k)) note(T("That share link names no digit capsule 0-9; showing its prediction's."));
    if (tab !== null && !known(tab)) unknown(T("That share link names no view \"{name}\"; the views are {views}."), tab);
    if (k !== null && /^[0-9]$/.test(k)) {
      const radio = document.querySelector(`#selected-class ${DOM.radio_input}[value="${k}"]`);
      if (radio && !radio.checked) radio.click();
    }
    if (tab !== null && known(tab)) tabButton(tab)?.click();
  };
  when(() => shown() && document.querySelector("#share-in textarea"), () => {
    const box = document.querySelector("#share-in textarea");
    const fields = new URLSearchParams(params); // an empty `in` is refused in words too
    fields.delete("view");
    box.value = fields.toString().slice(0, 4000);
    box.dispatchEvent(new Event("input", {bubbles: true}));
    when(() => shown("share"), pick);
  });
  return [];
}
