() => {
  const DOM = GRADIO_DOM; // Gradio's DOM, as checked by explorer/gradio_compat.py (PAGE_DOM)
  const VIEWS = EMBED_VIEWS; // &tab=<name> -> the view tab's elem_id (explorer/app.py: embed_js)
  // A share link (explorer/inputs/share.py): ?in=<input>&k=<capsule>&tab=<view>. Once the opening example is
  // shown, the link's input goes into the hidden #share-in, whose input event analyses it on the server (which
  // refuses a damaged one in one sentence); once that analysis is shown, the capsule and the view are picked as
  // clicks would pick them. Each wait is bounded (200 ms steps, at most 30 s).
  const params = new URLSearchParams(window.location.search);
  const input = params.get("in");
  if (input === null) return [];
  const when = (test, then, tries = 150) => {
    if (test()) then();
    else if (tries > 0) setTimeout(() => when(test, then, tries - 1), 200);
  };
  const prediction = () => document.getElementById("prediction")?.textContent || "";
  const note = (text) => {
    const box = document.getElementById("embed-note");
    if (box) { box.textContent = text; box.classList.add("embed-note-shown"); }
  };
  const pick = () => {
    const k = params.get("k"), tab = params.get("tab");
    if (k !== null && !/^[0-9]$/.test(k)) note("That share link names no digit capsule 0-9; showing its prediction's.");
    if (tab !== null && !Object.prototype.hasOwnProperty.call(VIEWS, tab)) {
      note(`That share link names no view "${tab.slice(0, 40)}"; the views are ${Object.keys(VIEWS).join(", ")}.`);
    }
    if (k !== null && /^[0-9]$/.test(k)) {
      const radio = document.querySelector(`#selected-class ${DOM.radio_input}[value="${k}"]`);
      if (radio && !radio.checked) radio.click();
    }
    if (tab !== null && Object.prototype.hasOwnProperty.call(VIEWS, tab)) {
      document.getElementById(VIEWS[tab] + DOM.tab_button)?.click();
    }
  };
  when(() => prediction().includes("Prediction") && document.querySelector("#share-in textarea"), () => {
    const box = document.querySelector("#share-in textarea");
    box.value = (input.trim() ? input : " ").slice(0, 4000); // " ": an empty one is refused in words too
    box.dispatchEvent(new Event("input", {bubbles: true}));
    when(() => prediction().includes("From a shared link."), pick);
  });
  return [];
}
