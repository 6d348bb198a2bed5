// Property-based: random sequences of map / write / protect / advise / sync / resize / view /
// residency / unmap, with valid and invalid arguments, against a model of the file's bytes.
// Invariants: no crash; every failure is a typed error with a code; the file equals the
// model after sync; nothing is left mapped at the end.
import fc from 'fast-check';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Advice, mapFile, Mapping, mappingStats, PAGE_SIZE, Prot } from '../src';
import { collectedStats, tempDir } from './helpers';

type Mode = 'r' | 'r+' | 'copy';
interface Live {
  mapping: Mapping;
  mode: Mode;
  offset: number; // file offset of byte 0
  length: number;
  private: Map<number, Uint8Array>; // 'copy': file page index -> this mapping's own copy
  prot: Map<number, number>; // file page index -> protection, when changed
}

const FILE_PAGES = 6;
const FILE_SIZE = FILE_PAGES * PAGE_SIZE - 123;

// Arguments: mostly valid, sometimes not (negative, NaN, fractional, too large, wrong type).
const anyNumber = (max: number) =>
  fc.oneof(
    { weight: 8, arbitrary: fc.integer({ min: 0, max }) },
    { weight: 1, arbitrary: fc.constantFrom(-1, NaN, 0.5, Infinity, 2 ** 60, max + 1) },
    { weight: 1, arbitrary: fc.constantFrom('1' as unknown as number, null as unknown as number) },
  );
const op = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('map' as const),
      mode: fc.constantFrom<Mode>('r', 'r+', 'copy'),
      offset: anyNumber(FILE_SIZE),
      length: fc.option(anyNumber(FILE_SIZE)),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('write' as const),
      at: fc.nat(),
      offset: fc.nat(),
      bytes: fc.uint8Array({ minLength: 1, maxLength: 2 * PAGE_SIZE }),
    }),
  },
  fc.record({
    kind: fc.constant('protect' as const),
    at: fc.nat(),
    prot: fc.constantFrom(Prot.Read, Prot.Read | Prot.Write, Prot.None, 8),
    offset: anyNumber(FILE_SIZE),
    length: fc.option(anyNumber(FILE_SIZE)),
  }),
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('advise' as const),
      at: fc.nat(),
      advice: fc.constantFrom(
        Advice.DontNeed,
        Advice.DontNeed,
        Advice.Normal,
        Advice.Random,
        Advice.Sequential,
        Advice.WillNeed,
        Advice.Cold,
        Advice.PageOut,
        100,
        101,
        -1,
      ),
      offset: anyNumber(FILE_SIZE),
      length: fc.option(anyNumber(FILE_SIZE)),
    }),
  },
  fc.record({
    kind: fc.constant('sync' as const),
    at: fc.nat(),
    async: fc.boolean(),
    offset: fc.option(anyNumber(FILE_SIZE)),
  }),
  fc.record({ kind: fc.constant('resize' as const), at: fc.nat(), length: anyNumber(FILE_SIZE) }),
  fc.record({
    kind: fc.constant('view' as const),
    at: fc.nat(),
    offset: anyNumber(FILE_SIZE),
    length: fc.option(anyNumber(FILE_SIZE)),
  }),
  fc.record({
    kind: fc.constant('residency' as const),
    at: fc.nat(),
    offset: anyNumber(FILE_SIZE),
    length: fc.option(anyNumber(FILE_SIZE)),
  }),
  fc.record({ kind: fc.constant('unmap' as const), at: fc.nat() }),
);

const codes = new Set([
  'ERR_INVALID_ARG_TYPE',
  'ERR_INVALID_ARG_VALUE',
  'ERR_OUT_OF_RANGE',
  'ERR_MAPPING_CLOSED',
  'EINVAL',
  'EACCES',
  'ENOMEM',
  'EPERM',
  'EFAULT',
]);
function typedFailure(fn: () => void): boolean {
  try {
    fn();
    return false;
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (typeof code !== 'string' || !codes.has(code)) throw err;
    return true;
  }
}

const validRange = (total: number, offset: unknown, length: unknown) =>
  Number.isInteger(offset) &&
  (offset as number) >= 0 &&
  (offset as number) <= total &&
  (length === null ||
    (Number.isInteger(length) && (length as number) >= 0 && (offset as number) + (length as number) <= total));

