// Zoom on the grader's read page: the photo is the original file at its full resolution; the
// buttons (and a click on the photo) scale it inside a scrolling frame, so the grader pans by
// scrolling or dragging. No third-party code; works with the keyboard (the buttons, and the
// frame scrolls with the arrow keys once focused).
(function () {
  "use strict";
  var STEPS = [1, 1.5, 2, 3, 4, 6];

  function setup(figure) {
    var frame = figure.querySelector(".zoom-frame");
    var img = frame && frame.querySelector("img");
    if (!img) return;
    var level = 0;
    var actual = false;

    function apply(centreX, centreY) {
      var before = { w: img.clientWidth, h: img.clientHeight };
      var fx = (frame.scrollLeft + (centreX === undefined ? frame.clientWidth / 2 : centreX)) / (before.w || 1);
      var fy = (frame.scrollTop + (centreY === undefined ? frame.clientHeight / 2 : centreY)) / (before.h || 1);
      img.style.width = actual ? img.naturalWidth + "px" : STEPS[level] * 100 + "%";
      frame.classList.toggle("zoomed", actual || level > 0);
      // Keep the point under the pointer (or the centre) where it was.
      frame.scrollLeft = fx * img.clientWidth - (centreX === undefined ? frame.clientWidth / 2 : centreX);
      frame.scrollTop = fy * img.clientHeight - (centreY === undefined ? frame.clientHeight / 2 : centreY);
    }

    figure.querySelectorAll("[data-zoom-step]").forEach(function (button) {
      button.addEventListener("click", function () {
        actual = false;
        level = Math.max(0, Math.min(STEPS.length - 1, level + Number(button.dataset.zoomStep)));
        apply();
      });
    });
    var fit = figure.querySelector("[data-zoom-fit]");
    if (fit) fit.addEventListener("click", function () { actual = false; level = 0; apply(); });
    var full = figure.querySelector("[data-zoom-actual]");
    if (full) full.addEventListener("click", function () { actual = true; apply(); });

    var drag = null;
    img.draggable = false;
    frame.addEventListener("mousedown", function (e) {
      drag = { x: e.clientX, y: e.clientY, left: frame.scrollLeft, top: frame.scrollTop, moved: false };
    });
    window.addEventListener("mousemove", function (e) {
      if (!drag) return;
      var dx = e.clientX - drag.x, dy = e.clientY - drag.y;
      if (Math.abs(dx) + Math.abs(dy) > 4) drag.moved = true;
      frame.scrollLeft = drag.left - dx;
      frame.scrollTop = drag.top - dy;
    });
    window.addEventListener("mouseup", function () { setTimeout(function () { drag = null; }, 0); });
    frame.addEventListener("click", function (e) {
      if (drag && drag.moved) return;
      var box = frame.getBoundingClientRect();
      if (actual || level === STEPS.length - 1) { actual = false; level = 0; }
      else { level += 1; }
      apply(e.clientX - box.left, e.clientY - box.top);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-zoom]").forEach(setup);
  });
})();
