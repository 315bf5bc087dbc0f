// flowedu book: show a short note when MathJax could not be loaded, instead of silent raw LaTeX.
// (Loaded by book/_ext/flowedu_site.py; the book normally serves MathJax itself from _static/mathjax/.)
window.addEventListener("load", () => {
  const script = document.querySelector('script[src*="tex-mml-chtml"], script[src*="mathjax" i]');
  if (!script || (window.MathJax && window.MathJax.startup)) return;
  if (!document.querySelector(".math, .MathJax, span.math, div.math")) return;
  const article = document.querySelector("article.bd-article") || document.querySelector("[role=main]")
    || document.body;
  const remote = /^https?:/.test(script.getAttribute("src")) ? new URL(script.src).host : null;
  const note = document.createElement("div");
  note.className = "admonition warning flowedu-mathjax-note";
  note.setAttribute("role", "note");
  const title = document.createElement("p");
  title.className = "admonition-title";
  title.textContent = "Formulas not rendered";
  const text = document.createElement("p");
  text.textContent = "MathJax, which typesets the formulas, could not be loaded"
    + (remote ? ` from ${remote} (this copy of the book was built without its own MathJax)` : "")
    + ", so the formulas below appear as LaTeX source.";
  note.append(title, text);
  article.prepend(note);
});
