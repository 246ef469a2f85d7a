() => {
  const pick = (tries) => {
    const b = document.querySelector("#sketchpad button[aria-label='Brush']");
    if (b) { b.click(); } else if (tries > 0) { setTimeout(() => pick(tries - 1), 200); }
  };
  pick(25);
}
