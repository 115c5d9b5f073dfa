#!/usr/bin/env node
// Compile contracts/src with the pinned solc-js into deterministic JSON artifacts.
//
// Usage: node scripts/compile.js [outDir]   (default: ../src/gridledger/ledger/artifacts)
//
// Reproducible by construction: fixed compiler (package-lock), optimizer 200 runs, evmVersion
// cancun (the newest fork py-evm in eth-tester runs), no metadata hash in the bytecode, and
// source unit names relative to contracts/ so the checkout path never leaks into the output.
"use strict";

const crypto = require("crypto");
const fs = require("fs");
const path = require("path");
const solc = require("solc");

const ROOT = path.resolve(__dirname, "..");
const SRC = path.join(ROOT, "src");
const COMPILER = "0.8.37";
const CONTRACTS = ["GridToken", "Registry", "Market", "PerTradeSettlement", "Evidence", "Consent"];

function sourceFiles() {
  return fs.readdirSync(SRC).filter((name) => name.endsWith(".sol")).sort();
}

// sha256 over "<unit name>\0<content>\0" of every contracts/src file, sorted by name.
function sourceHash(files) {
  const hash = crypto.createHash("sha256");
  for (const name of files) {
    hash.update(`src/${name}\0`);
    hash.update(fs.readFileSync(path.join(SRC, name)));
    hash.update("\0");
  }
  return hash.digest("hex");
}

function findImport(unit) {
  const candidates = [path.join(ROOT, unit), path.join(ROOT, "node_modules", unit)];
  for (const file of candidates) {
    if (fs.existsSync(file)) return { contents: fs.readFileSync(file, "utf8") };
  }
  return { error: `not found: ${unit}` };
}

function standardInput(files) {
  const sources = {};
  for (const name of files) sources[`src/${name}`] = { content: fs.readFileSync(path.join(SRC, name), "utf8") };
  return {
    language: "Solidity",
    sources,
    settings: {
      optimizer: { enabled: true, runs: 200 },
      evmVersion: "cancun",
      metadata: { bytecodeHash: "none" },
      outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
    },
  };
}

function main() {
  const version = solc.version();
  if (!version.startsWith(`${COMPILER}+`)) throw new Error(`solc ${version} is not the pinned ${COMPILER}`);
  const outDir = path.resolve(process.argv[2] || path.join(ROOT, "..", "src", "gridledger", "ledger", "artifacts"));
  const files = sourceFiles();
  const output = JSON.parse(solc.compile(JSON.stringify(standardInput(files)), { import: findImport }));
  const errors = (output.errors || []).filter((e) => e.severity === "error");
  // OpenZeppelin's own warnings (e.g. about its transient-storage guard) are not ours to fix.
  for (const e of output.errors || []) {
    const file = (e.sourceLocation && e.sourceLocation.file) || "";
    if (e.severity === "error" || file.startsWith("src/")) process.stderr.write(e.formattedMessage + "\n");
  }
  if (errors.length) process.exit(1);
  const hash = sourceHash(files);
  fs.mkdirSync(outDir, { recursive: true });
  for (const name of CONTRACTS) {
    const compiled = output.contracts[`src/${name}.sol`][name];
    const artifact = {
      contractName: name,
      abi: compiled.abi,
      bytecode: "0x" + compiled.evm.bytecode.object,
      deployedBytecode: "0x" + compiled.evm.deployedBytecode.object,
      compiler: COMPILER,
      sourceHash: hash,
    };
    fs.writeFileSync(path.join(outDir, `${name}.json`), JSON.stringify(artifact, null, 2) + "\n");
  }
  process.stdout.write(`wrote ${CONTRACTS.length} artifacts to ${outDir}\n`);
}

main();
