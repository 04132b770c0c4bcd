// Media upload with a progress bar: the file is sent as the raw request
// body (as POST /api/v1/media takes it), with the session's CSRF token in
// a header. Without JavaScript the form cannot upload; the page says so.
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
    var xhr = new XMLHttpRequest();
    xhr.open("POST", "/media");
    xhr.setRequestHeader("X-CSRF-Token", form.dataset.csrf);
    xhr.setRequestHeader("X-Filename", encodeURIComponent(file.name));
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    bar.hidden = false;
    xhr.upload.onprogress = function (e) {
      if (e.lengthComputable) {
        bar.value = Math.round(100 * e.loaded / e.total);
        status.textContent = form.dataset.uploading + " " + bar.value + "%";
      }
    };
    xhr.onload = function () {
      if (xhr.status === 202) {
        status.textContent = form.dataset.done;
        window.location.reload();
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
