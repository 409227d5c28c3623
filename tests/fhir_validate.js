// Validates FHIR resources with FHIR.js (npm package `fhir`), independently of fhir.resources.
//   node tests/fhir_validate.js <folder holding node_modules/fhir>  < [resource, ...]  > [result, ...]
// FHIR.js ships the R4 (4.0.x) definitions: our R4B exports must pass them, since we claim that
// they are R4-compatible (config/fhir.py). Unknown elements are errors, not ignored.
"use strict";
const path = require("path");
const { Fhir } = require(path.join(process.argv[2], "node_modules", "fhir"));

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const fhir = new Fhir();
  const results = JSON.parse(input).map((resource) =>
    fhir.validate(resource, { errorOnUnexpected: true })
  );
  process.stdout.write(JSON.stringify(results));
});
