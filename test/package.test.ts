// The published package, as a user gets it: `npm pack`, `npm install <tarball>` into a fresh
// directory, then `require('mman')`, `import ... from 'mman'` and tsc against its types; what
// the install adds, which prebuild the loader picks for each libc, the musl prebuilds in a real
// musl process, and the README's links inside the installed package.
import { execFileSync, spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import {
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';
import type * as Load from '../src/load';
import { tempDir } from './helpers';

const root = join(__dirname, '..');
const platformDir = `${process.platform}-${process.arch}`;
const hostPrebuild = `prebuilds/${platformDir}`;
const PREBUILD = 'mman.glibc.node'; // this machine's libc (Debian: glibc)
const MUSL_PREBUILD = 'mman.musl.node';
const PREBUILDS = ['linux-x64', 'linux-arm64'].flatMap((dir) =>
  [PREBUILD, MUSL_PREBUILD].map((file) => `prebuilds/${dir}/${file}`),
);
const npmCli = process.env.npm_execpath?.endsWith('.js')
  ? process.env.npm_execpath
  : realpathSync(execFileSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).trim());
// Headers for a source build, never a download (the machine's Node, as .ci/run sets it).
const nodedir = process.env.npm_config_nodedir ?? (existsSync('/usr/include/node/node_api.h') ? '/usr' : undefined);
// Bun, where `npm run test:runtimes` installed it (scripts/test.sh).
const bun = join(
  process.env.MMAN_CI_NODES ?? join(process.env.TMPDIR ?? tmpdir(), 'mman-ci-nodes'),
  'bun/node_modules/@oven/bun-linux-x64/bin/bun',
);

let scratch: { dir: string; cleanup: () => void };
let noCompilerPath: string;

/** Runs npm with the Node that runs this test; `env` replaces the variables it names. */
function npm(args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [npmCli, ...args], {
    cwd,
    encoding: 'utf8',
    timeout: 300_000,
    env: {
      ...process.env,
      ...(nodedir && { npm_config_nodedir: nodedir }),
      npm_config_audit: 'false',
      npm_config_fund: 'false',
      npm_config_update_notifier: 'false',
      ...env,
    },
  });
}

/** Packs the package directory `dir` (already built) into `into`; returns the tarball's path. */
function pack(dir: string, into: string): string {
  const run = npm(['pack', '--ignore-scripts', '--json', '--pack-destination', into], dir);
  expect(run.status).toBe(0);
  return join(into, JSON.parse(run.stdout)[0].filename);
}

/** A fresh, empty project directory. */
function emptyProject(name: string): string {
  const project = join(scratch.dir, name);
  mkdirSync(project);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: `consumer-${name}`, private: true }));
  return project;
}

/** A fresh project directory with `tarball` installed (dependencies from npm's cache first). */
function installInto(name: string, tarball: string, env: NodeJS.ProcessEnv = {}, options: string[] = []): string {
  const project = emptyProject(name);
  const run = npm(['install', '--prefer-offline', '--no-package-lock', ...options, tarball], project, env);
  if (run.status !== 0) throw new Error(`npm install failed:\n${run.stdout}\n${run.stderr}`);
  return project;
}

/** Runs `node` in `cwd` with `args`: the user's program against the installed package. */
function node(cwd: string, args: string[]): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, args, { cwd, encoding: 'utf8', timeout: 60_000 });
}

/** The loader (src/load.ts) as the package in `installed` ships it. */
function loaderOf(installed: string): typeof Load {
  return require(join(installed, 'lib', 'load.js')); // eslint-disable-line @typescript-eslint/no-require-imports
}

/** The packages under `nodeModules` other than mman, and the bytes of their files and npm's own. */
function footprint(nodeModules: string): { packages: string[]; bytes: number } {
  const packages: string[] = [];
  let bytes = 0;
  for (const entry of readdirSync(nodeModules, { recursive: true }).map(String)) {
    const rel = entry.split(sep).join('/');
    if (rel === 'mman' || (rel.startsWith('mman/') && !rel.startsWith('mman/node_modules/'))) continue;
    const stat = lstatSync(join(nodeModules, entry));
    if (stat.isFile()) bytes += stat.size;
    const manifest = /^(?:.*\/node_modules\/)?((?:@[^/]+\/)?[^/@.][^/]*)\/package\.json$/.exec(rel);
    if (manifest) packages.push(manifest[1]);
  }
  return { packages, bytes };
}

