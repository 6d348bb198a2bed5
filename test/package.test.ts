// The published package, as a user gets it: `npm pack`, `npm install <tarball>` into a fresh
// directory, then `require('mman')`, `import ... from 'mman'` and tsc against its types.
import { execFileSync, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './helpers';

const root = join(__dirname, '..');
const hostPrebuild = `prebuilds/${process.platform}-${process.arch}`;
const PREBUILD = 'mman.glibc.node'; // tagged by libc: node-gyp-build loads it only on glibc
const npmCli = process.env.npm_execpath?.endsWith('.js')
  ? process.env.npm_execpath
  : realpathSync(execFileSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).trim());
// Headers for a source build, never a download (the machine's Node, as .ci/run sets it).
const nodedir = process.env.npm_config_nodedir ?? (existsSync('/usr/include/node/node_api.h') ? '/usr' : undefined);

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

/** A fresh project directory with `tarball` installed (dependencies from npm's cache first). */
function installInto(name: string, tarball: string, env: NodeJS.ProcessEnv = {}): string {
  const project = join(scratch.dir, name);
  mkdirSync(project);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: `consumer-${name}`, private: true }));
  const run = npm(['install', '--prefer-offline', '--no-package-lock', tarball], project, env);
  if (run.status !== 0) throw new Error(`npm install failed:\n${run.stdout}\n${run.stderr}`);
  return project;
}

/** Runs `node` in `cwd` with `args`: the user's program against the installed package. */
function node(cwd: string, args: string[]): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, args, { cwd, encoding: 'utf8', timeout: 60_000 });
}

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
  if (!['linux-x64', 'linux-arm64'].every((dir) => existsSync(join(staged, 'prebuilds', dir, PREBUILD)))) {
    // No prebuilds in the tree: make them from the packed sources as `npm run prebuilds` does
    // (the Zig toolchain, glibc 2.28), so that what is tested is what would ship.
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
}, 300_000);

afterAll(() => scratch?.cleanup());

