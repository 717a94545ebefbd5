#!/usr/bin/env node
/**
 * Builds client/js/dist, the folder the gateway serves (and `pip install` ships as fedge.web):
 *
 *     index.html, style.css     the device owner's page (web/)
 *     page.js                   its code (src/page/main.js), an ES module
 *     fedge-client.js           the browser entry (src/browser.js) for other pages and scripts
 *     chunk-[hash].js           what the two share (TF.js, the core), loaded once
 *     *.wasm                    the TF.js wasm binaries, loaded from beside the bundle
 *     dashboard/                client/js/dashboard as it is, when that folder exists
 *
 * Nothing is fetched from a CDN: every file the page needs is in dist/.
 */

import { copyFileSync, cpSync, existsSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { fileURLToPath } from "node:url";

import { build } from "esbuild";

const PACKAGE = fileURLToPath(new URL("../", import.meta.url));
const DIST = `${PACKAGE}dist`;
const WASM = `${PACKAGE}node_modules/@tensorflow/tfjs-backend-wasm/dist`;
const WEB = `${PACKAGE}web`;
const DASHBOARD = `${PACKAGE}dashboard`;

rmSync(DIST, { recursive: true, force: true });
mkdirSync(DIST, { recursive: true });
await build({
  entryPoints: { "fedge-client": `${PACKAGE}src/browser.js`, page: `${PACKAGE}src/page/main.js` },
  outdir: DIST,
  chunkNames: "chunk-[hash]",
  splitting: true,
  bundle: true,
  format: "esm",
  platform: "browser",
  target: "es2020",
  minify: true,
  legalComments: "linked",
  logLevel: "warning",
});
for (const name of readdirSync(WASM).filter((f) => f.endsWith(".wasm")))
  copyFileSync(`${WASM}/${name}`, `${DIST}/${name}`);
for (const name of readdirSync(WEB)) copyFileSync(`${WEB}/${name}`, `${DIST}/${name}`);
if (existsSync(DASHBOARD)) cpSync(DASHBOARD, `${DIST}/dashboard`, { recursive: true });
for (const name of readdirSync(DIST).sort()) console.log(`dist/${name}`);
