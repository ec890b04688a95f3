// monGARS console: small progressive enhancements shared by every page.
(() => {
  "use strict";
  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (form instanceof HTMLFormElement && form.dataset.confirm && !event.defaultPrevented) {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    }
  });
})();
