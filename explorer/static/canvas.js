// The drawing canvas (explorer/inputs/sketch.py): gr.HTML's js_on_load, run once per page with `element`,
// `props` and `trigger` (Gradio's supported hooks for a custom HTML component).
//
// Why our own canvas and not gr.Sketchpad: Gradio 6.31's Sketchpad sends each drawing as three blob posts, three
// uploads and an event (and, before static/upload_reuse.js, the three images again at every status message),
// falls back to a tool that draws nothing after every clear, and sends late copies of a cleared drawing. Here a
// finished stroke sets the component's value to the canvas as a PNG data URL (a few KB) and fires one change
// event; Clear and Undo do the same with the new picture. Strokes are round-capped lines of the brush's width,
// in the canvas's own 336 px coordinates whatever size the page shows it at.
// Its texts in the page's language (static/language.js), also when Gradio re-renders the template.
(window.capsnetTranslated ||= []).push(element);
window.capsnetTranslate?.(element);
const canvas = element.querySelector("canvas");
const ctx = canvas.getContext("2d");
const brush = Number(canvas.dataset.brush);
const strokes = []; // each: [[x, y], ...] in canvas pixels
let current = null;

const at = (event) => {
  const r = canvas.getBoundingClientRect();
  return [(event.clientX - r.left) * (canvas.width / r.width), (event.clientY - r.top) * (canvas.height / r.height)];
};
const paint = (points) => {
  ctx.beginPath();
  if (points.length === 1) {
    ctx.arc(points[0][0], points[0][1], brush, 0, 2 * Math.PI);
    ctx.fill();
    return;
  }
  ctx.moveTo(...points[0]);
  for (const p of points.slice(1)) ctx.lineTo(...p);
  ctx.stroke();
};
const repaint = () => {
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  strokes.forEach(paint);
};
// A new value is one change event (Gradio dispatches it; a trigger() on top would send the event twice); a clear
// of a canvas that was already empty sends its change explicitly, so the views go back to the prompt.
const send = () => {
  const value = strokes.length ? canvas.toDataURL("image/png") : "";
  if (value === props.value) trigger("change");
  else props.value = value;
};

ctx.fillStyle = ctx.strokeStyle = "#000";
ctx.lineWidth = 2 * brush;
ctx.lineCap = ctx.lineJoin = "round";

canvas.addEventListener("pointerdown", (event) => {
  if (event.button !== 0 && event.pointerType === "mouse") return;
  event.preventDefault();
  canvas.setPointerCapture(event.pointerId);
  current = [at(event)];
  strokes.push(current);
  paint(current);
});
canvas.addEventListener("pointermove", (event) => {
  if (!current) return;
  const p = at(event);
  const last = current[current.length - 1];
  current.push(p);
  ctx.beginPath();
  ctx.moveTo(...last);
  ctx.lineTo(...p);
  ctx.stroke();
});
const finish = () => {
  if (!current) return;
  current = null;
  send();
};
canvas.addEventListener("pointerup", finish);
canvas.addEventListener("pointercancel", finish);
canvas.addEventListener("lostpointercapture", finish);

// Undo and Clear act on a click (mouse, keyboard) and on a finger's release: after a stroke by touch, Chrome
// sometimes sends no click for the next tap (seen in headless chromium with touch emulation).
const onPress = (button, action) => {
  let touched = -Infinity;
  button.addEventListener("pointerup", (event) => {
    if (event.pointerType === "mouse") return;
    touched = performance.now();
    action();
  });
  button.addEventListener("click", () => {
    if (performance.now() - touched > 1000) action();
  });
};
onPress(element.querySelector("#undo-stroke"), () => {
  if (!strokes.length) return;
  strokes.pop();
  repaint();
  send();
});
onPress(element.querySelector("#clear-canvas"), () => {
  strokes.length = 0;
  repaint();
  send();
});
