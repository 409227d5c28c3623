// Submits the language switcher on change (an inline onchange= handler is blocked by the CSP).
document.addEventListener("change", function (event) {
  if (event.target && event.target.id === "lang-select") {
    event.target.form.submit();
  }
});
