// Keccak-256 (the Ethereum hash) and the Merkle checks of gridledger, for the Verify button.
// BigInt lanes: slow next to a native hash, fast enough for a statement's few proofs.
"use strict";

const KECCAK_RC = [
  0x0000000000000001n, 0x0000000000008082n, 0x800000000000808an, 0x8000000080008000n,
  0x000000000000808bn, 0x0000000080000001n, 0x8000000080008081n, 0x8000000000008009n,
  0x000000000000008an, 0x0000000000000088n, 0x0000000080008009n, 0x000000008000000an,
  0x000000008000808bn, 0x800000000000008bn, 0x8000000000008089n, 0x8000000000008003n,
  0x8000000000008002n, 0x8000000000000080n, 0x000000000000800an, 0x800000008000000an,
  0x8000000080008081n, 0x8000000000008080n, 0x0000000080000001n, 0x8000000080008008n];
const KECCAK_ROT = [0, 1, 62, 28, 27, 36, 44, 6, 55, 20, 3, 10, 43, 25, 39, 41, 45, 15, 21, 8,
  18, 2, 61, 56, 14].map(BigInt);
const MASK64 = (1n << 64n) - 1n;
const rotl = (v, n) => (n === 0n ? v : ((v << n) | (v >> (64n - n))) & MASK64);

function keccakF(s) {
  for (let round = 0; round < 24; round++) {
    const c = [0, 1, 2, 3, 4].map((x) => s[x] ^ s[x + 5] ^ s[x + 10] ^ s[x + 15] ^ s[x + 20]);
    for (let i = 0; i < 25; i++) s[i] ^= c[(i + 4) % 5] ^ rotl(c[(i + 1) % 5], 1n);
    const b = new Array(25);
    for (let x = 0; x < 5; x++) for (let y = 0; y < 5; y++) {
      b[y + 5 * ((2 * x + 3 * y) % 5)] = rotl(s[x + 5 * y], KECCAK_ROT[x + 5 * y]);
    }
    for (let x = 0; x < 5; x++) for (let y = 0; y < 5; y++) {
      s[x + 5 * y] = b[x + 5 * y] ^ (~b[((x + 1) % 5) + 5 * y] & MASK64 & b[((x + 2) % 5) + 5 * y]);
    }
    s[0] ^= KECCAK_RC[round];
  }
}

function keccak256(bytes) {
  const rate = 136;
  const padded = new Uint8Array(Math.floor(bytes.length / rate) * rate + rate);
  padded.set(bytes);
  padded[bytes.length] ^= 0x01;
  padded[padded.length - 1] ^= 0x80;
  const s = new Array(25).fill(0n);
  for (let off = 0; off < padded.length; off += rate) {
    for (let i = 0; i < rate / 8; i++) {
      let lane = 0n;
      for (let k = 7; k >= 0; k--) lane = (lane << 8n) | BigInt(padded[off + i * 8 + k]);
      s[i] ^= lane;
    }
    keccakF(s);
  }
  const out = new Uint8Array(32);
  for (let i = 0; i < 4; i++) for (let k = 0; k < 8; k++) out[i * 8 + k] = Number((s[i] >> BigInt(8 * k)) & 0xffn);
  return out;
}

const hexToBytes = (hex) => Uint8Array.from(hex.replace(/^0x/, "").match(/../g) || [], (h) => parseInt(h, 16));
const bytesToHex = (b) => "0x" + Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

function word(value) { // one ABI word: an address or an unsigned integer
  const text = typeof value === "string" && value.startsWith("0x") ? value.slice(2) : BigInt(value).toString(16);
  return hexToBytes(text.padStart(64, "0"));
}

function concat(parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

// leaf = keccak(keccak(abi.encode(meter, sequence, intervalStartS, intervalLengthS, importedWh, exportedWh)))
// The leaf ends with the reading's 32-byte salt (blinded leaves: a proof reveals no neighbour).
function readingLeaf(r, saltHex) {
  const words = [r.meter, r.sequence, r.intervalStartS, r.intervalLengthS, r.importedWh, r.exportedWh].map(word);
  if (saltHex) words.push(hexToBytes(saltHex));
  return keccak256(keccak256(concat(words)));
}

function lessThan(a, b) {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] < b[i];
  return false;
}

// OpenZeppelin MerkleProof.verify: fold sorted pairs from the leaf up to the root.
function verifyProof(leaf, proofHex, rootHex) {
  let node = leaf;
  for (const siblingHex of proofHex) {
    const sibling = hexToBytes(siblingHex);
    node = keccak256(lessThan(node, sibling) ? concat([node, sibling]) : concat([sibling, node]));
  }
  return bytesToHex(node) === rootHex.toLowerCase();
}

window.gridledgerProofs = { keccak256, readingLeaf, verifyProof, bytesToHex, hexToBytes };
