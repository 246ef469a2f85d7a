() => {
  const DOM = GRADIO_DOM; // Gradio's DOM, as checked by explorer/gradio_compat.py (PAGE_DOM)
  // Gradio 6.31 shows an image inside a <button> whose <img> has alt="" (axe-core: button-name, critical) and marks
  // an empty image with aria-label on a div that has no role (aria-prohibited-attr). This names each image after
  // its block's label. Called after every gr.Image's .change and every view tab's selection (app.py): Gradio
  // draws the image in the frames after those events, hence two animation frames.
  const name = () => {
    document.querySelectorAll(DOM.image_button).forEach((button) => {
      const img = button.querySelector("img");
      if (!img || img.getAttribute("alt")) return;
      const label = button.closest(DOM.block)?.querySelector(DOM.block_label)?.textContent.trim();
      img.setAttribute("alt", label || "image");
    });
    document.querySelectorAll(DOM.empty_labelled).forEach((e) => e.setAttribute("role", "img"));
  };
  window.capsnetNameImages = () => requestAnimationFrame(() => requestAnimationFrame(name));
  window.capsnetNameImages();
}
