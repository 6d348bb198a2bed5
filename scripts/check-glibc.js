#!/usr/bin/env node
// Fails when a binary needs more than the glibc floor the prebuilds promise: a symbol version
// above GLIBC_2.28, any libstdc++ version (GLIBCXX_, CXXABI_) or libstdc++ itself. It reads
// what the dynamic loader will ask for: the version-needs section and the NEEDED entries
// (`readelf`, which reads an ELF file of any CPU).
//   node scripts/check-glibc.js [--floor 2.28] [--json] <file.node>...
'use strict';
const { execFileSync } = require('node:child_process');
const { parseArgs } = require('node:util');

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { floor: { type: 'string', default: '2.28' }, json: { type: 'boolean', default: false } },
});

const parseVersion = (v) => v.split('.').map(Number);
const above = (a, b) => {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) > (b[i] ?? 0);
  }
  return false;
};

/** What `file` asks the loader for: { needed: ['libc.so.6', ...], versions: ['GLIBC_2.17', ...] }. */
function requirements(file) {
  const dynamic = execFileSync('readelf', ['-d', '-W', file], { encoding: 'utf8' });
  const needed = [...dynamic.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
  const versionInfo = execFileSync('readelf', ['-V', '-W', file], { encoding: 'utf8' });
  const needs = versionInfo.slice(versionInfo.indexOf("Version needs section"));
  const versions = [...new Set([...needs.matchAll(/Name: ([A-Z_]+[0-9.]+)\s+Flags/g)].map((m) => m[1]))];
  return { needed, versions };
}

function check(file, floor) {
  const { needed, versions } = requirements(file);
  const problems = [];
  let highest = '0';
  for (const v of versions) {
    const glibc = /^GLIBC_([0-9.]+)$/.exec(v);
    if (glibc) {
      if (above(parseVersion(glibc[1]), parseVersion(highest))) highest = glibc[1];
      if (above(parseVersion(glibc[1]), parseVersion(floor))) problems.push(`needs ${v}, above GLIBC_${floor}`);
    } else if (/^(GLIBCXX|CXXABI)_/.test(v)) {
      problems.push(`needs ${v}: a libstdc++ of the build machine`);
    }
  }
  for (const lib of needed) {
    if (/^libstdc\+\+/.test(lib)) problems.push(`links ${lib}`);
  }
  return { file, highestGlibc: `GLIBC_${highest}`, needed, problems };
}

if (positionals.length === 0) {
  console.error('usage: node scripts/check-glibc.js [--floor 2.28] [--json] <file.node>...');
  process.exit(2);
}
const results = positionals.map((file) => check(file, values.floor));
if (values.json) {
  console.log(JSON.stringify(results));
} else {
  for (const r of results) {
    const verdict = r.problems.length === 0 ? `ok, loads on glibc >= ${values.floor}` : r.problems.join('; ');
    console.log(`${r.file}: ${r.highestGlibc} at most, needs ${r.needed.join(' ')}: ${verdict}`);
  }
}
process.exit(results.some((r) => r.problems.length > 0) ? 1 : 0);
