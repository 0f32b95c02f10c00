// The image page: series list, one frame at a time, slider/keys/wheel to move, window centre/width.
(function () {
  "use strict";
  var manifest = JSON.parse(document.getElementById("manifest").textContent);
  var seriesList = document.getElementById("series");
  var img = document.getElementById("frame");
  var slider = document.getElementById("slider");
  var counter = document.getElementById("counter");
  var info = document.getElementById("info");
  var status = document.getElementById("status");
  var wc = document.getElementById("wc");
  var ww = document.getElementById("ww");
  var preset = document.getElementById("preset");
  var current = null;
  var index = 0;

  function frameUrl(series, slice, viewport) {
    var url = manifest.dicomweb + "/studies/" + series.study + "/series/" + series.uid +
      "/instances/" + slice[0] + "/frames/" + slice[1] + "/rendered";
    var params = [];
    if (wc.value !== "" && ww.value !== "" && Number(ww.value) > 0) {
      params.push("window=" + encodeURIComponent(wc.value + "," + ww.value + ",linear"));
    }
    if (viewport) { params.push("viewport=" + viewport); }
    return params.length ? url + "?" + params.join("&") : url;
  }

  function show(i) {
    if (!current || !current.slices.length) { return; }
    index = Math.max(0, Math.min(current.slices.length - 1, i));
    var slice = current.slices[index];
    slider.value = String(index + 1);
    counter.textContent = "第 " + (index + 1) + " / " + current.slices.length + " 幅";
    status.textContent = "";
    img.src = frameUrl(current, slice);
    info.textContent = "SOPInstanceUID " + slice[0] + " · 帧 " + slice[1] +
      (slice[2] !== null ? " · InstanceNumber " + slice[2] : "");
    for (var k = 1; k <= 2; k++) {  // warm the next frames so sliding stays smooth
      var next = current.slices[index + k];
      if (next) { new Image().src = frameUrl(current, next); }
    }
  }

  function select(series, item) {
    current = series;
    Array.prototype.forEach.call(seriesList.children, function (li) { li.classList.remove("active"); });
    item.classList.add("active");
    slider.max = String(Math.max(1, series.slices.length));
    if (!series.slices.length) {
      img.removeAttribute("src");
      counter.textContent = "—";
      status.textContent = "该序列没有可显示的图像（如结构化报告、关键图像注释）。";
      return;
    }
    show(Math.floor(series.slices.length / 2));
  }

  manifest.series.forEach(function (series, n) {
    var li = document.createElement("li");
    var thumb = document.createElement("img");
    thumb.alt = "";
    if (series.slices.length) {
      thumb.src = frameUrl(series, series.slices[Math.floor(series.slices.length / 2)], "64,64");
    }
    var text = document.createElement("div");
    text.innerHTML = "";
    var title = document.createElement("div");
    title.textContent = "序列 " + (series.number !== null ? series.number : n + 1) + " · " + (series.modality || "");
    var desc = document.createElement("div");
    desc.className = "meta";
    desc.textContent = (series.description || "（无描述）") + " · " + series.slices.length + " 幅";
    text.appendChild(title);
    text.appendChild(desc);
    li.appendChild(thumb);
    li.appendChild(text);
    li.addEventListener("click", function () { select(series, li); });
    seriesList.appendChild(li);
    if (n === 0) { select(series, li); }
  });
  if (!manifest.series.length) { status.textContent = "该检查没有影像。"; }

  img.addEventListener("error", function () { status.textContent = "该幅图像无法显示，可下载 DICOM 查看。"; });
  slider.addEventListener("input", function () { show(Number(slider.value) - 1); });
  document.getElementById("prev").addEventListener("click", function () { show(index - 1); });
  document.getElementById("next").addEventListener("click", function () { show(index + 1); });
  document.addEventListener("keydown", function (e) {
    if (e.target.tagName === "INPUT" && e.target.type === "number") { return; }
    if (e.key === "ArrowLeft" || e.key === "ArrowUp") { show(index - 1); e.preventDefault(); }
    if (e.key === "ArrowRight" || e.key === "ArrowDown") { show(index + 1); e.preventDefault(); }
  });
  img.addEventListener("wheel", function (e) { show(index + (e.deltaY > 0 ? 1 : -1)); e.preventDefault(); },
                       { passive: false });
  preset.addEventListener("change", function () {
    var v = preset.value.split(",");
    wc.value = v.length === 2 ? v[0] : "";
    ww.value = v.length === 2 ? v[1] : "";
    show(index);
  });
  [wc, ww].forEach(function (input) { input.addEventListener("change", function () { preset.value = ""; show(index); }); });
})();
