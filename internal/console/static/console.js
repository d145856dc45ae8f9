// keygate console: the only script, served as a file (no inline script under the Content-Security-Policy).
// A "Copy" button copies the text of the element its data-copy attribute names.
"use strict";
document.addEventListener("click", function (ev) {
  var btn = ev.target.closest("button[data-copy]");
  if (!btn) return;
  var el = document.getElementById(btn.getAttribute("data-copy"));
  var status = document.getElementById("copied");
  if (!el || !navigator.clipboard) {
    if (status) status.textContent = "Select the key and copy it by hand.";
    return;
  }
  navigator.clipboard.writeText(el.textContent).then(function () {
    if (status) status.textContent = "Copied.";
  }, function () {
    if (status) status.textContent = "Copying failed: select the key and copy it by hand.";
  });
});
