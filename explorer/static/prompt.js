(text) => {
  // The prompt's .change (wired in app.py, no server event): the input event sets the prompt's text, "" while
  // there is an analysis. The page's CSS (explorer.css) shows the analysis columns and hides the prompt while
  // the page has this class, so showing or hiding them costs the server nothing.
  document.body.classList.toggle("capsnet-has-input", !text);
  return [];
}