describe('npm install <tarball> with a prebuild for this platform', () => {
  let project: string;

  beforeAll(() => {
    project = installInto('prebuilt', withPrebuild, { PATH: noCompilerPath, CC: 'false', CXX: 'false' });
  }, 300_000);

  test('installs with no compiler on PATH and builds nothing', () => {
    const installed = join(project, 'node_modules', 'mman');
    expect(existsSync(join(installed, hostPrebuild, PREBUILD))).toBe(true);
    expect(existsSync(join(installed, 'build', 'Release', 'mman.node'))).toBe(false);
    expect(spawnSync('sh', ['-c', 'command -v g++ cc make'], { env: { PATH: noCompilerPath } }).stdout.length).toBe(0);
  });

  test('the prebuilds it installed need nothing above glibc 2.28 and no libstdc++', () => {
    const installed = join(project, 'node_modules', 'mman');
    const files = ['linux-x64', 'linux-arm64'].map((dir) => join(installed, 'prebuilds', dir, PREBUILD));
    const check = spawnSync(process.execPath, [join(root, 'scripts', 'check-glibc.js'), '--json', ...files], {
      encoding: 'utf8',
    });
    expect(check.status).toBe(0);
    const results = JSON.parse(check.stdout) as Array<{ highestGlibc: string; needed: string[]; problems: string[] }>;
    for (const r of results) {
      expect(r.problems).toEqual([]);
      expect(r.needed.some((lib) => lib.startsWith('libstdc++'))).toBe(false);
    }
  });

  // CI bootstraps a minimal Debian 11 root and names it, with an official Node binary (built
  // for glibc 2.28) to run in it: the prebuild must load where the host's compiler would not.
  const oldRoot = process.env.MMAN_OLD_GLIBC_ROOT;
  const oldNode = process.env.MMAN_OLD_GLIBC_NODE;
  (oldRoot && oldNode ? test : test.skip)(
    'loads and maps on Debian 11 (glibc 2.31, the libstdc++ of GCC 10), in a chroot',
    () => {
      const inside = join(oldRoot!, 'opt', 'mman-consumer');
      rmSync(inside, { recursive: true, force: true });
      cpSync(project, inside, { recursive: true });
      cpSync(oldNode!, join(inside, 'node'));
      writeFileSync(
        join(inside, 'smoke.js'),
        `
      const mman = require('mman');
      const m = mman.mapAnonymous(mman.PAGE_SIZE);
      m.bytes[3] = 7;
      const shm = mman.SharedMemory.create(mman.PAGE_SIZE);
      const view = new Int32Array(shm.map().buffer);
      console.log(JSON.stringify({
        glibc: process.report.getReport().header.glibcVersionRuntime,
        value: m.bytes[3],
        wait: mman.wait(view, 0, 0, 1),
        addon: require('node-gyp-build').path(require('path').dirname(require.resolve('mman/package.json'))),
      }));`,
      );
      const run = spawnSync('chroot', [oldRoot!, '/opt/mman-consumer/node', '/opt/mman-consumer/smoke.js'], {
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect(run.stderr).toBe('');
      expect(JSON.parse(run.stdout)).toEqual({
        glibc: '2.31',
        value: 7,
        wait: 'timed-out',
        addon: `/opt/mman-consumer/node_modules/mman/${hostPrebuild}/${PREBUILD}`,
      });
    },
  );

  test('require("mman") maps memory', () => {
    const run = node(project, ['-e', useFromCommonJs]);
    expect(run.stderr).toBe('');
    expect(JSON.parse(run.stdout)).toEqual({ value: 7, prot: 1 });
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
});

test('the tarball holds the library, both prebuilds, types, ESM and CJS entries, and nothing else', () => {
  const listing = execFileSync('tar', ['tzf', withPrebuild], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .map((entry) => entry.replace(/^package\//, ''));
  for (const needed of [
    'package.json',
    'README.md',
    'binding.gyp',
    'CMakeLists.txt',
    'scripts/setup.js',
    'scripts/esm.js',
    'lib/index.js',
    'lib/index.d.ts',
    'lib/index.mjs',
    'lib/index.d.mts',
    'lib/cli/index.js',
    'native/lifetime.cc',
    `prebuilds/linux-x64/${PREBUILD}`,
    `prebuilds/linux-arm64/${PREBUILD}`,
  ])
    expect(listing).toContain(needed);
  // No tests, sources of the build's leftovers, benchmarks or CI.
  // An allow-list: anything else (tests, sources, benchmarks, build leftovers) is stray.
  const allowed = [
    /^(package\.json|README\.md|CHANGELOG\.md|binding\.gyp|CMakeLists\.txt|scripts\/setup\.js|scripts\/esm\.js)$/,
    /^lib\/[\w/.-]+\.(js|mjs|d\.ts|d\.mts|js\.map)$/,
    /^native\/\w+\.(cc|h)$/,
    /^prebuilds\/linux-(x64|arm64)\/mman\.glibc\.node$/,
    /^native\/loops\/\w+\.c$/, // the C loops the benchmarks (`mman bench scale`) compile beside their own
  ];
  const stray = listing.filter((entry) => !allowed.some((rule) => rule.test(entry)));
  expect(stray).toEqual([]);
  // Every prebuild is libc-tagged, and only glibc ones ship: musl builds from source.
  expect(listing.filter((entry) => entry.startsWith('prebuilds/')).sort()).toEqual([
    `prebuilds/linux-arm64/${PREBUILD}`,
    `prebuilds/linux-x64/${PREBUILD}`,
  ]);
});

describe('npm install <tarball> where the libc is musl (Alpine)', () => {
  test('the glibc prebuild is not picked: it builds from source, and works', () => {
    // LIBC is what node-gyp-build would detect on Alpine (it looks for /etc/alpine-release).
    const project = installInto('musl', withPrebuild, { LIBC: 'musl' });
    const installed = join(project, 'node_modules', 'mman');
    expect(existsSync(join(installed, 'build', 'Release', 'mman.node'))).toBe(true);
    const run = spawnSync(
      process.execPath,
      ['-e', `${useFromCommonJs}; console.error(require('node-gyp-build').path(${JSON.stringify(installed)}))`],
      { cwd: project, encoding: 'utf8', timeout: 60_000, env: { ...process.env, LIBC: 'musl' } },
    );
    expect(JSON.parse(run.stdout)).toEqual({ value: 7, prot: 1 });
    expect(run.stderr.trim()).toBe(join(installed, 'build', 'Release', 'mman.node'));
  }, 300_000);
});

describe('npm install <tarball> with no prebuild for this platform', () => {
  test('builds from source with the compiler on PATH, and works', () => {
    const project = installInto('from-source', withoutHostPrebuild);
    const installed = join(project, 'node_modules', 'mman');
    const prebuilds = join(installed, 'prebuilds');
    expect(existsSync(prebuilds) ? readdirSync(prebuilds) : []).not.toContain(`${process.platform}-${process.arch}`);
    expect(existsSync(join(installed, 'build', 'Release', 'mman.node'))).toBe(true);
    const run = node(project, ['-e', useFromCommonJs]);
    expect(run.stderr).toBe('');
    expect(JSON.parse(run.stdout)).toEqual({ value: 7, prot: 1 });
  }, 300_000);

  test('fails to install without a compiler, rather than installing a package that cannot load', () => {
    const project = join(scratch.dir, 'no-compiler');
    mkdirSync(project);
    writeFileSync(join(project, 'package.json'), '{"name":"consumer-no-compiler","private":true}');
    const run = npm(['install', '--prefer-offline', '--no-package-lock', withoutHostPrebuild], project, {
      PATH: noCompilerPath,
      CC: 'false',
      CXX: 'false',
    });
    expect(run.status).not.toBe(0);
  }, 300_000);
});
