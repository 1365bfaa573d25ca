// The seeded generator the fixture scripts share (mulberry32): the same seed gives the same
// numbers on every machine and node version, so regenerated fixtures are identical.
"use strict";
module.exports = function seededRandom(seed) {
  return function rand() {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
};
