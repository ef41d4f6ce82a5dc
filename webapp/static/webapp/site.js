// Small progressive enhancements; every page works without this file.
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  // Sort selects apply on change (the Apply button stays for no-JS browsers).
  document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
    select.addEventListener("change", function () {
      if (select.form) select.form.submit();
    });
  });

  // No real cart yet: acknowledge the click (beacon.js records the add_to_cart event).
  document.querySelectorAll("[data-add-to-cart]").forEach(function (button) {
    button.addEventListener("click", function () {
      var note = button.parentElement && button.parentElement.querySelector(".cart-note");
      if (note) note.hidden = false;
      button.textContent = "Added ✓";
    });
  });
})();
