// The Pose tab's reconstruction, decoded in the browser at display rate.
//
// Runs as the js_on_load of the gr.HTML #reconstruction (Gradio passes element, trigger, props, server,
// upload, watch). It fetches the decoder's weights once (a safetensors file the app exported at startup,
// served by Gradio's file route under window.gradio_config.root), then, in the animation frame after a pose
// value changed (the events that change one ask for it: no loop runs while nothing changes), runs the three
// layers with Float32Array / Float64Array loops and paints the 28x28 canvas: grey = round(255 x sigmoid output). Dragging a slider or the 2-D pad sends nothing; the
// server hears the values when the drag ends (the sliders' .release, or the 'pose_release' event below);
// its answers only bring its image, never values, so a late answer cannot undo a newer change.
// If the weights cannot be loaded or decoding throws, it falls back to the server: every change is sent
// as a 'pose_input' event (coalesced to one per frame) and the server's image is painted, with a note.
(() => {
  const DOM = GRADIO_DOM; // Gradio's DOM and routes, as checked by explorer/gradio_compat.py (PAGE_DOM)
  const DIMS = 16;
  const SIZE = 28;
  const PAD = 180;  // 2-D pad canvas size in px; it spans -1 .. 1 on both axes
  const T = (text) => (window.capsnetT ? window.capsnetT(text) : text); // the page's language (static/language.js)
  const dimName = (d) => T("dim {d}").replace("{d}", d);
  // Its texts in the page's language (static/language.js), also when Gradio re-renders the template.
  (window.capsnetTranslated ||= []).push(element);
  window.capsnetTranslate?.(element);
  const api = (window.capsnetPose = {
    mode: "loading",   // "loading" | "client" | "server"
    reason: "",
    frames: 0,         // canvas repaints from the client-side decoder
    wakeups: 0,        // animation frames the script ran in (none while nothing changes)
    decodeMs: [],      // time of each of the last 600 decodes
    decode: null,      // (pose[16], cls) -> Uint8ClampedArray(784) grey levels, once the weights are in
    padDigits: 0,      // test digits the 2-D pad showed at its last repaint
  });
  const st = {
    pose: new Float64Array(DIMS),
    cls: null,
    src: "",
    dirty: true,       // the canvas needs a repaint
    userMoved: false,  // a visitor changed a value since the last server update (fallback mode sends it)
    lastDom: new Array(DIMS).fill(null),
    numberInputs: null,
    padX: 0,
    padY: 1,
    padDrag: false,
    digits: null,      // {data, shape: [10, N, 16]}: the atlas's test digits, for the pad (loadDigits)
    inFlight: -Infinity,  // when the fallback's last request left (performance.now())
    net: null,
  };
  const h1 = new Float64Array(512);
  const h2 = new Float64Array(1024);
  const out = new Float64Array(SIZE * SIZE);

  // ---------------------------------------------------------------- weights (safetensors, little-endian)
  function parseSafetensors(buf) {
    const view = new DataView(buf);
    const headerLen = Number(view.getBigUint64(0, true));
    const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buf, 8, headerLen)));
    const base = 8 + headerLen;
    const tensors = {};
    for (const [name, info] of Object.entries(header)) {
      if (name === "__metadata__") continue;
      if (info.dtype !== "F32") throw new Error(`${name} is ${info.dtype}, expected F32`);
      const [start, end] = info.data_offsets;
      const offset = base + start;
      const n = (end - start) / 4;
      // Float32Array views need 4-byte alignment (safetensors pads its header to 8 bytes; copy otherwise)
      const arr = offset % 4 === 0 ? new Float32Array(buf, offset, n) : new Float32Array(buf.slice(offset, offset + 4 * n));
      tensors[name] = { data: arr, shape: info.shape };
    }
    return { tensors, meta: header.__metadata__ || {} };
  }

  function makeNet({ tensors, meta }) {
    const need = ["w1", "b1", "w2", "b2", "w3", "b3"];
    for (const k of need) if (!tensors[k]) throw new Error(`weights file has no ${k}`);
    const [in1, n1] = tensors.w1.shape, [in2, n2] = tensors.w2.shape, [in3, n3] = tensors.w3.shape;
    const dims = Number(meta.digit_dim || DIMS);
    if (in2 !== n1 || in3 !== n2 || n3 !== SIZE * SIZE || dims !== DIMS || in1 % dims !== 0 || n1 > h1.length || n2 > h2.length) {
      throw new Error(`unexpected decoder shapes ${JSON.stringify([tensors.w1.shape, tensors.w2.shape, tensors.w3.shape])}`);
    }
    return { w1: tensors.w1.data, b1: tensors.b1.data, w2: tensors.w2.data, b2: tensors.b2.data,
             w3: tensors.w3.data, b3: tensors.b3.data, n1, n2, n3, classes: in1 / dims };
  }

  // The masked decoder: only the selected capsule's 16 inputs are non-zero, so layer 1 reads 16 rows of w1;
  // the weights are stored (in, out), so each non-zero hidden unit adds one contiguous row.
  function runDecoder(net, pose, cls, grey) {
    const { w1, b1, w2, b2, w3, b3, n1, n2, n3 } = net;
    for (let j = 0; j < n1; j++) h1[j] = b1[j];
    for (let d = 0; d < DIMS; d++) {
      const p = pose[d];
      if (p === 0) continue;
      const row = (cls * DIMS + d) * n1;
      for (let j = 0; j < n1; j++) h1[j] += p * w1[row + j];
    }
    for (let j = 0; j < n2; j++) h2[j] = b2[j];
    for (let i = 0; i < n1; i++) {
      const a = h1[i];
      if (a <= 0) continue;  // ReLU
      const row = i * n2;
      for (let j = 0; j < n2; j++) h2[j] += a * w2[row + j];
    }
    for (let j = 0; j < n3; j++) out[j] = b3[j];
    for (let i = 0; i < n2; i++) {
      const a = h2[i];
      if (a <= 0) continue;  // ReLU
      const row = i * n3;
      for (let j = 0; j < n3; j++) out[j] += a * w3[row + j];
    }
    for (let j = 0; j < n3; j++) grey[j] = Math.round(255 / (1 + Math.exp(-out[j])));  // sigmoid
    return grey;
  }

  // A file the server published (gr.set_static_paths), through Gradio's file route under the app's root.
  function fileUrl(path) {
    const root = String(window[DOM.config_global]?.root || "").replace(/\/+$/, "");
    return `${root}${DOM.file_route}${encodeURI(path)}`;
  }

  // The atlas's test digits of each class (props.digits_path: poses, 10 x N x 16), drawn on the 2-D pad under its
  // marker. Fetched once; without them the pad works as before.
  async function loadDigits() {
    if (!props.digits_path) return;
    const res = await fetch(fileUrl(props.digits_path));
    if (!res.ok) return;
    const poses = parseSafetensors(await res.arrayBuffer()).tensors.poses;
    if (poses && poses.shape.length === 3 && poses.shape[2] === DIMS) {
      st.digits = poses;
      paintPad();
    }
  }

  function paintDigits(ctx, w, h) {
    api.padDigits = 0;
    if (!st.digits || st.cls === null || st.cls >= st.digits.shape[0]) return;
    const [, n] = st.digits.shape, base = st.cls * n * DIMS, data = st.digits.data;
    ctx.fillStyle = "rgba(40, 40, 40, 0.45)";
    for (let i = 0; i < n; i++) {
      const px = data[base + i * DIMS + st.padX], py = data[base + i * DIMS + st.padY];
      if (!Number.isFinite(px) || !Number.isFinite(py)) continue;
      ctx.fillRect((px + 1) / 2 * w - 1.5, (1 - py) / 2 * h - 1.5, 3, 3);
      api.padDigits++;
    }
  }

  async function loadWeights() {
    const path = props.weights_path;
    if (!path) throw new Error(props.weights_error || "the server exported no decoder weights");
    const res = await fetch(fileUrl(path));
    if (!res.ok) throw new Error(`the decoder weights did not load (HTTP ${res.status})`);
    const net = makeNet(parseSafetensors(await res.arrayBuffer()));
    api.decode = (pose, cls) => runDecoder(net, Float64Array.from(pose), cls, new Uint8ClampedArray(SIZE * SIZE));
    st.net = net;
    st.grey = new Uint8ClampedArray(SIZE * SIZE);
  }

  // ---------------------------------------------------------------- drawing
  function paintGrey(canvas, grey) {
    const ctx = canvas.getContext("2d");
    const img = ctx.createImageData(SIZE, SIZE);
    const px = img.data;
    for (let j = 0; j < SIZE * SIZE; j++) {
      const g = grey[j];
      px[4 * j] = g; px[4 * j + 1] = g; px[4 * j + 2] = g; px[4 * j + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
  }

  function paintServer(canvas) {
    const ctx = canvas.getContext("2d");
    if (!st.src) { ctx.clearRect(0, 0, SIZE, SIZE); return; }
    const img = new Image();
    img.onload = () => { const c = element.querySelector("canvas.pose-canvas"); if (c) c.getContext("2d").drawImage(img, 0, 0, SIZE, SIZE); };
    img.src = st.src;
  }

  function paintPad() {
    const pad = element.querySelector("canvas.pose-pad");
    if (!pad) return;
    const ctx = pad.getContext("2d");
    const w = pad.width, h = pad.height;
    ctx.clearRect(0, 0, w, h);
    ctx.strokeStyle = "#bbb";
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(w / 2, 0); ctx.lineTo(w / 2, h); ctx.moveTo(0, h / 2); ctx.lineTo(w, h / 2);
    ctx.stroke();
    paintDigits(ctx, w, h);
    const x = (st.pose[st.padX] + 1) / 2 * w, y = (1 - st.pose[st.padY]) / 2 * h;
    ctx.strokeStyle = "#e4572e"; // a ring, so the digits under it stay visible
    ctx.lineWidth = 2.5;
    ctx.beginPath();
    ctx.arc(x, y, 6, 0, 2 * Math.PI);
    ctx.stroke();
  }

  function draw() {
    const canvas = element.querySelector("canvas.pose-canvas");
    if (!canvas) return;
    canvas.setAttribute("aria-label", st.cls === null ? T("reconstruction from the pose")
      : T("the decoder's reconstruction of digit capsule {digit} from the pose").replace("{digit}", st.cls));
    if (api.mode === "client" && st.cls !== null) {
      try {
        const t0 = performance.now();
        runDecoder(st.net, st.pose, st.cls, st.grey);
        const t1 = performance.now();
        paintGrey(canvas, st.grey);
        api.decodeMs.push(t1 - t0);
        if (api.decodeMs.length > 600) api.decodeMs.shift();
        api.frames += 1;
      } catch (e) {
        fallBack(`decoding in the browser failed (${e.message})`);
        paintServer(canvas);
      }
    } else if (api.mode !== "client") {
      paintServer(canvas);
    } else {
      canvas.getContext("2d").clearRect(0, 0, SIZE, SIZE);
    }
    paintPad();
  }

  // ---------------------------------------------------------------- the template (re-rendered by Gradio on value changes)
  // props.labels: {language code: 10 x 16 names}, shown in the page's language (static/language.js)
  function labelsFor(cls) {
    const all = props.labels && (props.labels[window.capsnetLanguage?.() || "en"] || props.labels.en);
    return Array.isArray(all) && cls !== null && Array.isArray(all[cls]) ? all[cls] : null;
  }

  function decorate() {
    const note = element.querySelector(".pose-note");
    if (note) {
      note.textContent = api.mode === "server"
        ? T("Live preview off: {reason}; the reconstruction updates through the server.").replace("{reason}", api.reason) : "";
      note.hidden = api.mode !== "server";
    }
    const labels = labelsFor(st.cls);
    for (const [cls, axis] of [["pose-pad-x", "padX"], ["pose-pad-y", "padY"]]) {
      const sel = element.querySelector(`select.${cls}`);
      if (!sel) continue;
      if (sel.options.length !== DIMS) {
        sel.textContent = "";
        for (let d = 0; d < DIMS; d++) sel.add(new Option(dimName(d), String(d)));
      }
      for (let d = 0; d < DIMS; d++) sel.options[d].text = labels ? labels[d] : dimName(d);
      sel.value = String(st[axis]);
    }
    element.classList.add("pose-js");
    element.classList.toggle("pose-live", api.mode === "client");
  }

  function adoptValue() {
    const v = props.value || {};
    st.src = v.src || "";
    st.inFlight = -Infinity;
    // Only a new input, another capsule or a reset sets the pose here (adopt). Every other answer drew values
    // this page sent, and answers can land after newer values were set: keep those.
    if (!v.adopt && st.cls !== null) { st.dirty = true; return; }
    st.cls = Number.isInteger(v.cls) ? v.cls : null;
    if (Array.isArray(v.pose) && v.pose.length === DIMS) {
      for (let d = 0; d < DIMS; d++) st.pose[d] = Number(v.pose[d]) || 0;
    }
    st.userMoved = false;
    st.dirty = true;
  }

  // ---------------------------------------------------------------- reading the sliders
  function numberInputs() {
    if (st.numberInputs && st.numberInputs.every((i) => i && i.isConnected)) return st.numberInputs;
    const found = [];
    for (let d = 0; d < DIMS; d++) found.push(document.querySelector(`#pose-dim-${d} ${DOM.slider_number}`));
    st.numberInputs = found.every(Boolean) ? found : null;
    return st.numberInputs;
  }

  // Values the sliders show that differ from what was last seen there: a drag, a typed number, or the server
  // setting new values. Read once per frame, so a burst of input events costs one decode.
  function pollSliders() {
    const inputs = numberInputs();
    if (!inputs) return;
    for (let d = 0; d < DIMS; d++) {
      const text = inputs[d].value;
      if (text === st.lastDom[d]) continue;
      st.lastDom[d] = text;
      const v = parseFloat(text);
      if (Number.isFinite(v) && v !== st.pose[d]) {
        st.pose[d] = within(d, v);
        if (st.pose[d] !== v) { // typed outside the slider's range: the box shows the value used, Gradio holds it
          inputs[d].value = st.lastDom[d] = String(st.pose[d]);
          inputs[d].dispatchEvent(new Event("input", { bubbles: true }));
        }
        st.dirty = true;
        showPercentile(d);
      }
    }
  }

  // A slider's own range: -1 .. 1, or the class's data range while "keep within the data" is on (the server sets
  // the sliders' minimum and maximum); typed numbers and the pad stay inside it too.
  function within(d, v) {
    const range = document.querySelector(`#pose-dim-${d} ${DOM.slider_range}`);
    const lo = range ? parseFloat(range.min) : NaN;
    const hi = range ? parseFloat(range.max) : NaN;
    return Math.max(Number.isFinite(lo) ? lo : -1, Math.min(Number.isFinite(hi) ? hi : 1, v));
  }

  // Where the value of dim d lies among the class's test digits (props.percentiles: per class and dimension, the
  // pose at the percentiles props.percentile_levels, capsnet.atlas.PERCENTILES), interpolated linearly between them.
  function percentileText(d, v) {
    const LEVELS = props.percentile_levels;
    const q = props.percentiles && st.cls !== null ? props.percentiles[st.cls]?.[d] : null;
    if (!Array.isArray(q) || !Array.isArray(LEVELS) || q.length !== LEVELS.length) return "";
    let where;
    if (v < q[0]) where = T("below the 1st percentile");
    else if (v > q[q.length - 1]) where = T("above the 99th percentile");
    else {
      let i = 0;
      while (i < q.length - 2 && v > q[i + 1]) i++;
      const f = q[i + 1] > q[i] ? (v - q[i]) / (q[i + 1] - q[i]) : 0;
      const p = Math.round(LEVELS[i] + f * (LEVELS[i + 1] - LEVELS[i]));
      where = T("percentile {p}").replace("{p}", p);
    }
    return T("{dim} = {value}: {where} of digit {digit}'s test digits").replace("{dim}", dimName(d))
      .replace("{value}", `${v >= 0 ? "+" : ""}${v.toFixed(2)}`).replace("{where}", where).replace("{digit}", st.cls);
  }
  function showPercentile(d) {
    const out = element.querySelector(".pose-percentile");
    if (out) out.textContent = percentileText(d, st.pose[d]);
  }

  // The pad writes its two dimensions into their sliders as a visitor would type them, so the sliders follow
  // the pad live and Gradio's values (what the server reads from the sliders) stay the page's values.
  function syncPadSliders() {
    const inputs = numberInputs();
    if (!inputs) return;
    for (const d of new Set([st.padX, st.padY])) {
      const text = String(st.pose[d]);
      if (inputs[d].value === text) continue;
      inputs[d].value = text;
      inputs[d].dispatchEvent(new Event("input", { bubbles: true }));
      st.lastDom[d] = text;
    }
  }

  function payload() {
    return { pose: Array.from(st.pose, (v) => Math.round(v * 1e4) / 1e4), cls: st.cls };
  }

  // ---------------------------------------------------------------- events
  function isUserSlider(target) {
    return target && target.closest && target.closest("[id^='pose-dim-']");
  }
  document.addEventListener("input", (e) => {
    if (isUserSlider(e.target)) {
      st.userMoved = true;
      requestFrame();
    }
  }, true);
  // A typed number is committed on change (Enter / blur); Gradio fires no release for it, so tell the server.
  document.addEventListener("change", (e) => {
    if (isUserSlider(e.target) && e.target.type === "number" && st.cls !== null) {
      pollSliders();
      trigger("pose_release", payload());
    }
  }, true);

  function padValue(e, pad) {
    const r = pad.getBoundingClientRect();
    const x = Math.max(-1, Math.min(1, ((e.clientX - r.left) / r.width) * 2 - 1));
    const y = Math.max(-1, Math.min(1, 1 - ((e.clientY - r.top) / r.height) * 2));
    st.pose[st.padX] = within(st.padX, Math.round(x * 1000) / 1000);
    st.pose[st.padY] = within(st.padY, Math.round(y * 1000) / 1000);
    showPercentile(st.padX);
    st.dirty = true;
    st.userMoved = true;
    requestFrame();
  }
  element.addEventListener("pointerdown", (e) => {
    const pad = e.target.closest && e.target.closest("canvas.pose-pad");
    if (!pad || st.cls === null) return;
    st.padDrag = true;
    pad.setPointerCapture(e.pointerId);
    padValue(e, pad);
    e.preventDefault();
  });
  element.addEventListener("pointermove", (e) => {
    const pad = e.target.closest && e.target.closest("canvas.pose-pad");
    if (st.padDrag && pad) padValue(e, pad);
  });
  const endPad = (e) => {
    if (!st.padDrag) return;
    st.padDrag = false;
    syncPadSliders();
    requestFrame();
    trigger("pose_release", payload());
  };
  element.addEventListener("pointerup", endPad);
  element.addEventListener("pointercancel", endPad);
  // The pad from the keyboard: focus it (Tab), the arrows move its two dimensions by 0.01 (with Shift, 0.1); the
  // server hears the values once no arrow has been pressed for KEY_SETTLE_MS, as at the end of a drag (one event
  // for a run of presses, so no older answer can land after a newer one).
  const KEY_SETTLE_MS = 250;
  let keyTimer = null;
  const PAD_KEYS = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, 1], ArrowDown: [0, -1] };
  const onPad = (e) => e.target.matches && e.target.matches("canvas.pose-pad") && st.cls !== null;
  element.addEventListener("keydown", (e) => {
    const step = PAD_KEYS[e.key];
    if (!step || !onPad(e)) return;
    clearTimeout(keyTimer);
    const by = e.shiftKey ? 0.1 : 0.01;
    for (const [d, s] of [[st.padX, step[0]], [st.padY, step[1]]]) {
      if (s) st.pose[d] = within(d, Math.round((st.pose[d] + s * by) * 1000) / 1000);
    }
    syncPadSliders();
    showPercentile(step[0] ? st.padX : st.padY);
    st.dirty = true;
    st.userMoved = true;
    requestFrame();
    e.preventDefault();
  });
  element.addEventListener("keyup", (e) => {
    if (!PAD_KEYS[e.key] || !onPad(e)) return;
    clearTimeout(keyTimer);
    keyTimer = setTimeout(() => trigger("pose_release", payload()), KEY_SETTLE_MS);
  });
  element.addEventListener("change", (e) => {
    const t = e.target;
    if (t.matches && t.matches("select.pose-pad-x")) st.padX = Number(t.value);
    else if (t.matches && t.matches("select.pose-pad-y")) st.padY = Number(t.value);
    else return;
    st.dirty = true;
    requestFrame();
  });
  element.addEventListener("click", (e) => {
    const a = e.target.closest && e.target.closest("a.pose-download");
    const canvas = element.querySelector("canvas.pose-canvas");
    if (a && canvas && api.mode === "client") a.href = canvas.toDataURL("image/png");
  });

  function fallBack(reason) {
    api.mode = "server";
    api.reason = reason;
    st.dirty = true;
    decorate();
    requestFrame();
    console.warn(`CapsNet pose: ${reason}; using the server`);
  }

  // One frame per burst of changes, asked for by the events that change something (slider input, the pad,
  // a new value from the server, the weights arriving, the tab being shown); none while nothing changes.
  let frameAsked = false;
  function requestFrame() {
    if (frameAsked) return;
    frameAsked = true;
    requestAnimationFrame(frame);
  }

  function frame() {
    frameAsked = false;
    api.wakeups += 1;
    if (!element.isConnected || element.offsetParent === null) return;  // tab not shown: drawn when it is
    if (st.padDrag) syncPadSliders();
    else pollSliders();
    // Fallback: at most one request in flight (or one a second if answers go missing), always the latest values.
    const now = performance.now();
    if (api.mode === "server" && st.userMoved && st.cls !== null) {
      if (now - st.inFlight > 1000) {
        st.userMoved = false;
        st.inFlight = now;
        trigger("pose_input", payload());  // the server draws; its answer comes back as a new value
      } else {
        setTimeout(requestFrame, 1000 - (now - st.inFlight));  // or when its answer comes (watch below)
      }
    }
    if (st.dirty) {
      st.dirty = false;
      draw();
    }
  }
  new IntersectionObserver(() => requestFrame()).observe(element);  // the Pose tab shown again

  // A new value from the server (new input, other capsule, reset: adopted; the end of a drag: its image only):
  // Gradio has re-rendered the template, so label and repaint the new canvas now.
  watch("value", () => {
    adoptValue();
    decorate();
    st.dirty = false;
    draw();
    requestFrame();  // the fallback may have newer values waiting for this answer
  });

  adoptValue();
  decorate();
  window.addEventListener("capsnet-language", () => { decorate(); st.dirty = true; requestFrame(); });
  loadWeights()
    .then(() => { api.mode = "client"; st.dirty = true; decorate(); requestFrame(); })
    .catch((e) => fallBack(e && e.message ? e.message : String(e)));
  loadDigits().catch(() => {}); // the pad's scatter only
  requestFrame();
})();