/** The `.node` files mapped into a process, from its /proc/<pid>/maps text. */
const mappedAddons = (maps: string): string[] => [
  ...new Set(
    maps
      .split('\n')
      .filter((line) => line.endsWith('.node'))
      .map((line) => line.slice(line.indexOf('/'))),
  ),
];

const useFromCommonJs = `
  const mman = require('mman');
  const m = mman.mapAnonymous(mman.PAGE_SIZE);
  m.bytes[1] = 7;
  console.log(JSON.stringify({ value: m.bytes[1], prot: mman.Prot.Read }));
  m.unmap();`;

const useFromEsm = `
  import { mapAnonymous, PAGE_SIZE, Prot } from 'mman';
  import mman from 'mman';
  const m = mapAnonymous(PAGE_SIZE);
  m.bytes[1] = 7;
  console.log(JSON.stringify({ value: m.bytes[1], prot: Prot.Read, same: mman.mapAnonymous === mapAnonymous }));
  m.unmap();`;

// Maps a page, then prints what it did and which addon file the process mapped.
const useAndShowAddon = `${useFromCommonJs}
  console.error(JSON.stringify(require('fs').readFileSync('/proc/self/maps', 'utf8').split('\\n')
    .filter((line) => line.endsWith('.node')).map((line) => line.slice(line.indexOf('/')))
    .filter((path, i, all) => all.indexOf(path) === i)));`;

let withPrebuild: string;
let withoutHostPrebuild: string;

beforeAll(() => {
  scratch = tempDir();
  // The repository as it would be published: lib/ built, prebuilds/ if `npm run prebuilds` ran.
  const published = join(scratch.dir, 'published');
  mkdirSync(published);
  const staged = join(scratch.dir, 'staged');
  execFileSync('tar', ['xzf', pack(root, published), '-C', published]);
  cpSync(join(published, 'package'), staged, { recursive: true });
  if (!PREBUILDS.every((file) => existsSync(join(staged, file)))) {
    // No prebuilds in the tree: make them from the packed sources as `npm run prebuilds` does
    // (the Zig toolchain; glibc 2.28 and musl), so that what is tested is what would ship.
    symlinkSync(join(root, 'node_modules'), join(staged, 'node_modules'));
    execFileSync('bash', [join(root, 'scripts', 'prebuilds.sh')], {
      stdio: 'ignore',
      env: { ...process.env, MMAN_PACKAGE_DIR: staged, ...(nodedir && { npm_config_nodedir: nodedir }) },
    });
    rmSync(join(staged, 'node_modules'));
    rmSync(join(staged, 'build'), { recursive: true, force: true });
  }
  withPrebuild = pack(staged, published);
  rmSync(join(staged, hostPrebuild), { recursive: true });
  withoutHostPrebuild = pack(staged, join(scratch.dir));

  // PATH with node and sh only: no cc, c++, g++, make or python for a build to find.
  noCompilerPath = join(scratch.dir, 'no-compiler-bin');
  mkdirSync(noCompilerPath);
  symlinkSync(process.execPath, join(noCompilerPath, 'node'));
  symlinkSync('/bin/sh', join(noCompilerPath, 'sh'));
}, 900_000);

afterAll(() => scratch?.cleanup());

