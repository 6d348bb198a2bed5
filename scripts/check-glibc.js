#!/usr/bin/env node
// Checks what a prebuild asks the dynamic loader for, by its libc tag (mman.glibc.node,
// mman.musl.node; --libc for any other name) and its CPU (the linux-<cpu> folder; --arch):
//   glibc: no symbol version above GLIBC_2.28, no libstdc++ version (GLIBCXX_, CXXABI_) and no
//          libstdc++ itself.
//   musl:  no glibc library at all (libc.so.6, libstdc++, libgcc_s, libm.so.6, the glibc
//          loader...; musl's loader provides `libc.so` itself) and no GLIBC_/GLIBCXX_/CXXABI_/GCC_
//          symbol version.
//   both:  an ELF shared object for that CPU (e_machine: EM_X86_64 for x64, EM_AARCH64 for arm64).
// It reads the version-needs section and the NEEDED entries with `readelf` (any CPU's ELF) and
// the ELF header itself.
//   node scripts/check-glibc.js [--floor 2.28] [--libc glibc|musl] [--arch x64|arm64] [--json] <file.node>...
'use strict';
const { execFileSync } = require('node:child_process');
const { closeSync, openSync, readSync } = require('node:fs');
const { basename, dirname } = require('node:path');
const { parseArgs } = require('node:util');

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    floor: { type: 'string', default: '2.28' },
    libc: { type: 'string' },
    arch: { type: 'string' },
    json: { type: 'boolean', default: false },
  },
});

const parseVersion = (v) => v.split('.').map(Number);
const above = (a, b) => {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) > (b[i] ?? 0);
  }
  return false;
};

/** e_machine of each CPU a prebuild is made for (elf.h). */
const MACHINES = { x64: 62, arm64: 183 };

/** What `file` asks the loader for: { needed: ['libc.so.6', ...], versions: ['GLIBC_2.17', ...] }. */
function requirements(file) {
  const dynamic = execFileSync('readelf', ['-d', '-W', file], { encoding: 'utf8' });
  const needed = [...dynamic.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
  const versionInfo = execFileSync('readelf', ['-V', '-W', file], { encoding: 'utf8' });
  const start = versionInfo.indexOf('Version needs section');
  const needs = start < 0 ? '' : versionInfo.slice(start);
  const versions = [...new Set([...needs.matchAll(/Name: ([A-Z_]+[0-9.]+)\s+Flags/g)].map((m) => m[1]))];
  return { needed, versions };
}

/** The ELF header's class, byte order, type and machine: { elf64, type, machine }, or undefined. */
function elfHeader(file) {
  const header = Buffer.alloc(20);
  const fd = openSync(file, 'r');
  try {
    if (readSync(fd, header, 0, 20, 0) < 20) return undefined;
  } finally {
    closeSync(fd);
  }
  if (header.readUInt32BE(0) !== 0x7f454c46 || header[5] !== 1) return undefined; // "\x7fELF", little-endian
  return { elf64: header[4] === 2, type: header.readUInt16LE(16), machine: header.readUInt16LE(18) };
}

// A library of glibc's or of GCC's runtime: none of them is there on a musl system.
const GLIBC_LIBRARIES = /^(libc\.so\.6|libm\.so\.6|libpthread\.so\.0|libdl\.so\.2|librt\.so\.1|libstdc\+\+|libgcc_s|ld-linux)/;

function check(file, floor) {
  const libc = values.libc ?? /\.(glibc|musl)\.node$/.exec(basename(file))?.[1];
  const arch = values.arch ?? /-(x64|arm64)$/.exec(basename(dirname(file)))?.[1];
  const problems = [];
  if (libc !== 'glibc' && libc !== 'musl') problems.push('no libc tag in its name (mman.glibc.node, mman.musl.node): give --libc');
  if (!arch || !(arch in MACHINES)) problems.push('no CPU in its folder (linux-x64, linux-arm64): give --arch');
  const elf = elfHeader(file);
  if (!elf) problems.push('not a little-endian ELF file');
  else {
    if (!elf.elf64) problems.push('not a 64-bit ELF file');
    if (elf.type !== 3) problems.push(`ELF type ${elf.type}, not a shared object (ET_DYN)`);
    if (arch in MACHINES && elf.machine !== MACHINES[arch])
      problems.push(`e_machine ${elf.machine}, not ${MACHINES[arch]} (${arch})`);
  }
  if (!elf) return { file, libc, arch, machine: undefined, highestGlibc: undefined, needed: [], versions: [], problems };
  const { needed, versions } = requirements(file);
  let highest = '0';
  for (const v of versions) {
    const glibc = /^GLIBC_([0-9.]+)$/.exec(v);
    if (libc === 'musl') {
      if (/^(GLIBC|GLIBCXX|CXXABI|GCC)_/.test(v)) problems.push(`needs ${v}: a glibc or GCC runtime symbol version`);
    } else if (glibc) {
      if (above(parseVersion(glibc[1]), parseVersion(highest))) highest = glibc[1];
      if (above(parseVersion(glibc[1]), parseVersion(floor))) problems.push(`needs ${v}, above GLIBC_${floor}`);
    } else if (/^(GLIBCXX|CXXABI)_/.test(v)) {
      problems.push(`needs ${v}: a libstdc++ of the build machine`);
    }
  }
  for (const lib of needed) {
    if (libc === 'musl' && GLIBC_LIBRARIES.test(lib)) problems.push(`links ${lib}, which musl does not have`);
    else if (/^libstdc\+\+/.test(lib)) problems.push(`links ${lib}`);
  }
  const highestGlibc = libc === 'musl' ? undefined : `GLIBC_${highest}`;
  return { file, libc, arch, machine: elf.machine, highestGlibc, needed, versions, problems };
}

if (positionals.length === 0) {
  console.error(
    'usage: node scripts/check-glibc.js [--floor 2.28] [--libc glibc|musl] [--arch x64|arm64] [--json] <file.node>...',
  );
  process.exit(2);
}
const results = positionals.map((file) => check(file, values.floor));
if (values.json) {
  console.log(JSON.stringify(results));
} else {
  for (const r of results) {
    const ok = r.libc === 'musl' ? 'ok, loads on musl' : `ok, loads on glibc >= ${values.floor}`;
    const verdict = r.problems.length === 0 ? ok : r.problems.join('; ');
    const what = r.libc === 'musl' ? 'no glibc symbol version' : `${r.highestGlibc} at most`;
    console.log(`${r.file}: ${r.arch} ${r.libc}, ${what}, needs ${r.needed.join(' ')}: ${verdict}`);
  }
}
process.exit(results.some((r) => r.problems.length > 0) ? 1 : 0);
