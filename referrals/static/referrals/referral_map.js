/* Referral page map: the origin and the ranked hospitals, drawn with Leaflet (served locally).
   Tiles are optional: with no tile URL configured, or offline, the markers sit on a plain
   background, and the numbered list under the map carries the same information. */
(function () {
  "use strict";
  function init() {
    var el = document.getElementById("ref-map");
    var dataEl = document.getElementById("ref-map-data");
    if (!el || !dataEl || typeof L === "undefined") { if (el) { el.hidden = true; } return; }
    var data = JSON.parse(dataEl.textContent);
    // Leaflet's own zoom buttons are titled in English; the page gives them in its language.
    var map = L.map(el, { attributionControl: !!data.tiles, zoomSnap: 0.25, zoomControl: false });
    L.control.zoom({ zoomInTitle: data.zoom_in || "Zoom in", zoomOutTitle: data.zoom_out || "Zoom out" }).addTo(map);
    if (data.tiles) {
      L.tileLayer(data.tiles, { maxZoom: 18, attribution: "&copy; OpenStreetMap" }).addTo(map);
    } else {
      el.classList.add("ref-map-plain");
    }
    var points = [];
    if (data.origin) {
      var o = [data.origin.lat, data.origin.lon];
      L.circleMarker(o, { radius: 8, color: "#0b5", fillOpacity: 0.9 })
        .bindTooltip(data.origin.label, { permanent: true, direction: "top" }).addTo(map);
      points.push(o);
    }
    data.candidates.forEach(function (c) {
      var p = [c.lat, c.lon];
      var marker = L.circleMarker(p, {
        radius: c.chosen ? 10 : 7, color: c.chosen ? "#c30" : "#05a", fillOpacity: 0.8
      }).bindTooltip(c.rank + ". " + c.name + " (" + c.distance_km.toFixed(1) + " km)",
                     { permanent: !data.tiles, direction: "right" });
      marker.on("click", function () {
        var radio = document.getElementById("h-" + c.id);
        if (radio) { radio.checked = true; }
        var row = document.getElementById("cand-" + c.id);
        if (row) { row.scrollIntoView({ block: "nearest" }); }
      });
      marker.addTo(map);
      points.push(p);
    });
    if (points.length === 1) { map.setView(points[0], 12); }
    else { map.fitBounds(points, { padding: [40, 40] }); }
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", init); }
  else { init(); }
})();