test('random operation sequences agree with a model of the file', () => {
  const { dir, cleanup } = tempDir();
  const baseline = collectedStats();
  // Ranges of open mappings: retired ones wait for the collector, checked once at the end.
  const open = () => {
    const s = mappingStats();
    return [s.regions - s.retiredRegions, s.bytes - s.retiredBytes];
  };
  const openBaseline = open();
  let run = 0;
  try {
    // Every sequence opens with a valid mapping, so the operations after it have one to act on.
    const firstMap = fc.record({
      kind: fc.constant('map' as const),
      mode: fc.constantFrom<Mode>('r', 'r+', 'copy'),
      offset: fc.integer({ min: 0, max: 2 * PAGE_SIZE }),
      length: fc.constant(null),
    });
    const sequence = fc
      .tuple(firstMap, fc.array(op, { minLength: 4, maxLength: 30, size: 'medium' }))
      .map(([first, rest]) => [first, ...rest]);
    fc.assert(
      fc.property(sequence, (ops) => {
        const path = join(dir, `model-${run++}.bin`);
        const model = Uint8Array.from({ length: FILE_SIZE }, (_, i) => (i * 13 + run) & 0xff);
        writeFileSync(path, model);
        const live: Live[] = [];
        const pick = (at: number) => (live.length ? live[at % live.length] : undefined);
        const pageOf = (l: Live, i: number) => Math.floor((l.offset + i) / PAGE_SIZE);
        const protOf = (l: Live, page: number) =>
          l.prot.get(page) ?? (l.mode === 'r' ? Prot.Read : Prot.Read | Prot.Write);
        const readable = (l: Live, from: number, to: number) => {
          for (let p = pageOf(l, from); p <= pageOf(l, Math.max(from, to - 1)); p++)
            if ((protOf(l, p) & Prot.Read) === 0) return false;
          return true;
        };
        // What mapping `l` should show: the file model, overlaid with its private pages.
        const image = (l: Live) => {
          const out = model.slice(l.offset, l.offset + l.length);
          for (const [page, own] of l.private) {
            const from = Math.max(page * PAGE_SIZE, l.offset);
            const to = Math.min((page + 1) * PAGE_SIZE, l.offset + l.length);
            if (from < to) out.set(own.subarray(from - page * PAGE_SIZE, to - page * PAGE_SIZE), from - l.offset);
          }
          return out;
        };
        const check = (l: Live) => {
          if (!readable(l, 0, l.length)) return;
          const bytes = l.mapping.bytes;
          expect(bytes.length).toBe(l.length);
          if (Buffer.compare(bytes, image(l)) !== 0)
            throw new Error(`a ${l.mode} mapping at ${l.offset} differs from the model`);
        };

        // In a function of its own: no view made here outlives the run in this frame.
        (() => {
          try {
            for (const o of ops) {
              const l = o.kind === 'map' ? undefined : pick(o.at);
              switch (o.kind) {
                case 'map': {
                  const ok =
                    Number.isInteger(o.offset) &&
                    o.offset >= 0 &&
                    o.offset < FILE_SIZE &&
                    (o.length === null ||
                      (Number.isInteger(o.length) && o.length >= 1 && o.offset + o.length <= FILE_SIZE));
                  let mapping: Mapping | undefined;
                  const failed = typedFailure(() => {
                    mapping = mapFile(path, {
                      mode: o.mode,
                      offset: o.offset,
                      ...(o.length === null ? {} : { length: o.length }),
                    });
                  });
                  expect(failed).toBe(!ok);
                  if (mapping)
                    live.push({
                      mapping,
                      mode: o.mode,
                      offset: o.offset,
                      length: mapping.length,
                      private: new Map(),
                      prot: new Map(),
                    });
                  break;
                }
                case 'write': {
                  if (!l || l.mode === 'r') break;
                  const at = o.offset % l.length;
                  const bytes = o.bytes.subarray(0, l.length - at);
                  let writable = true;
                  for (let p = pageOf(l, at); p <= pageOf(l, at + bytes.length - 1); p++)
                    if (protOf(l, p) !== (Prot.Read | Prot.Write)) writable = false;
                  if (!writable) break; // would be SIGSEGV: covered by the protect tests in a child process
                  l.mapping.bytes.set(bytes, at);
                  for (let i = 0; i < bytes.length; i++) {
                    const fileAt = l.offset + at + i;
                    if (l.mode === 'r+') {
                      model[fileAt] = bytes[i];
                      continue;
                    }
                    const page = pageOf(l, at + i);
                    if (!l.private.has(page))
                      l.private.set(page, model.slice(page * PAGE_SIZE, (page + 1) * PAGE_SIZE));
                    l.private.get(page)![fileAt % PAGE_SIZE] = bytes[i];
                  }
                  break;
                }
                case 'protect': {
                  if (!l) break;
                  const empty = validRange(l.length, o.offset, o.length) && (o.length ?? l.length - o.offset) === 0;
                  // An empty range is a no-op (no syscall); otherwise the kernel refuses write
                  // access to a read-only file.
                  const ok =
                    validRange(l.length, o.offset, o.length) &&
                    o.prot !== 8 &&
                    (empty || !(l.mode === 'r' && (o.prot & Prot.Write) !== 0));
                  expect(typedFailure(() => l.mapping.protect(o.prot, o.offset, o.length ?? undefined))).toBe(!ok);
                  if (ok) {
                    const len = o.length ?? l.length - o.offset;
                    if (len > 0)
                      for (let p = pageOf(l, o.offset); p <= pageOf(l, o.offset + len - 1); p++) l.prot.set(p, o.prot);
                  }
                  break;
                }
                case 'advise': {
                  if (!l) break;
                  const ok = validRange(l.length, o.offset, o.length) && o.advice >= 0 && o.advice < 100;
                  expect(typedFailure(() => l.mapping.advise(o.advice, o.offset, o.length ?? undefined))).toBe(!ok);
                  // DONTNEED drops a private copy's own pages: they read the file again.
                  if (ok && o.advice === Advice.DontNeed && l.mode === 'copy') {
                    const len = o.length ?? l.length - o.offset;
                    if (len > 0)
                      for (let p = pageOf(l, o.offset); p <= pageOf(l, o.offset + len - 1); p++) l.private.delete(p);
                  }
                  break;
                }
                case 'sync': {
                  if (!l) break;
                  const ok = o.offset === null || validRange(l.length, o.offset, null);
                  expect(
                    typedFailure(() =>
                      l.mapping.sync({ async: o.async, ...(o.offset === null ? {} : { offset: o.offset }) }),
                    ),
                  ).toBe(!ok);
                  if (ok) expect(Buffer.from(readFileSync(path)).equals(Buffer.from(model))).toBe(true);
                  break;
                }
                case 'resize': {
                  if (!l) break;
                  const valid = Number.isInteger(o.length) && o.length >= 1 && l.offset + o.length <= FILE_SIZE;
                  // past the end of the file: pages would SIGBUS
                  if (!valid && Number.isInteger(o.length) && o.length >= 1) break;
                  // Growing needs the mapping to be one VMA: pages left with different protections make
                  // mremap fail with EFAULT. Shrinking only unmaps the tail.
                  const prots = new Set<number>();
                  for (let p = pageOf(l, 0); p <= pageOf(l, l.length - 1); p++) prots.add(protOf(l, p));
                  const grows = valid && pageOf(l, o.length - 1) > pageOf(l, l.length - 1);
                  const ok = valid && (!grows || prots.size === 1);
                  expect(typedFailure(() => l.mapping.resize(o.length))).toBe(!ok);
                  if (ok) {
                    // mremap keeps each page's protection and private copy where they still fit.
                    l.length = o.length;
                    const last = pageOf(l, l.length - 1);
                    for (const p of [...l.private.keys()]) if (p > last) l.private.delete(p);
                    for (const p of [...l.prot.keys()]) if (p > last) l.prot.delete(p);
                  }
                  break;
                }
                case 'view': {
                  if (!l) break;
                  const ok = validRange(l.length, o.offset, o.length);
                  let view: Uint8Array | undefined;
                  expect(
                    typedFailure(() => {
                      view = l.mapping.view(o.offset, o.length ?? undefined);
                    }),
                  ).toBe(!ok);
                  if (view && readable(l, o.offset, o.offset + view.length)) {
                    expect(Buffer.compare(view, image(l).subarray(o.offset, o.offset + view.length))).toBe(0);
                  }
                  break;
                }
                case 'residency': {
                  if (!l) break;
                  const ok = validRange(l.length, o.offset, o.length);
                  let pages: Uint8Array | undefined;
                  expect(
                    typedFailure(() => {
                      pages = l.mapping.residency(o.offset, o.length ?? undefined);
                    }),
                  ).toBe(!ok);
                  if (pages) {
                    const len = o.length ?? l.length - o.offset;
                    const start = (l.offset % PAGE_SIZE) + o.offset;
                    expect(pages.length).toBe(
                      len === 0 ? 0 : Math.ceil((start + len) / PAGE_SIZE) - Math.floor(start / PAGE_SIZE),
                    );
                  }
                  break;
                }
                case 'unmap': {
                  if (!l) break;
                  l.mapping.unmap();
                  live.splice(live.indexOf(l), 1);
                  expect(typedFailure(() => l.mapping.sync())).toBe(true);
                  break;
                }
              }
              // A write can show through every mapping of the file; anything else only through its own.
              if (o.kind === 'write') for (const each of live) check(each);
              else if (l && live.includes(l)) check(l);
            }
            for (const each of live) check(each);
            for (const l of live) if (l.mode === 'r+') l.mapping.sync();
          } finally {
            for (const l of live) l.mapping.unmap(); // a failing run must not leave mappings behind for the next
          }
        })();
        expect(Buffer.from(readFileSync(path)).equals(Buffer.from(model))).toBe(true);
        expect(open()).toEqual(openBaseline);
        rmSync(path);
      }),
      {
        numRuns: Number(process.env.MMAN_PROPERTY_RUNS ?? 1000),
        seed: Number(process.env.MMAN_PROPERTY_SEED ?? 20261122),
      },
    );
  } finally {
    cleanup();
  }
  // Every retired range of every run is released once its buffers are collected.
  expect(collectedStats()).toEqual(baseline);
  expect(readFileSync('/proc/self/maps', 'latin1')).not.toContain(dir);
}, 300_000);
