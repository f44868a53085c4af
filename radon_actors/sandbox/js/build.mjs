// Runs componentize-js's command line with radon-actors' glue pass (glue.mjs):
//
//     node build.mjs <componentize-js package directory> <its cli.js arguments...>
//
// The pass is a Node module-loading hook on componentize-js's own
// componentize.js, so the tool is the user's installed, unmodified package.
// A Node without `module.register` (before 20.6) builds with the tool's own
// glue, and says so.

import { realpathSync } from "node:fs";
import * as nodeModule from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [packageDir] = process.argv.splice(2, 1);
if (!packageDir) {
  process.stderr.write("usage: node build.mjs <componentize-js directory> <arguments...>\n");
  process.exit(2);
}
// The URL Node loads it by: its real path (a linked package resolves there).
const componentize = pathToFileURL(realpathSync(join(packageDir, "src", "componentize.js"))).href;
if (typeof nodeModule.register === "function") {
  nodeModule.register("./glue.mjs", import.meta.url, {
    data: { componentize, glue: new URL("./glue.mjs", import.meta.url).href },
  });
} else {
  process.stderr.write(
    `radon-actors glue: not applied: Node ${process.versions.node} has no module hooks (20.6 or later has)\n`,
  );
}
await import(pathToFileURL(join(packageDir, "src", "cli.js")).href);
