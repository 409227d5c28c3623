/* Registration form: the 시/군/구 list shows only the districts of the chosen 시/도. The codes are
   what is posted; the server derives the coordinates from them (screening/forms.py). Without this
   script the list still works: it is grouped by 시/도, and the server checks that the two agree. */
(function () {
  "use strict";
  const province = document.getElementById("id_sido");
  const district = document.getElementById("id_sigungu");
  if (!province || !district) return;
  // A district code starts with the two digits of its province.
  const inProvince = (option) => !province.value || !option.value || option.value.slice(0, 2) === province.value;

  function filter() {
    district.querySelectorAll("option").forEach((option) => {
      const shown = inProvince(option);
      option.hidden = !shown;
      option.disabled = !shown;
    });
    district.querySelectorAll("optgroup").forEach((group) => {
      const shown = Array.from(group.querySelectorAll("option")).some(inProvince);
      group.hidden = !shown;
      group.disabled = !shown;
    });
    if (district.value && !inProvince(district.selectedOptions[0])) district.value = "";
  }
  province.addEventListener("change", filter);
  district.addEventListener("change", () => {
    if (district.value && !province.value) province.value = district.value.slice(0, 2);
    filter();
  });
  filter();
})();
