// The language switch (explorer/language.py): gr.HTML's js_on_load, run once per page with `element`, `props`
// and `trigger`.
//
// The page's language: ?lang= when it names one of ours, else the first of navigator.languages that is English
// or Chinese (any Chinese: the Simplified interface), else English; the server applies the same rule to the
// page's ?lang= and the Accept-Language header (explorer/text.py: choose), so both agree until the switch is
// used. Applying a language:
// - Gradio's own language for the gr.I18n texts: changeLocale(code), an export of its frontend's core module,
//   imported again by its URL (PAGE_DOM.core_module), which gives the page's own instance;
// - <html lang>, the switch's pressed button;
// - the texts our scripts and templates write: elements with data-text (their text), data-aria (their
//   aria-label) or data-alt (an image's alt) get PAGE_TEXTS[code][English], now and whenever a template
//   re-renders them; window.capsnetT(English) gives one;
// - a "capsnet-language" event on window for scripts that write texts of their own.
// A click on the other language applies it and sends it as this component's value: the server remembers it for
// the session and redraws the views in it. Without changeLocale (another Gradio), the click reloads the page with
// ?lang= instead.
const DOM = GRADIO_DOM;
const TEXTS = PAGE_TEXTS; // {code: {English: translation}}
const TABS = PAGE_TABS; // {tab id: {code: its label}}: Gradio 6.31 relabels only the open tab of a gr.Tabs
const params = new URLSearchParams(window.location.search);
const pick = (tags) => {
  for (const tag of tags) {
    const primary = String(tag || "").toLowerCase().split("-")[0];
    if (primary === "zh") return "zh-CN";
    if (primary === "en") return "en";
  }
  return null;
};
const requested = params.get("lang");
let current = pick([requested]) || pick(navigator.languages || [navigator.language]) || "en";
const T = (text) => (TEXTS[current] || {})[text] || text;
window.capsnetT = T;
window.capsnetLanguage = () => current;

// Each write only where the text differs, so the observer's own changes end there.
const set = (el, name, text) => {
  if (name === null ? el.textContent !== text : el.getAttribute(name) !== text) {
    if (name === null) el.textContent = text;
    else el.setAttribute(name, text);
  }
};
const relabel = (root) => {
  const all = (sel) => [...(root.matches(sel) ? [root] : []), ...root.querySelectorAll(sel)];
  for (const el of all("[data-text]")) set(el, null, T(el.dataset.text));
  for (const el of all("[data-aria]")) set(el, "aria-label", T(el.dataset.aria));
  for (const el of all("[data-alt]")) set(el, "alt", T(el.dataset.alt));
};
const relabelTabs = () => {
  for (const [id, labels] of Object.entries(TABS)) {
    const button = document.querySelector(DOM.tab_button_with_id.replace("ID", id));
    if (button && labels[current]) set(button, null, labels[current]);
  }
};
// Our templates (gr.HTML: the canvas, the pose view) register their element: Gradio re-renders a template in place
// (a changed text node or attribute) or adds nodes, and all get relabelled; nothing else of the page is watched.
const translateRoot = (root) => {
  relabel(root);
  new MutationObserver((records) => {
    for (const r of records) {
      if (r.type === "characterData") r.target.parentElement && relabel(r.target.parentElement);
      else if (r.type === "attributes") relabel(r.target);
      else for (const node of r.addedNodes) if (node.nodeType === 1) relabel(node);
    }
  }).observe(root, {childList: true, subtree: true, characterData: true, attributes: true,
                    attributeFilter: ["aria-label", "alt"]});
};
window.capsnetTranslate = translateRoot;
(window.capsnetTranslated || []).forEach(translateRoot); // templates loaded before this script

const pattern = new RegExp(DOM.core_module);
const core = performance.getEntriesByType("resource").map((e) => e.name).find((name) => pattern.test(name));
const locale = core
  ? import(core).then((m) => (typeof m.changeLocale === "function" ? m.changeLocale : null)).catch(() => null)
  : Promise.resolve(null);

const apply = async (code) => {
  current = code;
  document.documentElement.lang = code;
  for (const b of element.querySelectorAll("button[data-lang]")) b.setAttribute("aria-pressed", String(b.dataset.lang === code));
  relabel(document.body);
  const change = await locale;
  if (change) change(code);
  setTimeout(relabelTabs, 0); // after Gradio has relabelled the open tabs
  window.dispatchEvent(new CustomEvent("capsnet-language", {detail: code}));
  return change !== null;
};
apply(current);
if (requested !== null && !pick([requested])) {
  const box = document.getElementById("embed-note");
  if (box) {
    box.textContent = T("That link asks for a language this page does not have; it shows English and 简体中文.");
    box.classList.add("embed-note-shown");
  }
}

element.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-lang]");
  if (!button || button.dataset.lang === current) return;
  const code = button.dataset.lang;
  if (!(await apply(code))) {
    params.set("lang", code);
    window.location.search = params.toString();
    return;
  }
  props.value = code; // the server remembers it for the session and redraws the views in it
});
