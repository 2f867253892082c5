#!/usr/bin/env node
// A native-solc-compatible front for solc-js (WebAssembly), so forge and the vault
// can compile offline with the compiler pinned in package.json. forge calls it as
// `solc --version` and `solc --standard-json --base-path P --include-path Q ...`;
// imports are resolved against the base path and every include path.
'use strict';
const fs = require('fs');
const path = require('path');
const solc = require(path.join(__dirname, '..', 'node_modules', 'solc'));

const args = process.argv.slice(2);
if (args.includes('--version')) {
  const v = solc.version().replace(/\.Emscripten\.clang$/, '');
  process.stdout.write(
    'solc, the solidity compiler commandline interface\nVersion: ' + v + '.Linux.g++\n');
  process.exit(0);
}
if (!args.includes('--standard-json')) {
  process.stderr.write('solc-js.cjs only supports --version and --standard-json\n');
  process.exit(2);
}
const roots = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--base-path' || args[i] === '--include-path' || args[i] === '--allow-paths') {
    if (args[i] !== '--allow-paths') roots.push(args[i + 1]);
    i++;
  }
}
if (roots.length === 0) roots.push(process.cwd());

function findImports(importPath) {
  for (const root of roots) {
    const candidate = path.resolve(root, importPath);
    if (fs.existsSync(candidate)) {
      return { contents: fs.readFileSync(candidate, 'utf8') };
    }
  }
  if (fs.existsSync(importPath)) return { contents: fs.readFileSync(importPath, 'utf8') };
  return { error: 'File not found: ' + importPath };
}

const input = fs.readFileSync(0, 'utf8');
process.stdout.write(solc.compile(input, { import: findImports }));
