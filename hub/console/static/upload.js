// Uploads with a progress bar: the file of the form with id "upload" is
// sent as the raw request body to the form's action (as POST /api/v1/media
// and POST /api/v1/releases take it), with the session's CSRF token in a
// header. The form's data attributes say the rest: data-max (bytes),
// data-ok (the status of success, default 202), data-next (where to go
// after it; default: reload), and the texts shown. A textarea named notes
// goes along as ?notes=. Without JavaScript the form cannot upload.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var form = document.getElementById("upload");
  if (!form) { return; }
  var bar = document.getElementById("progress");
  var status = document.getElementById("upload-status");
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var file = form.querySelector("input[type=file]").files[0];
    if (!file) { return; }
    if (file.size > Number(form.dataset.max)) {
      status.textContent = form.dataset.failed + file.size + " > " + form.dataset.max;
      return;
    }
    var url = form.getAttribute("action");
    var notes = form.querySelector("textarea[name=notes]");
    if (notes && notes.value.trim() !== "") {
      url += "?notes=" + encodeURIComponent(notes.value.trim());
    }
    var ok = Number(form.dataset.ok || 202);
    var xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    xhr.setRequestHeader("X-CSRF-Token", form.dataset.csrf);
    xhr.setRequestHeader("X-Filename", encodeURIComponent(file.name));
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    bar.hidden = false;
    xhr.upload.onprogress = function (e) {
      if (e.lengthComputable) {
        bar.value = Math.round(100 * e.loaded / e.total);
        status.textContent = form.dataset.uploading + " " + bar.value + "%";
        if (e.loaded === e.total) { status.textContent = form.dataset.done; }
      }
    };
    xhr.onload = function () {
      if (xhr.status === ok) {
        status.textContent = form.dataset.done;
        if (form.dataset.next) {
          window.location.assign(form.dataset.next);
        } else {
          window.location.reload();
        }
      } else {
        var msg = xhr.statusText;
        try { msg = JSON.parse(xhr.responseText).error; } catch (e) { /* not JSON */ }
        status.textContent = form.dataset.failed + msg;
      }
    };
    xhr.onerror = function () { status.textContent = form.dataset.failed + "network"; };
    xhr.send(file);
  });
});