describe('npm install <tarball> with a prebuild for this platform', () => {
  let project: string;
  let installed: string;

  beforeAll(() => {
    project = installInto('prebuilt', withPrebuild, { PATH: noCompilerPath, CC: 'false', CXX: 'false' });
    installed = join(realpathSync(project), 'node_modules', 'mman');
  }, 300_000);

  test('installs with no compiler on PATH and builds nothing', () => {
    expect(existsSync(join(installed, hostPrebuild, PREBUILD))).toBe(true);
    expect(existsSync(join(installed, 'build'))).toBe(false);
    expect(spawnSync('sh', ['-c', 'command -v g++ cc make'], { env: { PATH: noCompilerPath } }).stdout.length).toBe(0);
  });

  test('adds at most 3 packages and under 2 MB besides mman', () => {
    const { packages, bytes } = footprint(join(project, 'node_modules'));
    expect(packages).toEqual(['node-addon-api']); // the headers a source build compiles against
    expect(packages.length).toBeLessThanOrEqual(3);
    expect(bytes).toBeGreaterThan(0);
    expect(bytes).toBeLessThan(2_000_000);
  });

  test('the package has no install script for npm, pnpm or Bun to run (or to refuse)', () => {
    const manifest = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8'));
    for (const hook of ['preinstall', 'install', 'postinstall']) expect(manifest.scripts?.[hook]).toBeUndefined();
    // With a binding.gyp and no install script, npm would run `node-gyp rebuild` itself (even
    // with gypfile false, when it installs from a lockfile, which does not record that field).
    expect(existsSync(join(installed, 'binding.gyp'))).toBe(false);
    expect(existsSync(join(installed, 'native', 'mman.gypi'))).toBe(true);
    expect(manifest.gypfile).toBe(false);
    expect(Object.keys(manifest.dependencies)).toEqual(['node-addon-api']);
  });

  test('npm warns of no install script, and an install from the lockfile (npm ci) builds nothing either', () => {
    const locked = emptyProject('locked');
    const install = npm(['install', '--prefer-offline', withPrebuild], locked, { PATH: noCompilerPath });
    expect(install.status).toBe(0);
    expect(install.stdout + install.stderr).not.toMatch(/install-scripts|install script/i);
    expect(existsSync(join(locked, 'package-lock.json'))).toBe(true);
    rmSync(join(locked, 'node_modules'), { recursive: true });
    const ci = npm(['ci', '--prefer-offline'], locked, { PATH: noCompilerPath, CC: 'false', CXX: 'false' });
    expect(ci.stdout + ci.stderr).not.toMatch(/install-scripts|node-gyp/i);
    expect(ci.status).toBe(0);
    expect(existsSync(join(locked, 'node_modules', 'mman', 'build'))).toBe(false);
    const run = node(locked, ['-e', useFromCommonJs]);
    expect(JSON.parse(run.stdout)).toEqual({ value: 7, prot: 1 });
  }, 300_000);

  test('the glibc prebuilds it installed need nothing above glibc 2.28 and no libstdc++', () => {
    const files = ['linux-x64', 'linux-arm64'].map((dir) => join(installed, 'prebuilds', dir, PREBUILD));
    const check = spawnSync(process.execPath, [join(root, 'scripts', 'check-glibc.js'), '--json', ...files], {
      encoding: 'utf8',
    });
    expect(check.status).toBe(0);
    const results = JSON.parse(check.stdout) as Array<{ highestGlibc: string; needed: string[]; problems: string[] }>;
    expect(results).toHaveLength(2);
    for (const r of results) {
      expect(r.problems).toEqual([]);
      expect(r.needed.some((lib) => lib.startsWith('libstdc++'))).toBe(false);
    }
  });

  test('the musl prebuilds need no glibc library or symbol version, and are built for their CPU', () => {
    const checkGlibc = join(root, 'scripts', 'check-glibc.js');
    const files = ['linux-x64', 'linux-arm64'].map((dir) => join(installed, 'prebuilds', dir, MUSL_PREBUILD));
    const check = spawnSync(process.execPath, [checkGlibc, '--json', ...files], { encoding: 'utf8' });
    expect(check.status).toBe(0);
    const results = JSON.parse(check.stdout) as Array<{
      libc: string;
      arch: string;
      machine: number;
      needed: string[];
      versions: string[];
      problems: string[];
    }>;
    expect(results.map((r) => [r.libc, r.arch, r.machine])).toEqual([
      ['musl', 'x64', 62], // EM_X86_64
      ['musl', 'arm64', 183], // EM_AARCH64
    ]);
    for (const r of results) {
      expect(r.problems).toEqual([]);
      expect(r.needed).toEqual(['libc.so']); // musl's loader is its libc, and answers to that name
      expect(r.versions).toEqual([]);
    }
    // The same check refuses a glibc prebuild taken for a musl one, and a binary of the other CPU.
    const glibcAsMusl = spawnSync(
      process.execPath,
      [checkGlibc, '--json', '--libc', 'musl', join(installed, 'prebuilds', 'linux-x64', PREBUILD)],
      { encoding: 'utf8' },
    );
    expect(glibcAsMusl.status).toBe(1);
    const [refused] = JSON.parse(glibcAsMusl.stdout) as Array<{ problems: string[] }>;
    expect(refused.problems).toContain('links libc.so.6, which musl does not have');
    expect(refused.problems.some((p) => /^needs GLIBC_2\./.test(p))).toBe(true);
    const otherCpu = spawnSync(process.execPath, [checkGlibc, '--json', '--arch', 'arm64', files[0]], {
      encoding: 'utf8',
    });
    expect(otherCpu.status).toBe(1);
    expect(JSON.parse(otherCpu.stdout)[0].problems).toEqual(['e_machine 62, not 183 (arm64)']);
  });

  // A C program built for musl and run by musl's own loader (Debian's `musl` package), which
  // dlopen()s the prebuild with every symbol bound, as a musl Node would.
  (process.arch === 'x64' || process.arch === 'arm64' ? describe : describe.skip)('in a real musl process', () => {
    let host: string;
    let built: SpawnSyncReturns<string>;

    beforeAll(() => {
      host = join(scratch.dir, 'musl-dlopen');
      built = spawnSync(
        'bash',
        [join(root, 'scripts', 'musl-host.sh'), host, join(installed, hostPrebuild, MUSL_PREBUILD)],
        {
          encoding: 'utf8',
          timeout: 600_000,
        },
      );
    }, 600_000);

    test('the musl prebuild loads, its Node-API entry is found, and the process is musl by its maps', () => {
      if (built.status !== 0) throw new Error(`scripts/musl-host.sh failed:\n${built.stderr}`);
      const addon = join(installed, hostPrebuild, MUSL_PREBUILD);
      const run = spawnSync(host, [addon], { encoding: 'utf8', timeout: 60_000 });
      expect(run.stderr).toBe('');
      expect(run.status).toBe(0);
      const [first, ...rest] = run.stdout.split('\n');
      expect(first).toBe('found napi_register_module_v1');
      const maps = rest.join('\n');
      expect(mappedAddons(maps)).toEqual([addon]);
      expect(loaderOf(installed).libcFromMaps(maps)).toBe('musl');
    });

    test('the glibc prebuild does not load there: it names a glibc library', () => {
      expect(built.status).toBe(0);
      const run = spawnSync(host, [join(installed, hostPrebuild, PREBUILD)], { encoding: 'utf8', timeout: 60_000 });
      expect(run.status).toBe(1);
      expect(run.stderr).toMatch(
        /^dlopen: Error loading shared library (ld-linux|libc\.so\.6|libm\.so\.6|libdl|libpthread)/,
      );
    });
  });

  // CI bootstraps a minimal Debian 11 root and names it, with an official Node binary (built
  // for glibc 2.28) to run in it: the prebuild must load where the host's compiler would not.
  // Its glibc (before 2.34) names its libc libc-2.31.so; and a chroot has no /proc unless one is
  // mounted (here in a mount namespace of its own, which goes away with the process).
  const oldRoot = process.env.MMAN_OLD_GLIBC_ROOT;
  const oldNode = process.env.MMAN_OLD_GLIBC_NODE;
  (oldRoot && oldNode ? test : test.skip)(
    'loads and maps on Debian 11 (glibc 2.31, the libstdc++ of GCC 10), in a chroot with and without /proc',
    () => {
      const inside = join(oldRoot!, 'opt', 'mman-consumer');
      rmSync(inside, { recursive: true, force: true });
      cpSync(project, inside, { recursive: true });
      cpSync(oldNode!, join(inside, 'node'));
      writeFileSync(
        join(inside, 'smoke.js'),
        `
      const { existsSync, readFileSync } = require('fs');
      const { dirname, join } = require('path');
      const mman = require('mman');
      const m = mman.mapAnonymous(mman.PAGE_SIZE);
      m.bytes[3] = 7;
      const shm = mman.SharedMemory.create(mman.PAGE_SIZE);
      const view = new Int32Array(shm.map().buffer);
      const load = require(join(dirname(require.resolve('mman/package.json')), 'lib/load.js'));
      const maps = existsSync('/proc/self/maps') ? readFileSync('/proc/self/maps', 'utf8') : undefined;
      console.log(JSON.stringify({
        glibc: process.report.getReport().header.glibcVersionRuntime,
        libcFile: maps === undefined ? null : maps.split('\\n').some((line) => line.endsWith('/libc-2.31.so')),
        value: m.bytes[3],
        wait: mman.wait(view, 0, 0, 1),
        libc: load.detectLibc(),
        addon: Object.keys(require.cache).filter((file) => file.endsWith('.node')),
      }));`,
      );
      const expected = {
        glibc: '2.31',
        value: 7,
        wait: 'timed-out',
        libc: 'glibc',
        addon: [`/opt/mman-consumer/node_modules/mman/${hostPrebuild}/${PREBUILD}`],
      };
      // No /proc: the libc is told by the process report.
      const run = spawnSync('chroot', [oldRoot!, '/opt/mman-consumer/node', '/opt/mman-consumer/smoke.js'], {
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect(run.stderr).toBe('');
      expect(JSON.parse(run.stdout)).toEqual({ ...expected, libcFile: null });
      // With /proc: by the memory map, where glibc 2.31's libc is libc-2.31.so.
      const withProc = spawnSync(
        'unshare',
        [
          '--mount',
          '--propagation',
          'private',
          'sh',
          '-c',
          'mount -t proc proc "$0/proc" && exec chroot "$0" /opt/mman-consumer/node /opt/mman-consumer/smoke.js',
          oldRoot!,
        ],
        { encoding: 'utf8', timeout: 60_000 },
      );
      expect(withProc.stderr).toBe('');
      expect(JSON.parse(withProc.stdout)).toEqual({ ...expected, libcFile: true });
    },
  );

  test('require("mman") maps memory, with the glibc prebuild', () => {
    const run = node(project, ['-e', useAndShowAddon]);
    expect(JSON.parse(run.stdout)).toEqual({ value: 7, prot: 1 });
    expect(JSON.parse(run.stderr)).toEqual([join(installed, hostPrebuild, PREBUILD)]);
  });

  test('mman bench ring runs the benchmark the package ships, and says why C was skipped with no compiler', () => {
    const run = spawnSync(
      process.execPath,
      [join(installed, 'lib', 'cli', 'index.js'), 'bench', 'ring', '--solo', '--quick', '--size', '64'],
      { cwd: project, encoding: 'utf8', timeout: 120_000, env: { ...process.env, PATH: noCompilerPath } },
    );
    expect({ status: run.status, stderr: run.stderr }).toEqual({ status: 0, stderr: '' });
    expect(run.stdout).toMatch(/^solo {3}64 B {2}ring-many write +[\d.]+ ns {2}read +[\d.]+ ns/m);
    expect(run.stdout).toMatch(/^solo {3}64 B {2}ring-one {2}write +[\d.]+ ns/m);
    expect(run.stdout).toMatch(/^c: skipped \(no C compiler/m);
  });

  test('import { ... } from "mman" maps memory, and shares the CommonJS instance', () => {
    const run = node(project, ['--input-type=module', '-e', useFromEsm]);
    expect(run.stderr).toBe('');
    expect(JSON.parse(run.stdout)).toEqual({ value: 7, prot: 1, same: true });
  });

  test.each(['node16', 'nodenext'])(
    'tsc type-checks ESM and CommonJS consumers under module %s',
    (resolution) => {
      const consumer = join(project, `types-${resolution}`);
      mkdirSync(consumer);
      writeFileSync(
        join(consumer, 'esm.mts'),
        [
          "import { mapFile, mapAnonymous, Prot, type Mapping } from 'mman';",
          "import mman from 'mman';",
          'const m: Mapping = mapAnonymous(mman.PAGE_SIZE);',
          'const prot: Prot = Prot.Read | Prot.Write;',
          'export const used = [m.bytes.length, prot, mapFile];',
          '// @ts-expect-error: no such export',
          "export { notAnExport } from 'mman';",
        ].join('\n'),
      );
      writeFileSync(
        join(consumer, 'cjs.cts'),
        [
          "import mman = require('mman');",
          'const m: mman.Mapping = mman.mapAnonymous(mman.PAGE_SIZE, { shared: true });',
          'export const used = [m.length satisfies number, mman.MapFlags.Shared];',
          '// @ts-expect-error: mapAnonymous takes a number',
          "mman.mapAnonymous('4096');",
        ].join('\n'),
      );
      writeFileSync(
        join(consumer, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: {
            module: resolution,
            moduleResolution: resolution,
            target: 'ES2022',
            strict: true,
            noEmit: true,
            types: ['node'],
            typeRoots: [join(root, 'node_modules', '@types')],
          },
          files: ['esm.mts', 'cjs.cts'],
        }),
      );
      const tsc = spawnSync(
        process.execPath,
        [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', consumer],
        { encoding: 'utf8', timeout: 120_000 },
      );
      expect(tsc.stdout + tsc.stderr).toBe('');
      expect(tsc.status).toBe(0);
    },
    120_000,
  );

  describe('which addon the loader picks (src/load.ts), in the installed package', () => {
    const query = (libc: Load.Libc | undefined, arch: string = process.arch): Load.AddonQuery => ({
      root: installed,
      platform: 'linux',
      arch,
      libc,
      prebuildsOnly: false,
    });

    test.each(['x64', 'arm64'])('on linux-%s: the prebuild of the libc it is told', (arch) => {
      const { chooseAddon } = loaderOf(installed);
      const prebuilds = join(installed, 'prebuilds', `linux-${arch}`);
      expect(chooseAddon(query('glibc', arch)).path).toBe(join(prebuilds, PREBUILD));
      expect(chooseAddon(query('musl', arch)).path).toBe(join(prebuilds, MUSL_PREBUILD));
      // A libc it could not tell: glibc's first, then musl's.
      expect(chooseAddon(query(undefined, arch)).candidates.slice(-2)).toEqual([
        join(prebuilds, PREBUILD),
        join(prebuilds, MUSL_PREBUILD),
      ]);
      expect(chooseAddon(query('musl', arch)).candidates).toEqual([
        join(installed, 'build', 'Release', 'mman.node'),
        join(installed, 'build', 'Debug', 'mman.node'),
        join(prebuilds, MUSL_PREBUILD),
      ]);
    });

    test('nothing for another platform or CPU', () => {
      const { chooseAddon } = loaderOf(installed);
      expect(chooseAddon({ ...query('glibc'), platform: 'darwin' }).path).toBeUndefined();
      expect(chooseAddon(query('musl', 'riscv64')).path).toBeUndefined();
    });

    test('the libc of real processes, from their /proc/<pid>/maps', async () => {
      const { libcFromMaps, detectLibc } = loaderOf(installed);
      expect(libcFromMaps(readFileSync('/proc/self/maps', 'utf8'))).toBe('glibc');
      expect(detectLibc()).toBe('glibc');
      // Another process, read from outside while it runs (coreutils' sleep, linked with glibc).
      const sleeper = spawn('sleep', ['60'], { stdio: 'ignore' });
      try {
        await new Promise((resolve, reject) => sleeper.once('spawn', resolve).once('error', reject));
        let maps = '';
        for (let i = 0; i < 100 && !/\/libc[.-]/.test(maps); i++) {
          maps = readFileSync(`/proc/${sleeper.pid}/maps`, 'utf8'); // after exec, once its loader ran
          if (!/\/libc[.-]/.test(maps)) await new Promise((resolve) => setTimeout(resolve, 20));
        }
        expect(libcFromMaps(maps)).toBe('glibc');
      } finally {
        sleeper.kill();
      }
      expect(libcFromMaps('')).toBeUndefined(); // nothing mapped from a file: not known
      const run = node(project, [
        '-e',
        `console.log(require(${JSON.stringify(join(installed, 'lib', 'load.js'))}).detectLibc())`,
      ]);
      expect(run.stdout.trim()).toBe('glibc');
    });

    test('a file that is there but does not load: ERR_MMAN_ADDON_LOAD_FAILED, with the loader error', () => {
      // The package with its glibc prebuild replaced by the musl one, which this glibc process cannot load.
      const copy = join(scratch.dir, 'wrong-libc');
      cpSync(installed, copy, { recursive: true });
      cpSync(join(copy, hostPrebuild, MUSL_PREBUILD), join(copy, hostPrebuild, PREBUILD));
      const run = node(project, [
        '-e',
        `try { require(${JSON.stringify(join(copy, 'lib'))}) } catch (e) {
           console.log(JSON.stringify({ code: e.code, message: e.message, cause: e.cause.message }));
         }`,
      ]);
      const error = JSON.parse(run.stdout);
      expect(error.code).toBe('ERR_MMAN_ADDON_LOAD_FAILED');
      expect(error.message).toContain(join(copy, hostPrebuild, PREBUILD));
      expect(error.message).toContain(`cd ${copy} && npm run build:addon`);
      expect(error.cause.length).toBeGreaterThan(0);
      expect(error.message).toContain(error.cause);
    });
  });

  test('every relative link in the README and the shipped docs leads to a file, and heading, in the package', () => {
    const markdown = [
      'README.md',
      'CHANGELOG.md',
      'bench/RESULTS.md',
      ...readdirSync(join(installed, 'docs')).map((f) => `docs/${f}`),
    ].filter((file) => file.endsWith('.md'));
    expect(markdown).toEqual(expect.arrayContaining(['README.md', 'docs/platforms.md', 'docs/ARCHITECTURE.md']));
    const slugs = new Map<string, Set<string>>();
    // GitHub's anchors: each heading lowercased, punctuation dropped, spaces as hyphens.
    const anchorsOf = (file: string): Set<string> => {
      if (!slugs.has(file)) {
        const text = readFileSync(file, 'utf8').replace(/^```[\s\S]*?^```/gm, '');
        const seen = new Map<string, number>();
        const anchors = new Set<string>();
        for (const [, heading] of text.matchAll(/^#{1,6} +(.+?) *#*$/gm)) {
          const slug = heading
            .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
            .toLowerCase()
            .replace(/[^\p{L}\p{N}\s_-]/gu, '')
            .replace(/\s/g, '-');
          const n = seen.get(slug) ?? 0;
          seen.set(slug, n + 1);
          anchors.add(n === 0 ? slug : `${slug}-${n}`);
        }
        slugs.set(file, anchors);
      }
      return slugs.get(file)!;
    };
    const broken: string[] = [];
    let links = 0;
    for (const file of markdown) {
      const text = readFileSync(join(installed, file), 'utf8').replace(/^```[\s\S]*?^```/gm, '');
      for (const [, target] of text.matchAll(/\]\(([^)\s]+)(?: "[^"]*")?\)/g)) {
        if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:
        links++;
        const [path, anchor] = target.split('#');
        const resolved = path === '' ? join(installed, file) : resolve(dirname(join(installed, file)), path);
        const inside = relative(installed, resolved);
        if (inside.startsWith('..') || !existsSync(resolved))
          broken.push(`${file}: ${target} (no such file in the package)`);
        else if (anchor && resolved.endsWith('.md') && !anchorsOf(resolved).has(anchor))
          broken.push(`${file}: ${target} (no such heading)`);
      }
    }
    expect(links).toBeGreaterThan(10);
    expect(broken).toEqual([]);
  });
});

describe('other ways to install the tarball', () => {
  test('npm install --ignore-scripts: it loads all the same', () => {
    const project = installInto('ignore-scripts', withPrebuild, {}, ['--ignore-scripts']);
    const run = node(project, ['-e', useAndShowAddon]);
    expect(JSON.parse(run.stdout)).toEqual({ value: 7, prot: 1 });
    expect(JSON.parse(run.stderr)).toEqual([
      join(realpathSync(project), 'node_modules', 'mman', hostPrebuild, PREBUILD),
    ]);
  }, 300_000);

  // Bun runs no dependency's install script; it is there when `npm run test:runtimes` installed it.
  (existsSync(bun) ? test : test.skip)(
    'bun add <tarball>: it loads under Bun',
    () => {
      const project = emptyProject('bun');
      const add = spawnSync(bun, ['add', withPrebuild], { cwd: project, encoding: 'utf8', timeout: 300_000 });
      expect(add.status).toBe(0);
      const run = spawnSync(bun, ['-e', useAndShowAddon], { cwd: project, encoding: 'utf8', timeout: 60_000 });
      expect(JSON.parse(run.stdout)).toEqual({ value: 7, prot: 1 });
      expect(JSON.parse(run.stderr)).toEqual([
        join(realpathSync(project), 'node_modules', 'mman', hostPrebuild, PREBUILD),
      ]);
    },
    300_000,
  );
});

test('the tarball holds the library, every prebuild, types, ESM and CJS entries, the docs, and nothing else', () => {
  const listing = execFileSync('tar', ['tzf', withPrebuild], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .map((entry) => entry.replace(/^package\//, ''));
  for (const needed of [
    'package.json',
    'README.md',
    'CMakeLists.txt',
    'native/mman.gypi',
    'scripts/build-addon.js',
    'scripts/setup.js',
    'scripts/esm.js',
    'lib/index.js',
    'lib/index.d.ts',
    'lib/index.mjs',
    'lib/index.d.mts',
    'lib/load.js',
    'lib/cli/index.js',
    'native/lifetime.cc',
    'docs/platforms.md',
    'docs/ARCHITECTURE.md',
    'bench/RESULTS.md',
    'bench/ring.js',
    ...PREBUILDS,
  ])
    expect(listing).toContain(needed);
  expect(listing.filter((entry) => entry.startsWith('examples/')).length).toBeGreaterThan(0);
  // An allow-list: anything else (tests, sources, benchmarks, build leftovers, the generated
  // API pages in docs/api) is stray.
  const allowed = [
    /^(package\.json|README\.md|CHANGELOG\.md|CMakeLists\.txt|scripts\/(build-addon|setup|esm)\.js)$/,
    /^lib\/[\w/.-]+\.(js|mjs|d\.ts|d\.mts|js\.map)$/,
    /^native\/\w+\.(cc|h|gypi)$/,
    /^prebuilds\/linux-(x64|arm64)\/mman\.(glibc|musl)\.node$/,
    /^native\/loops\/\w+\.c$/, // the C loops the benchmarks (`mman bench scale`) compile beside their own
    /^docs\/[\w.-]+\.md$/,
    /^examples\/[\w.-]+\.js$/,
    /^bench\/RESULTS\.md$/,
    /^bench\/ring\.js$/, // what `mman bench ring` runs
  ];
  expect(listing).not.toContain('binding.gyp'); // npm would build on install (see above)
  const stray = listing.filter((entry) => !allowed.some((rule) => rule.test(entry)));
  expect(stray).toEqual([]);
  // Every prebuild is libc-tagged: glibc and musl, for each CPU.
  expect(listing.filter((entry) => entry.startsWith('prebuilds/')).sort()).toEqual([...PREBUILDS].sort());
});

describe('npm install <tarball> with no prebuild for this platform', () => {
  let project: string;
  let installed: string;

  beforeAll(() => {
    // No compiler: without an install script, nothing tries to build, and the install succeeds.
    project = installInto('from-source', withoutHostPrebuild, { PATH: noCompilerPath, CC: 'false', CXX: 'false' });
    installed = join(realpathSync(project), 'node_modules', 'mman');
  }, 300_000);

  test('require("mman") fails with ERR_MMAN_ADDON_NOT_FOUND, naming each file it looked for and the build command', () => {
    const prebuilds = join(installed, 'prebuilds');
    expect(existsSync(prebuilds) ? readdirSync(prebuilds) : []).not.toContain(platformDir);
    expect(existsSync(join(installed, 'build'))).toBe(false);
    const run = node(project, [
      '-e',
      `try { require('mman') } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message, candidates: e.candidates, libc: e.libc })) }`,
    ]);
    const error = JSON.parse(run.stdout);
    const candidates = [
      join(installed, 'build', 'Release', 'mman.node'),
      join(installed, 'build', 'Debug', 'mman.node'),
      join(installed, hostPrebuild, PREBUILD),
    ];
    expect(error).toEqual({ code: 'ERR_MMAN_ADDON_NOT_FOUND', message: expect.any(String), candidates, libc: 'glibc' });
    for (const path of candidates) expect(error.message).toContain(path);
    expect(error.message).toContain(`cd ${installed} && npm run build:addon`);
  });

  test('npm run build:addon in the installed package builds it (npm brings node-gyp), and then it loads', () => {
    const build = npm(['run', 'build:addon'], installed);
    if (build.status !== 0) throw new Error(`npm run build:addon failed:\n${build.stdout}\n${build.stderr}`);
    const run = node(project, ['-e', useAndShowAddon]);
    expect(JSON.parse(run.stdout)).toEqual({ value: 7, prot: 1 });
    expect(JSON.parse(run.stderr)).toEqual([join(installed, 'build', 'Release', 'mman.node')]);
    // A source build comes before any prebuild, whatever the libc; PREBUILDS_ONLY skips it.
    const { chooseAddon } = loaderOf(installed);
    // (This package has no prebuild for this CPU: arm64's stands in.)
    const query = { root: installed, platform: 'linux', arch: 'arm64', prebuildsOnly: false } as const;
    for (const libc of ['glibc', 'musl'] as const)
      expect(chooseAddon({ ...query, libc }).path).toBe(join(installed, 'build', 'Release', 'mman.node'));
    expect(chooseAddon({ ...query, libc: 'musl', prebuildsOnly: true }).path).toBe(
      join(installed, 'prebuilds', 'linux-arm64', MUSL_PREBUILD),
    );
  }, 300_000);
});
